"""Accounts and access: every write needs an editor, CSRF on cookie writes, sessions, tokens,
security headers, and the record history with restore."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from registry import accounts, create_app, db
from registry.models import ApiToken, Audit, LoginSession, LoginThrottle, User
from registry.web.auth import SAFE_METHODS
from tests.conftest import PASSWORD, signed_in, with_csrf

#: Values for URL parts when every route is called.
URL_VALUES = {"layer": "sites", "code": "VT-BL-01", "name": "s1", "job_id": "x", "lang": "en"}


def write_routes(app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every write route, pages and API."""
    out = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - SAFE_METHODS)
        if not methods or rule.endpoint in ("auth.login", "auth.logout"):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[^<>]+:)?{arg}>", URL_VALUES.get(arg, "x"), url)
        out.extend((rule.endpoint, m, url) for m in methods)
    return out


def test_every_write_needs_an_editor(app: Any, loaded: Any, anonymous: Any) -> None:
    routes = write_routes(app)
    assert len(routes) >= 15 and {"api.create", "pages.edit", "auth.users"} <= {
        e for e, _, _ in routes
    }
    viewer = signed_in(app, "viewer")
    editor = signed_in(app, "editor")
    for endpoint, method, url in routes:
        r = anonymous.open(url, method=method, json={})
        assert r.status_code == 401, (endpoint, method, r.status_code)
        if url.startswith("/api/"):
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert r.get_json()["error"] == "Unauthorized"
        if endpoint != "auth.account":  # anyone signed in manages their own tokens
            assert viewer.open(url, method=method, json={}).status_code == 403, (endpoint, method)
        if endpoint.startswith("auth.users"):
            assert editor.open(url, method=method).status_code == 403
    with app.extensions["registry"]["sessions"]() as session:
        assert not session.scalars(select(Audit).where(Audit.actor != "test")).all()


def test_tokens_write_and_bad_tokens_are_refused(app: Any, loaded: Any, api: Any) -> None:
    body = {"tower_height_m": 33}
    assert (
        api.as_(app.tokens["viewer"])
        .patch("sites/VT-BL-01", json={**body, "version": 1})
        .status_code
        == 403
    )
    assert api.as_("lcr_not-a-token").get("sites").status_code == 401
    assert api.as_(None).patch("sites/VT-BL-01", json={**body, "version": 1}).status_code == 401
    r = api.patch("sites/VT-BL-01", json={**body, "version": 1})
    assert r.status_code == 200 and r.json()["properties"]["tower_height_m"] == 33
    sessions = app.extensions["registry"]["sessions"]
    with db.transaction(sessions) as session:
        stored = session.scalars(select(ApiToken.token_sha256)).all()
        assert app.tokens["editor"] not in stored and len(stored[0]) == 64  # only hashes
        token = session.scalar(select(ApiToken).join(User).where(User.username == "editor"))
        accounts.revoke_token(session, "editor", token.id)
    assert api.get("sites").status_code == 401
    with db.transaction(sessions) as session:
        accounts.update_user(session, "viewer", active=False)
    assert api.as_(app.tokens["viewer"]).get("sites").status_code == 401


def test_reading_can_require_a_login(db_url: str, tmp_path: Any) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "k" * 32,
            "READ_REQUIRES_LOGIN": True,
            "DATA_DIR": str(tmp_path),
        }
    )
    from tests.conftest import add_user

    token = add_user(app, "reader", "viewer")
    client = app.test_client()
    assert client.get("/api/v1/sites").status_code == 401
    page = client.get("/records/sites")
    assert page.status_code == 302 and "/login?next=/records/sites" in page.headers["Location"]
    assert client.get("/login").status_code == 200
    assert client.get("/lang/en?next=/login").status_code == 303  # on the sign-in page too
    ok = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    app.extensions["registry"]["engine"].dispose()


def test_forms_refuse_posts_without_the_csrf_token(app: Any, loaded: Any) -> None:
    admin = signed_in(app, "admin")
    admin.environ_base.pop("HTTP_X_CSRFTOKEN")
    for endpoint, method, url in write_routes(app):  # every form and cookie-borne API write
        r = admin.open(url, method=method, data={"version": "1", "name": "x"})
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), (endpoint, method)
    editor = signed_in(app, "editor")
    with_token = editor.environ_base.pop("HTTP_X_CSRFTOKEN")
    r = editor.post("/records/villages/V-BL-1/edit", data={"population": "999", "version": "1"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = editor.patch("/api/v1/villages/V-BL-1", json={"population": 999, "version": 1})
    assert r.status_code == 400 and r.get_json()["details"][0]["field"] == "csrf_token"
    r = editor.post(
        "/records/villages/V-BL-1/edit",
        data={"population": "999", "version": "1", "csrf_token": "forged"},
    )
    assert r.status_code == 400
    assert editor.get("/api/v1/villages/V-BL-1").get_json()["properties"]["population"] == 420
    r = editor.post("/account", data={"name": "script", "csrf_token": with_token})
    assert r.status_code == 200 and 'id="new-token">lcr_' in r.get_data(as_text=True)


def test_sign_in_sets_a_secure_session_and_changes_sign_it_out(db_url: str, tmp_path: Any) -> None:
    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "k" * 32, "DATA_DIR": str(tmp_path)}
    )  # production cookie settings
    from tests.conftest import add_user

    add_user(app, "lan", "editor")
    client = app.test_client()
    form = client.get("/login?next=/records/sites").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    wrong = client.post("/login", data={"username": "lan", "password": "nope", "csrf_token": csrf})
    unknown = client.post(
        "/login", data={"username": "ghost", "password": PASSWORD, "csrf_token": csrf}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in wrong.get_data(as_text=True)  # Vietnamese
    assert (
        client.post("/login", data={"username": "lan", "password": PASSWORD}).status_code == 400
    )  # login CSRF
    ok = client.post(
        "/login",
        data={
            "username": "lan",
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": "//evil.example/",
        },
    )
    assert ok.status_code == 303 and ok.headers["Location"] == "/"
    cookie = ok.headers["Set-Cookie"]
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=Lax"))
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        accounts.update_user(session, "lan", password="a new password 2026")
    client.get("/")  # the cookie is still sent but its epoch is old
    with client.session_transaction() as s:
        assert "uid" not in s
    app.extensions["registry"]["engine"].dispose()


def _login(client: Any, username: str, password: str) -> Any:
    return client.post("/login?lang=en", data={"username": username, "password": password})


def _from(app: Any, address: str) -> Any:
    client = with_csrf(app, app.test_client())
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _age_failures(app: Any, seconds: float) -> None:
    """Make every counted wrong password ``seconds`` older (instead of sleeping)."""
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        for row in session.scalars(select(LoginThrottle)):
            row.last_failure_at -= timedelta(seconds=seconds)


def test_wrong_passwords_slow_the_guesser_down_never_the_owner(app: Any, db_url: str) -> None:
    attacker = _from(app, "203.0.113.5")
    for _ in range(accounts.FREE_FAILURES_PER_USER):
        assert _login(attacker, "viewer", "guess").status_code == 401
        assert _login(attacker, "ghost", "guess").status_code == 401  # no such user
    known, unknown = _login(attacker, "viewer", PASSWORD), _login(attacker, "ghost", PASSWORD)
    for r in (known, unknown):  # the same answer: no hint of which usernames exist
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "try again in 1 seconds" in r.get_data(as_text=True)
    # the owner, elsewhere, signs in at once
    assert _login(_from(app, "198.51.100.7"), "viewer", PASSWORD).status_code == 303
    # the waits double with every further wrong password: 2 s, 4 s, 8 s
    for wait_s in (2, 4, 8):
        _age_failures(app, wait_s)
        assert _login(attacker, "viewer", "guess").status_code == 401
        assert _login(attacker, "viewer", PASSWORD).headers["Retry-After"] == str(wait_s)
    # counted in the database: another worker process on the same database sees it
    worker = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test"})
    r = _login(_from(worker, "203.0.113.5"), "viewer", PASSWORD)
    assert r.status_code == 429 and r.headers["Retry-After"] == "8"
    worker.extensions["registry"]["engine"].dispose()
    _age_failures(app, 8)  # once the wait is over the right password works
    assert _login(attacker, "viewer", PASSWORD).status_code == 303


def test_one_address_guessing_many_usernames_waits_too(app: Any) -> None:
    sprayer = _from(app, "203.0.113.9")
    for n in range(accounts.FREE_FAILURES_PER_ADDRESS):
        assert _login(sprayer, f"user{n}", "guess").status_code == 401
    assert _login(sprayer, "editor", PASSWORD).status_code == 429
    assert _login(_from(app, "198.51.100.7"), "editor", PASSWORD).status_code == 303


def test_signing_out_ends_the_session_on_the_server(app: Any) -> None:
    browser = with_csrf(app, app.test_client())
    assert _login(browser, "editor", PASSWORD).status_code == 303
    with browser.session_transaction() as cookie:
        stolen = dict(cookie)
    assert browser.get("/account").status_code == 200
    assert with_csrf(app, browser).post("/logout").status_code == 302
    thief = app.test_client()
    with thief.session_transaction() as cookie:
        cookie.update(stolen)
    r = thief.get("/account")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert thief.get("/").status_code == 200  # the stale cookie is simply dropped
    with thief.session_transaction() as cookie:
        assert "uid" not in cookie


def test_issuing_a_token_needs_a_session_with_a_recent_password(app: Any) -> None:
    def tokens() -> int:
        with app.extensions["registry"]["sessions"]() as session:
            return len(session.scalars(select(ApiToken)).all())

    before = tokens()
    scripted = app.test_client()
    r = scripted.post(
        "/account",
        data={"name": "more"},
        headers={"Authorization": f"Bearer {app.tokens['viewer']}"},
    )
    assert r.status_code == 403 and tokens() == before  # a token cannot mint tokens
    viewer = signed_in(app, "viewer")
    with db.transaction(app.extensions["registry"]["sessions"]) as session:
        for row in session.scalars(select(LoginSession)):
            row.password_at -= accounts.RECENT_PASSWORD + timedelta(seconds=1)
    page = viewer.get("/account?lang=en").get_data(as_text=True)
    assert 'name="password"' in page
    r = viewer.post("/account?lang=en", data={"name": "n1"})
    assert r.status_code == 401 and "Type your password again" in r.get_data(as_text=True)
    assert viewer.post("/account", data={"name": "n1", "password": "wrong"}).status_code == 401
    assert tokens() == before
    r = viewer.post("/account", data={"name": "n1", "password": PASSWORD})
    assert r.status_code == 200 and 'id="new-token">lcr_' in r.get_data(as_text=True)
    r = viewer.post("/account", data={"name": "n\u202e2"})  # a right-to-left override
    assert r.status_code == 400 and "U+202E" in r.get_data(as_text=True)
    r = viewer.post("/account", data={"name": "n2"})  # recent now: not asked again
    assert r.status_code == 200 and tokens() == before + 2
    assert 'name="password"' not in r.get_data(as_text=True)


@pytest.mark.parametrize("hops", [0, 1])
def test_forwarded_host_and_proto_are_honoured_only_when_configured(
    db_url: str, tmp_path: Any, hops: int
) -> None:
    settings = {f"PROXY_FIX_X_{name}": hops for name in ("FOR", "PROTO", "HOST")}
    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t", "DATA_DIR": str(tmp_path)}
        | settings
    )
    forwarded = {
        "X-Forwarded-Host": "registry.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.5",
    }
    links = app.test_client().get("/api/v1/", headers=forwarded).get_json()
    base = "https://registry.example" if hops else "http://localhost"
    assert links["openapi"] == f"{base}/api/v1/openapi.json"
    assert links["layers"]["sites"] == f"{base}/api/v1/sites"
    client = with_csrf(app, app.test_client())
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.5"
    assert _login(client, "ghost", "guess").status_code == 401
    # the throttle counts the forwarded client's address only behind a trusted proxy
    with app.extensions["registry"]["sessions"]() as session:
        keys = set(session.scalars(select(LoginThrottle.key)))
    assert f"address {'203.0.113.5' if hops else '127.0.0.1'}" in keys
    app.extensions["registry"]["engine"].dispose()


def test_admins_manage_users_and_keep_one_admin(app: Any) -> None:
    admin = signed_in(app, "admin")
    r = admin.post(
        "/admin/users",
        data={
            "action": "create",
            "username": "hoa",
            "password": "mật khẩu dài đủ",
            "role": "editor",
        },
    )
    assert r.status_code == 200 and "hoa" in r.get_data(as_text=True)
    r = admin.post("/admin/users", data={"action": "create", "username": "x", "password": "short"})
    assert r.status_code == 400 and "at least 10 characters" in r.get_data(as_text=True)
    r = admin.post("/admin/users", data={"username": "admin", "role": "viewer"})
    assert r.status_code == 409 and "at least one active admin" in r.get_data(as_text=True)
    with app.extensions["registry"]["sessions"]() as session:
        assert accounts.get_user(session, "hoa").role == "editor"
        assert accounts.get_user(session, "admin").role == "admin"


def test_users_cli_creates_the_first_admin_and_tokens(runner: Any, app: Any) -> None:
    r = runner.invoke(
        args=["users", "create", "chi", "--role", "admin", "--password-stdin"],
        input="một mật khẩu dài\n",
    )
    assert r.exit_code == 0 and "Created admin chi" in r.output
    r = runner.invoke(args=["users", "create", "chi", "--password-stdin"], input="x" * 12 + "\n")
    assert r.exit_code != 0 and "is taken" in r.output
    token = runner.invoke(args=["users", "token", "chi", "script"]).output.strip()
    with app.test_client() as c:
        assert (
            c.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        assert (
            c.post(
                "/api/v1/villages", json={}, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 400
        )  # allowed, then validated
    assert "chi\tadmin\tactive" in runner.invoke(args=["users", "list"]).output


def test_security_headers_and_script_nonces(client: Any, anonymous: Any, loaded: Any) -> None:
    for r in (anonymous.get("/"), anonymous.get("/api/v1/sites"), client.get("/map")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
        csp = r.headers["Content-Security-Policy"]
        assert "object-src 'none'" in csp and "'unsafe-inline'" not in csp.split(";")[1]
    page = client.get("/map")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", html, flags=re.IGNORECASE)
    assert scripts and all(f'nonce="{nonce}"' in s for s in scripts)
    assert not re.search(r"\son(click|load|error|change)=", html, flags=re.IGNORECASE)
    assert page.headers["Cache-Control"] == "private, no-store"


def test_history_and_restore(api: Any, loaded: Any) -> None:
    assert api.patch("villages/V-BL-1", json={"population": 500, "version": 1}).ok
    assert api.patch("villages/V-BL-1", json={"name": "Bản Mới", "version": 2}).ok
    entries = api.get("villages/V-BL-1/history").json()["entries"]
    assert [e["action"] for e in entries] == ["create", "update", "update"]
    assert entries[1]["changed"] == ["population"] and entries[2]["changed"] == ["name"]
    assert entries[1]["actor"] == "editor (token tests)"
    stale = api.post("villages/V-BL-1/restore", json={"audit_id": entries[0]["id"], "version": 1})
    assert stale.status_code == 409
    back = api.post("villages/V-BL-1/restore", json={"audit_id": entries[0]["id"], "version": 3})
    assert back.status_code == 200
    props = back.json()["properties"]
    assert (props["population"], props["name"], props["version"]) == (420, "Bản Nà Khum", 4)
    assert api.get("villages/V-BL-1/history").json()["entries"][-1]["action"] == "restore"
    # a deleted record comes back from its deletion entry
    assert api.delete("sellers/SEL-1", headers={"If-Match": '"1"'}).status_code == 204
    gone = api.get("sellers/SEL-1/history").json()["entries"][-1]
    assert gone["action"] == "delete" and gone["after"] is None
    again = api.post("sellers/SEL-1/restore", json={"audit_id": gone["id"]})
    assert again.status_code == 201 and again.json()["properties"]["name"] == "Lò Thị Mai"
    assert (
        api.post(
            "sellers/SEL-1/restore", json={"audit_id": entries[0]["id"], "version": 1}
        ).status_code
        == 404
    )  # an entry of another record
    assert (
        api.post("sellers/SEL-1/restore", json={"audit_id": "1", "version": 1}).status_code == 400
    )


def test_history_page_restores_for_editors(client: Any, loaded: Any) -> None:
    client.patch("/api/v1/villages/V-BL-1", json={"population": 77, "version": 1})
    page = client.get("/records/villages/V-BL-1/history").get_data(as_text=True)
    assert "editor" in page and "420 → 77" in page
    first = re.findall(r'data-audit="(\d+)"', page)[-1]
    r = client.post("/records/villages/V-BL-1/restore", data={"audit_id": first, "version": "2"})
    assert r.status_code == 303
    assert client.get("/api/v1/villages/V-BL-1").get_json()["properties"]["population"] == 420


def test_two_editors_on_one_site_one_wins_nothing_lost(app: Any, loaded: Any, api: Any) -> None:
    """Both read version 1 and write at once over HTTP: one 200, one 409 with the winner's
    record; the loser re-applies on the new version and both changes are kept."""
    from tests.conftest import add_user

    other = api.as_(add_user(app, "editor2", "editor"))
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def edit(who: str, client: Any, change: dict[str, Any]) -> None:
        start.wait()
        results[who] = client.patch("sites/VT-BL-01", json=change, headers={"If-Match": '"1"'})

    threads = [
        threading.Thread(target=edit, args=("a", api, {"tower_height_m": 41})),
        threading.Thread(target=edit, args=("b", other, {"name": "Bình Lư đỉnh"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], codes
    loser = next(r for r in results.values() if r.status_code == 409).json()
    assert loser["current"]["properties"]["version"] == 2
    retry = {"tower_height_m": 41} if results["a"].status_code == 409 else {"name": "Bình Lư đỉnh"}
    client = api if results["a"].status_code == 409 else other
    assert client.patch("sites/VT-BL-01", json=retry, headers={"If-Match": '"2"'}).ok
    final = api.get("sites/VT-BL-01").json()["properties"]
    assert (final["tower_height_m"], final["name"], final["version"]) == (41, "Bình Lư đỉnh", 3)


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_see_user_admin(app: Any, role: str) -> None:
    assert signed_in(app, role).get("/admin/users").status_code == 403
    assert "editor" in signed_in(app, "admin").get("/admin/users").get_data(as_text=True)


def test_tokens_are_revoked_on_the_account_page(app: Any) -> None:
    viewer = signed_in(app, "viewer")
    with app.extensions["registry"]["sessions"]() as session:
        token_id = session.scalar(select(ApiToken.id).join(User).where(User.username == "viewer"))
    assert viewer.post("/account", data={"revoke": "x"}).status_code == 400
    r = viewer.post("/account", data={"revoke": str(token_id)})
    assert r.status_code == 200 and "đã thu hồi" in r.get_data(as_text=True)  # "revoked"
    with app.extensions["registry"]["sessions"]() as session:
        assert session.get(ApiToken, token_id).revoked
