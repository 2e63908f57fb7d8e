"""Coverage and infrastructure registry: Flask application factory."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``REGISTRY_*`` environment variables, then ``test_config``.

    The database (an SQLite file under ``instance/`` unless ``REGISTRY_DATABASE_URL`` names
    another, e.g. PostGIS) gets its schema from `flask db upgrade`, never from here, so several
    workers can start at once. Flask is imported here,
    not at package level, so the numeric core (``registry.radio``, ``registry.terrain``) loads
    without the web stack (e.g. on Dask workers).
    """
    from flask import Flask

    from registry import config, db, jobs

    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.defaults(Path(app.instance_path)))
    app.config.from_prefixed_env("REGISTRY")
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        # Fine for one process (the CLI, `flask run`); sessions end when it stops. Production
        # (`registry.wsgi`) refuses to start without REGISTRY_SECRET_KEY.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config["AREA_BBOX"] = tuple(app.config["AREA_BBOX"])

    engine = db.make_engine(app.config["DATABASE_URL"])
    app.extensions["registry"] = {"engine": engine, "sessions": db.session_factory(engine)}
    config.check(app.config)
    if app.config["JOBS_RUNNER"] == "thread":
        app.extensions["registry"]["job_runner"] = jobs.ThreadRunner(app)

    from registry import cli, tasks, web  # noqa: F401 (tasks registers the job kinds)

    web.init_app(app)
    cli.init_app(app)
    return app
