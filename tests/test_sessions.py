"""Sessions, local passwords and sign-in limits."""

from __future__ import annotations

from datetime import timedelta

from chaoshub import create_app
from chaoshub.core.models import utcnow
from chaoshub.core.web import SESSION_COOKIE
from tests.conftest import PASSWORD, csrf, sign_in, sign_up, signed_up_client


def test_common_passwords_are_refused(client):
    for weak in ("password123", "qwertyuiop", "1234567890"):
        response = sign_up(client, "alice", password=weak)
        assert response.status_code == 422
        assert "too common" in response.get_data(as_text=True)


def test_a_session_ends_after_its_lifetime(app, monkeypatch):
    from chaoshub.auth import service

    alice = signed_up_client(app, "alice")
    assert alice.get("/").status_code == 200  # now resolved and cached
    later = utcnow() + timedelta(days=app.config["SESSION_LIFETIME_DAYS"], seconds=1)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    assert alice.get("/").status_code == 302


def test_sign_out_everywhere_ends_every_session(app):
    laptop = signed_up_client(app, "alice")
    phone = app.test_client()
    sign_in(phone, "alice")
    assert phone.get("/").status_code == 200
    response = laptop.post("/signout/everywhere", data={"csrf_token": csrf(laptop)})
    assert response.status_code == 303
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 302


def test_cookies_are_secure_behind_https(settings):
    app = create_app({**settings, "PUBLIC_URL": "https://hub.example.com"})
    browser = app.test_client()
    sign_up(browser, "alice")
    sign_in(browser, "alice")
    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_repeated_failed_sign_ins_are_limited(client):
    sign_up(client, "alice")
    for _ in range(10):
        assert sign_in(client, "alice", "wrong password here").status_code == 401
    limited = sign_in(client, "alice", "wrong password here")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "too many" in limited.get_data(as_text=True)
    # Even the right password waits for the window: a guesser learns nothing from it.
    assert sign_in(client, "alice").status_code == 429


def test_a_good_sign_in_clears_earlier_failures(client):
    sign_up(client, "alice")
    for _ in range(9):
        sign_in(client, "alice", "wrong password here")
    assert sign_in(client, "alice").status_code == 303
    for _ in range(9):
        assert sign_in(client, "alice", "wrong password here").status_code == 401


def test_closed_sign_up_refuses_the_form_but_operators_still_create(settings):
    app = create_app({**settings, "SIGNUP_OPEN": "false"})
    browser = app.test_client()
    response = sign_up(browser, "alice")
    assert response.status_code == 403
    assert "closed" in response.get_data(as_text=True)
    from chaoshub.auth import service as auth

    with app.app_context():
        assert auth.create_local_account("ops", PASSWORD).username == "ops"
    assert sign_in(browser, "ops").status_code == 303


def test_settings_sets_a_password_and_needs_a_session(app):
    visitor = app.test_client()
    assert visitor.get("/settings").headers["Location"] == "/signin?next=/settings"
    alice = signed_up_client(app, "alice")
    page = alice.get("/settings")
    assert page.status_code == 200 and "Ways to sign in" in page.get_data(as_text=True)
    weak = alice.post("/settings/password", data={"csrf_token": csrf(alice),
                                                  "current_password": PASSWORD,
                                                  "password": "password"})
    assert weak.status_code == 422
    changed = alice.post("/settings/password", data={"csrf_token": csrf(alice),
                                                     "current_password": PASSWORD,
                                                     "password": "another long passphrase"})
    assert changed.status_code == 303
    assert sign_in(app.test_client(), "alice", "another long passphrase").status_code == 303


def test_one_address_trying_many_usernames_is_limited(client):
    for i in range(50):
        assert sign_in(client, f"nobody{i}", "wrong password here").status_code == 401
    assert sign_in(client, "someone-else", "wrong password here").status_code == 429
