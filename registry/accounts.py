"""Accounts: users with roles, password checks and API tokens; no web framework here.

Passwords are hashed with scrypt (Werkzeug's default, salted, memory-hard). API tokens are 256
random bits shown once; only their SHA-256 is stored, so a leaked database reveals no token.
Every change to a user bumps its ``session_epoch``, which signs out its open sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from registry.errors import ConflictError, NotFoundError, RegistryError, ValidationError
from registry.models import ROLES, ApiToken, User, now_utc

#: Shortest password accepted (NIST SP 800-63B asks for at least 8 characters).
MIN_PASSWORD_LENGTH = 10
#: Prefix that marks registry tokens (lets secret scanners recognise a leaked one).
TOKEN_PREFIX = "lcr_"
#: Wrong passwords in a row before an account waits ``LOCKOUT`` (OWASP: throttle guessing).
MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=15)
#: How stale a token's "last used" may get before a request updates it.
LAST_USED_RESOLUTION = timedelta(minutes=5)
#: A hash to check against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = generate_password_hash("not a password")


class Unauthorized(RegistryError):
    """No valid credentials (HTTP 401)."""

    status = 401


class TooManyAttempts(RegistryError):
    """Sign-in refused for a while after repeated wrong passwords (HTTP 429)."""

    status = 429


class Forbidden(RegistryError):
    """Signed in, but the role does not allow this (HTTP 403)."""

    status = 403


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the user's name and role, and how they proved it."""

    username: str
    role: str
    via: str = "session"

    @property
    def actor(self) -> str:
        """The name written to the audit log."""
        return self.username if self.via == "session" else f"{self.username} ({self.via})"

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(
            "bad role", details=[{"field": "role", "reason": f"must be one of {', '.join(ROLES)}"}]
        )
    return role


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password too short",
            details=[
                {"field": "password", "reason": f"needs at least {MIN_PASSWORD_LENGTH} characters"}
            ],
        )
    return password


def _check_username(username: str) -> str:
    if (
        not isinstance(username, str)
        or not 1 <= len(username) <= 64
        or not all(c.isalnum() or c in "._-@" for c in username)
    ):
        raise ValidationError(
            "bad username",
            details=[{"field": "username", "reason": ("1–64 letters, digits or . _ - @")}],
        )
    return username


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def create_user(session: Session, username: str, password: str, role: str = "viewer") -> User:
    """A new active user; the name must be free."""
    _check_username(username)
    _check_role(role)
    if session.scalar(select(func.count()).where(User.username == username)):
        raise ConflictError(
            f"user {username!r} exists", details=[{"field": "username", "reason": "is taken"}]
        )
    user = User(
        username=username,
        role=role,
        active=True,
        session_epoch=0,
        password_hash=generate_password_hash(_check_password(password)),
    )
    session.add(user)
    session.flush()
    return user


def update_user(
    session: Session,
    username: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's role, status or password; their open sessions end."""
    user = get_user(session, username)
    was_admin = user.role == "admin" and user.active
    if role is not None:
        user.role = _check_role(role)
    if active is not None:
        user.active = bool(active)
    if password is not None:
        user.password_hash = generate_password_hash(_check_password(password))
    if was_admin and (user.role != "admin" or not user.active):
        admins = session.scalar(
            select(func.count()).where(User.role == "admin", User.active.is_(True))
        )
        if not admins:
            raise ConflictError(
                "the registry needs at least one active admin",
                details=[{"field": "role", "reason": "would leave no active admin"}],
            )
    user.session_epoch += 1
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with that name and password; one message for every failure.

    Wrong passwords are counted on the user; after ``MAX_FAILED_LOGINS`` in a row the account
    refuses every password for ``LOCKOUT`` (HTTP 429). The caller commits even on failure, so
    the count holds across requests and workers."""
    user = session.scalar(select(User).where(User.username == username))
    now = now_utc()
    if user is not None and user.locked_until is not None and now < user.locked_until:
        raise TooManyAttempts(
            f"too many wrong passwords: try again after {user.locked_until:%H:%M} UTC"
        )
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is not None and not ok:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins, user.locked_until = 0, now + LOCKOUT
    if user is None or not ok or not user.active:
        raise Unauthorized("wrong username or password")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return user


def session_principal(session: Session, user_id: int, epoch: int) -> Principal | None:
    """The principal of a signed session cookie, unless the user changed or left since."""
    user = session.get(User, user_id)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return Principal(user.username, user.role)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, username: str, name: str) -> tuple[ApiToken, str]:
    """A new token for the user; the plain token is returned here and never again."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise ValidationError(
            "bad token name", details=[{"field": "name", "reason": "1–100 characters"}]
        )
    user = get_user(session, username)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id, name=name.strip(), token_sha256=_token_hash(plain), revoked=False
    )
    session.add(token)
    session.flush()
    return token, plain


def revoke_token(session: Session, username: str, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != get_user(session, username).id:
        raise NotFoundError(f"no token {token_id} for {username!r}")
    token.revoked = True


#: Built once: this statement runs on every scripted request.
_TOKEN_LOOKUP = (
    select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.revoked,
        ApiToken.last_used_at,
        User.username,
        User.role,
        User.active,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_sha256 == bindparam("sha256"))
)


def token_principal(session: Session, plain: str) -> Principal:
    """The principal a bearer token stands for; 401 if unknown, revoked or its user inactive."""
    row = session.execute(_TOKEN_LOOKUP, {"sha256": _token_hash(plain)}).first()
    if row is None or row.revoked or not row.active:
        raise Unauthorized("invalid or revoked API token")
    now = now_utc()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # not on every request: reads would all become writes
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Principal(row.username, row.role, via=f"token {row.name}")
