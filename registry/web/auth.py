"""Who may do what, checked once per request for every view; sign-in, tokens, user admin.

Every request gets a principal from a bearer token (``Authorization: Bearer lcr_…``) or the
signed session cookie. A view's required role is what it declares with ``@requires`` or, by
default, *editor* for any write method and nothing (or *viewer*, when ``READ_REQUIRES_LOGIN``)
for reads, so a new write view is protected without anyone remembering to. Writes made with the
session cookie also need the CSRF token (Flask-WTF); bearer tokens are not sent by browsers on
their own, so token writes need none. Responses carry security headers and a per-request CSP
nonce that every inline script, the folium maps' included, must bear.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from registry import accounts
from registry.accounts import Forbidden, Principal, TooManyAttempts, Unauthorized
from registry.db import transaction
from registry.errors import RegistryError, ValidationError
from registry.models import ROLES, ApiToken, User
from registry.schemas import INT32_MAX
from registry.web import error_response, query_number, safe_next, sessions

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Marks a view that anyone may use, signed in or not (sign-in itself, static files).
PUBLIC = "public"
F = TypeVar("F", bound=Callable[..., Any])

#: Content Security Policy; {nonce} is the request's. Styles stay inline (Leaflet and folium set
#: style attributes); images may come from OpenStreetMap's tile servers when online.
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https://tile.openstreetmap.org "
    "https://*.tile.openstreetmap.org; connect-src 'self'; font-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: HSTS for responses served over HTTPS (a year).
HSTS = "max-age=31536000; includeSubDomains"
_SCRIPT_TAG = re.compile(r"<script(?=[\s>])", re.IGNORECASE)


def requires(role: str) -> Callable[[F], F]:
    """Declare the role a view needs for every method (``PUBLIC`` for none)."""
    if role != PUBLIC and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: F) -> F:
        view.required_role = role  # type: ignore[attr-defined]
        return view

    return mark


def principal() -> Principal | None:
    return g.get("principal")


def actor() -> str:
    """The audit log's name for whoever makes this request (writes always have one)."""
    who = principal()
    return who.actor if who else "anonymous"


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def with_nonce(html: str) -> str:
    """A whole HTML document (e.g. a folium map) whose scripts bear this request's nonce."""
    return _SCRIPT_TAG.sub(f'<script nonce="{csp_nonce()}"', html)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _load_principal() -> Principal | None:
    token = _bearer()
    if token is not None:
        g.token_auth = True
        with transaction(sessions()) as db:
            return accounts.token_principal(db, token)
    uid, epoch, sid = session.get("uid"), session.get("epoch"), session.get("sid")
    if not (isinstance(uid, int) and isinstance(epoch, int) and isinstance(sid, str)):
        return None
    with sessions()() as db:
        found = accounts.session_principal(db, uid, epoch, sid)
    if found is None:
        session.clear()
    return found


def _required_role() -> str | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.endpoint == "static":
        return None
    declared = getattr(view, "required_role", None)
    if declared is not None:
        return None if declared == PUBLIC else declared
    if request.method not in SAFE_METHODS:
        return "editor"
    return "viewer" if current_app.config["READ_REQUIRES_LOGIN"] else None


def _guard() -> Any:
    g.principal = _load_principal()
    needed = _required_role()
    if needed:
        who = g.principal
        if who is None:
            if request.method in SAFE_METHODS and not request.path.startswith("/api/"):
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            raise Unauthorized(
                "sign in first (or send an API token)",
                details=[{"field": "Authorization", "reason": f"this needs the {needed} role"}],
            )
        if not who.can(needed):
            raise Forbidden(f"{who.username} is a {who.role}; this needs the {needed} role")
    if request.method not in SAFE_METHODS and not g.get("token_auth"):
        csrf.protect()
    return None


def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if principal() is not None:
        response.headers.setdefault("Cache-Control", "private, no-store")
        response.vary.add("Cookie")
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # _guard decides when to check
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's lifetime
    csrf.init_app(app)
    app.before_request(_guard)
    app.after_request(_headers)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(csp_nonce=csp_nonce, principal=principal)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Any:
        return error_response(
            ValidationError(
                f"refused: {exc.description}",
                details=[{"field": "csrf_token", "reason": "is missing or wrong: reload the form"}],
            )
        )


# ------------------------------------------------------------------ sign-in and sign-out
def _client_address() -> str:
    """Where the request comes from (the proxy's client when PROXY_FIX_X_FOR trusts it)."""
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login() -> Any:
    target = safe_next(url_for("pages.home"))  # a 400 now, not after the password is checked
    error: RegistryError | None = None
    if request.method == "POST":
        try:
            with sessions()() as db:
                try:
                    user = accounts.authenticate(
                        db,
                        request.form.get("username", ""),
                        request.form.get("password", ""),
                        _client_address(),
                    )
                    uid, epoch = user.id, user.session_epoch
                    sid = accounts.start_session(db, user, current_app.permanent_session_lifetime)
                finally:
                    db.commit()  # the count of wrong passwords too
        except (Unauthorized, TooManyAttempts) as exc:
            error = exc
        else:
            session.clear()  # a fresh session (and CSRF token) on every sign-in
            session.permanent = True
            session.update(uid=uid, epoch=epoch, sid=sid)
            return redirect(target, code=303)
    response = make_response(
        render_template("login.html", error=error, next=request.values.get("next", "")),
        error.status if error else 200,
    )
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


@bp.post("/logout")
@requires(PUBLIC)
def logout() -> Any:
    """Sign out here and server-side: a copy of the cookie no longer signs anyone in."""
    who = principal()
    if who is not None and who.session_id is not None:
        with transaction(sessions()) as db:
            accounts.end_session(db, who.session_id)
    session.clear()
    return redirect(url_for("pages.home"))


# ------------------------------------------------------------------ own API tokens
@bp.route("/account", methods=["GET", "POST"])
@requires("viewer")
def account() -> Any:
    """The signed-in user's API tokens: issue one (shown once) or revoke one. Issuing needs a
    browser session whose password was typed recently (asked again otherwise), so neither a
    token nor a forgotten open session can mint tokens."""
    who = principal()
    assert who is not None
    new_token = error = None
    try:
        if request.method == "POST":
            if who.session_id is None:
                raise Forbidden("managing tokens needs a signed-in session, not an API token")
            if not request.form.get("revoke"):
                _check_recent_password(who.session_id, who)
            with transaction(sessions()) as db:
                if request.form.get("revoke"):
                    accounts.revoke_token(
                        db,
                        who.username,
                        query_number(
                            "revoke", None, 1, INT32_MAX, integer=True, values=request.form
                        ),
                    )
                else:
                    _token, new_token = accounts.issue_token(
                        db, who.username, request.form.get("name", "")
                    )
    except RegistryError as exc:
        error = exc
    with sessions()() as db:
        user = accounts.get_user(db, who.username)
        tokens = db.query(ApiToken).filter_by(user_id=user.id).order_by(ApiToken.id).all()
        recent = who.session_id is not None and accounts.password_is_recent(db, who.session_id)
    return render_template(
        "account.html",
        tokens=tokens,
        new_token=new_token,
        error=error,
        password_needed=not recent,
        recent_minutes=int(accounts.RECENT_PASSWORD.total_seconds() // 60),
    ), (error.status if error else 200)


def _check_recent_password(session_id: str, who: Principal) -> None:
    """Pass if the password was typed recently in this session, or is typed now (checked and
    throttled like sign-in); else a 401 asking for it."""
    password = request.form.get("password", "")
    with sessions()() as db:
        if accounts.password_is_recent(db, session_id):
            return
        if not password:
            raise Unauthorized(
                _("Type your password again to issue a token."),
                details=[
                    {"field": "password", "reason": "is required (not typed in the last minutes)"}
                ],
            )
        try:
            accounts.confirm_password(db, who, password, _client_address())
        finally:
            db.commit()  # wrong passwords count even though the request fails


# ------------------------------------------------------------------ users (admins)
@bp.route("/admin/users", methods=["GET", "POST"])
@requires("admin")
def users() -> Any:
    """Every user; admins add users and change roles, status and passwords."""
    error = done = None
    if request.method == "POST":
        form = request.form
        try:
            with transaction(sessions()) as db:
                if form.get("action") == "create":
                    accounts.create_user(
                        db,
                        form.get("username", ""),
                        form.get("password", ""),
                        form.get("role", "viewer"),
                    )
                else:
                    accounts.update_user(
                        db,
                        form.get("username", ""),
                        role=form.get("role") or None,
                        active={"1": True, "0": False}.get(form.get("active", "")),
                        password=form.get("password") or None,
                    )
            done = form.get("username")
        except RegistryError as exc:
            error = exc
    with sessions()() as db:
        everyone = db.query(User).order_by(User.username).all()
    return render_template(
        "users.html", users=everyone, roles=ROLES, error=error, done=done, title=_("Users")
    ), (error.status if error else 200)
