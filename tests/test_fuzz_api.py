"""Schemathesis against the OpenAPI document, over real HTTP, with every check it has (server
errors, status codes, content types, response schemas and headers, positive and negative data,
missing headers, undeclared methods and Allow headers, auth, use after free, ...) in its
examples, coverage, fuzzing and stateful phases, with an editor's token so writes get past
the role check: the document and the behaviour must agree on every answer.

The run is bounded: ``EXAMPLES_PER_OPERATION`` cases per operation and phase, and the whole
command must end within ``TIME_LIMIT_S``. Settings that JSON Schema cannot carry (which
operations may answer a schema-valid request with a 400, and the sample records' codes) are in
``tests/schemathesis.toml``; the per-layer codes are added here from ``sample_layers()``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sample_layers

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
#: Cases per operation and phase (92 operations: about 5,000 requests in all, ~1 min).
EXAMPLES_PER_OPERATION = 3
MIN_REQUESTS = 1_000
TIME_LIMIT_S = 150
#: Fixed, so that a failure can be replayed (``st run ... --seed``).
SEED = 20261201


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the property is about the API's answers, not the backend (both backends
    are covered by the API tests)."""
    return sqlite_url


def _config_with_codes(tmp_path: Path) -> Path:
    """The shared settings plus, per layer, the stored records' codes for its record paths."""
    lines = [CONFIG.read_text("utf-8")]
    for layer, rows in sample_layers().items():
        codes = json.dumps([row["code"] for row in rows])
        lines.append(
            f"\n[[operations]]\ninclude-path-regex = '^/api/v1/{layer}/'\n"
            f'parameters = {{ "path.code" = {{ dictionary = "{layer}", probability = 0.5 }} }}\n'
            f"\n[dictionaries.{layer}]\nvalues = {codes}\n"
        )
    path = tmp_path / "schemathesis.toml"
    path.write_text("".join(lines), "utf-8")
    return path


def test_schemathesis_finds_no_failure_with_every_check(
    app: Any, api: Any, loaded: Any, tmp_path: Path
) -> None:
    statuses: Counter[int] = Counter()
    serve = app.wsgi_app

    def counted(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: Any, *rest: Any) -> Any:
            statuses[int(status.split()[0])] += 1
            return start_response(status, headers, *rest)

        return serve(environ, start)

    app.wsgi_app = counted
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(_config_with_codes(tmp_path)),
            "run",
            api.url("openapi.json"),
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--no-shrink",
            "--header",
            f"Authorization: {api.http.headers['Authorization']}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # its cache folder goes there
        timeout=TIME_LIMIT_S,
        check=False,
    )
    took_s = time.monotonic() - started
    assert report.exists(), run.stdout[-5_000:] + run.stderr[-5_000:]
    summary = json.loads(report.read_text("utf-8"))
    requests = sum(statuses.values())
    print(
        f"schemathesis: {summary['test_cases']['generated']} test cases, {requests} requests "
        f"over {summary['operations']['tested']} operations, every check, "
        f"{len(summary['failures'])} failures, {len(summary['errors'])} errors in {took_s:.0f} s; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert summary["operations"]["tested"] >= 90
    assert requests >= MIN_REQUESTS
    assert run.returncode == 0 and not summary["failures"], run.stdout[-20_000:]
    assert not summary["errors"] and statuses[500] == 0, run.stdout[-20_000:]
    assert set(summary["phases"]) >= {"coverage", "fuzzing", "stateful"}
