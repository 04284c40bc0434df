"""One JSON error shape for the API, clear pages for browsers, never a traceback."""

from __future__ import annotations

import pytest

from tests.conftest import post_json, sign_in, signed_up_client
from tests.experiment_data import experiment

SHAPE = {"error", "message", "details"}


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def test_unknown_api_route(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.is_json and set(response.get_json()) == SHAPE
    assert response.get_json()["error"] == "not_found"


def test_unknown_page_for_a_browser_is_a_page(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Nothing here" in response.get_data(as_text=True)


def test_wrong_method(client):
    response = client.delete("/status/live")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_malformed_json(alice):
    response = alice.post(
        "/api/v1/orgs/alice/workspaces/Personal/experiments",
        data=b'{"title": ',
        content_type="application/json",
        headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert "Traceback" not in response.get_data(as_text=True)


def test_json_that_is_not_an_object(alice):
    response = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments", [1, 2])
    assert response.status_code == 400
    assert "must be an object" in response.get_json()["message"]


def test_wrong_content_type(alice):
    response = alice.post(
        "/api/v1/tokens",
        data="name: x",
        content_type="text/plain",
        headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value},
    )
    assert response.status_code == 415
    assert set(response.get_json()) == SHAPE


def test_oversize_body(settings):
    from chaoshub import create_app

    app = create_app({**settings, "MAX_CONTENT_LENGTH": 2048})
    alice = signed_up_client(app, "alice")
    response = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                         {"title": "x" * 4096, "description": "d", "method": []})
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_an_unexpected_failure_is_a_clean_500(app, caplog):
    @app.get("/api/v1/explode")
    def explode():
        raise RuntimeError("secret detail that must not leak")

    response = app.test_client().get("/api/v1/explode")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "internal_error"
    assert "secret detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "secret detail" in caplog.text  # it went to the log instead


def test_security_headers_on_every_answer(client):
    for response in (client.get("/signin"), client.get("/api/v1/nothing")):
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("target,expected", [
    ("/", "/"), ("/alice/Personal", "/alice/Personal"), ("https://evil.example", "/"),
    ("//evil.example", "/"), ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), (None, "/"),
])
def test_sign_in_never_redirects_off_site(app, target, expected):
    client = app.test_client()
    from tests.conftest import csrf, sign_up

    sign_up(client, "alice")
    data = {"username": "alice", "password": "a long enough passphrase",
            "csrf_token": csrf(client)}
    if target is not None:
        data["next"] = target
    response = client.post("/signin", data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_nul_characters_in_urls_and_names_are_refused_not_a_500(app):
    # PostgreSQL keeps no NUL in text: each of these once reached a query and failed there.
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "lab"}).status_code == 201
    made = post_json(olga, "/api/v1/orgs/team/workspaces/lab/experiments", experiment())
    assert made.status_code == 201, made.get_json()
    experiment_id = made.get_json()["id"]
    for url in ("/api/v1/orgs/team/workspaces/lab/experiments?author=%00",
                "/api/v1/orgs/team/workspaces/lab/experiments?tag=a%00b",
                "/api/v1/orgs/team/workspaces/lab/experiments?search=%00",
                "/api/v1/orgs/te%00am", "/te%00am/lab", "/api/v1/search?q=%00"):
        response = olga.get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.get_json()["message"]
    for url, body in ((f"/api/v1/experiments/{experiment_id}/move",
                       {"org": "te\u0000am", "workspace": "lab"}),
                      ("/api/v1/orgs/team/members", {"username": "\u0000", "role": "viewer"}),
                      ("/api/v1/orgs/team/workspaces/lab/members",
                       {"username": "ma\u0000ry", "role": "viewer"}),
                      ("/api/v1/orgs/team/invitations", {"username": "\u0000"}),
                      ("/api/v1/orgs", {"name": "n\u0000ul"})):
        response = post_json(olga, url, body)
        assert 400 <= response.status_code < 500, (url, response.get_json())
    signing_in = sign_in(app.test_client(), "ol\u0000ga")
    # Form fields are checked at the edge, as URLs and JSON bodies are.
    assert signing_in.status_code == 400
    assert "NUL" in signing_in.text
