"""Accounts: users with roles, password checks and API tokens; no web framework here.

Passwords are hashed with scrypt (Werkzeug's default, salted, memory-hard). API tokens are 256
random bits shown once; only their SHA-256 is stored, so a leaked database reveals no token.
Every change to a user bumps its ``session_epoch``, which signs out its open sessions; each
sign-in is a ``LoginSession`` row that signing out ends. Wrong passwords slow sign-in down per
client address and per (username, address) pair with growing waits, counted in the database
(so every worker process sees them); nobody can lock another person out from elsewhere, and the
answer is the same whether the username exists or not.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from registry.errors import ConflictError, NotFoundError, RegistryError, ValidationError
from registry.models import ROLES, ApiToken, LoginSession, LoginThrottle, User, now_utc
from registry.schemas import check_name, check_text

#: Shortest password accepted (NIST SP 800-63B asks for at least 8 characters).
MIN_PASSWORD_LENGTH = 10
#: Prefix that marks registry tokens (lets secret scanners recognise a leaked one).
TOKEN_PREFIX = "lcr_"
#: Wrong passwords allowed before each wait, per (username, client address) pair and per
#: client address (many people may share one address behind a NAT). OWASP Authentication
#: Cheat Sheet: throttle guessing without letting anyone lock an account.
FREE_FAILURES_PER_USER = 3
FREE_FAILURES_PER_ADDRESS = 20
#: The first wait, doubled at every further wrong password, up to ``MAX_DELAY``.
FIRST_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(minutes=15)
#: A count is forgotten after this long without a wrong password.
FORGET_FAILURES_AFTER = timedelta(hours=24)
#: How long a typed password counts as recent for sensitive actions (issuing tokens).
RECENT_PASSWORD = timedelta(minutes=10)
#: How stale a token's "last used" may get before a request updates it.
LAST_USED_RESOLUTION = timedelta(minutes=5)
#: A hash to check against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = generate_password_hash("not a password")


class Unauthorized(RegistryError):
    """No valid credentials (HTTP 401)."""

    status = 401


class TooManyAttempts(RegistryError):
    """Sign-in refused for ``retry_after_s`` seconds after repeated wrong passwords (HTTP 429)."""

    status = 429

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many wrong passwords: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Forbidden(RegistryError):
    """Signed in, but the role does not allow this (HTTP 403)."""

    status = 403


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the user's name and role, and how they proved it."""

    username: str
    role: str
    via: str = "session"
    #: The ``LoginSession`` of a signed-in browser (None for tokens).
    session_id: str | None = None

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


def _throttle_keys(username: str, address: str) -> dict[str, int]:
    """The throttle keys of a sign-in and the wrong passwords each allows before waiting."""
    return {
        f"address {address}"[:200]: FREE_FAILURES_PER_ADDRESS,
        f"user {username[:64]} from {address}"[:200]: FREE_FAILURES_PER_USER,
    }


def _wait(row: LoginThrottle, free: int, now: datetime) -> timedelta:
    """How much longer sign-in waits for one throttle key (zero or less: not at all)."""
    beyond = row.failures - free
    if beyond < 0:
        return timedelta(0)
    delay = min(FIRST_DELAY * 2 ** min(beyond, 30), MAX_DELAY)
    return row.last_failure_at + delay - now


def _count_failure(session: Session, key: str, now: datetime) -> None:
    """One more wrong password for ``key``; an upsert, so concurrent workers lose no count."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = LoginThrottle.__table__
    statement = dialect.insert(table).values(key=key, failures=1, last_failure_at=now)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"failures": table.c.failures + 1, "last_failure_at": now},
        )
    )


def authenticate(session: Session, username: str, password: str, address: str) -> User:
    """The active user with that name and password, signing in from client ``address``.

    Each wrong password counts against the address and against the (username, address) pair,
    whether the user exists or not; beyond their free allowance the key waits ``FIRST_DELAY``,
    doubled per further failure up to ``MAX_DELAY`` (HTTP 429 meanwhile, with no password
    checked). The caller commits even on failure, so the counts hold across workers."""
    now = now_utc()
    session.execute(  # every count left alone long enough is forgotten (the table stays small)
        delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - FORGET_FAILURES_AFTER)
    )
    keys = _throttle_keys(username, address)
    rows = {
        row.key: row
        for row in session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))
    }
    wait = max(
        (_wait(rows[key], free, now) for key, free in keys.items() if key in rows),
        default=timedelta(0),
    )
    if wait > timedelta(0):
        raise TooManyAttempts(math.ceil(wait.total_seconds()))
    user = session.scalar(select(User).where(User.username == username))
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not ok or not user.active:
        for key in keys:
            _count_failure(session, key, now)
        raise Unauthorized("wrong username or password")
    pair = list(keys)[1]
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == pair))
    user.last_login_at = now
    return user


def start_session(session: Session, user: User, lifetime: timedelta) -> str:
    """A new signed-in session of ``user`` (password typed now); returns its id for the cookie.
    The user's ended and expired sessions are dropped on the way."""
    now = now_utc()
    session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id,
            or_(LoginSession.ended_at.is_not(None), LoginSession.created_at < now - lifetime),
        )
    )
    session_id = secrets.token_urlsafe(32)
    session.add(LoginSession(id=session_id, user_id=user.id, created_at=now, password_at=now))
    session.flush()
    return session_id


def end_session(session: Session, session_id: str) -> None:
    """Sign out: the session's cookie is refused from now on, wherever a copy of it is."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now_utc())
    )


def session_principal(
    session: Session, user_id: int, epoch: int, session_id: str
) -> Principal | None:
    """The principal of a signed session cookie, unless the user changed or left since, or the
    session was ended."""
    row = session.execute(
        select(User.username, User.role, User.active, User.session_epoch)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(User.id == user_id, LoginSession.id == session_id, LoginSession.ended_at.is_(None))
    ).first()
    if row is None or not row.active or row.session_epoch != epoch:
        return None
    return Principal(row.username, row.role, session_id=session_id)


def password_is_recent(session: Session, session_id: str) -> bool:
    """Whether the password was typed in this session within ``RECENT_PASSWORD``."""
    typed = session.scalar(select(LoginSession.password_at).where(LoginSession.id == session_id))
    return typed is not None and now_utc() - typed <= RECENT_PASSWORD


def confirm_password(session: Session, who: Principal, password: str, address: str) -> None:
    """Check the signed-in user's password again (throttled like sign-in); it is then recent."""
    if who.session_id is None:
        raise Forbidden("this needs a signed-in session, not an API token")
    authenticate(session, who.username, password, address)
    session.execute(
        update(LoginSession).where(LoginSession.id == who.session_id).values(password_at=now_utc())
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, username: str, name: str) -> tuple[ApiToken, str]:
    """A new token for the user; the plain token is returned here and never again."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise ValidationError(
            "bad token name", details=[{"field": "name", "reason": "1–100 characters"}]
        )
    check_name(check_text(name, "name"), "name")
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
