"""Schemathesis against the OpenAPI document, over real HTTP: at least 1,000 generated requests
(valid and invalid data, with an editor's token so writes get past the role check) and not one
answer in the 5xx range."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

pytestmark = pytest.mark.slow

#: Generated requests per operation (at most; fewer where the inputs are few): over 90
#: operations, so about 1,300 requests in all.
EXAMPLES_PER_OPERATION = 15
MIN_REQUESTS = 1_000


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: the property is about the API's answers, not the backend (both backends
    are covered by the API tests)."""
    return sqlite_url


def test_generated_requests_never_get_a_server_error(api: Any, loaded: Any) -> None:
    doc = requests.get(api.url("openapi.json"), timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    http = requests.Session()
    http.headers["Authorization"] = api.http.headers["Authorization"]
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 90

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(base_url=api.base, session=http, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                errors.append(
                    f"{case.method} {case.formatted_path} -> "
                    f"{response.status_code}: {response.text[:300]}"
                )

        call()
    total = sum(statuses.values())
    print(
        f"schemathesis: {total} requests over {len(operations)} operations; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert total >= MIN_REQUESTS
    assert not errors, "\n".join(errors[:20])
