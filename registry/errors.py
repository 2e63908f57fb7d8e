"""Error hierarchy: one root, subclasses that also inherit the built-in type callers expect.

The web layer maps them to HTTP statuses in one handler (see ``registry.web``).
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Root of every error the registry raises on purpose."""

    status = 500

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(RegistryError, ValueError):
    """Input is malformed; ``details`` lists ``{"field", "reason"}`` (and ``row`` for imports)."""

    status = 400


class NotFoundError(RegistryError, LookupError):
    """No record with that key."""

    status = 404


class ConflictError(RegistryError):
    """The write conflicts with stored state (stale version, duplicate key, record in use)."""

    status = 409

    def __init__(
        self,
        message: str,
        *,
        current: dict[str, Any] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.current = current

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.current is not None:
            body["current"] = self.current
        return body


class PreconditionRequired(RegistryError):
    """A write that must say which version it changes did not (HTTP 428)."""

    status = 428


class ServiceUnavailable(RegistryError):
    """A service the registry relies on (e.g. a Dask scheduler) does not answer (HTTP 503)."""

    status = 503


class ImportRejected(ValidationError):
    """An import had invalid rows; nothing was stored. ``details`` is the per-row report."""
