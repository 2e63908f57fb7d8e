"""Production entry point for a WSGI server: ``gunicorn 'registry.wsgi:app'``.

Secrets come only from the environment: the app refuses to start without
``REGISTRY_SECRET_KEY`` (shared by every worker, so sessions survive across them and restarts).
Debug is off whatever the environment says.
"""

from __future__ import annotations

import os

from registry import create_app

SECRET_KEY = os.environ.get("REGISTRY_SECRET_KEY", "")
if len(SECRET_KEY) < 32:
    raise RuntimeError(
        "REGISTRY_SECRET_KEY is not set or shorter than 32 characters: generate "
        "one (python -c 'import secrets; print(secrets.token_hex(32))') and give "
        "it to every worker"
    )

app = create_app({"SECRET_KEY": SECRET_KEY})  # as given, not parsed as JSON
app.debug = False
