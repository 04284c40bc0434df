"""A newcomer's way in: a link to something private offers to sign in and come back, sign-up
shows its rules before any submit and signs the account in, and team orgs take names with
spaces."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from chaoshub.auth import passwords
from chaoshub.auth import service as auth_service
from chaoshub.auth.routes import USERNAME_PATTERN
from chaoshub.core.errors import ValidationFailed
from chaoshub.core.web import SESSION_COOKIE
from chaoshub.dashboard import validation
from tests.conftest import PASSWORD, csrf, sign_in, sign_up, signed_up_client
from tests.experiment_data import create, variant
from tests.helpers import running_hub, sign_up_over_http

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _main(response) -> str:
    """The page's own content, without the top bar (whose form carries a per-browser token)."""
    html = response.get_data(as_text=True)
    return re.search(r'<main class="page">(.*)</main>', html, re.S).group(1)


def _without_links_to(path: str, html: str) -> str:
    return html.replace(path, "<path>")


# A signed-out visitor's not-found page ----------------------------------------------------


def test_a_private_path_and_a_missing_one_get_the_same_not_found_page_with_sign_in(app):
    alice = signed_up_client(app, "alice")
    experiment_id = create(alice)["id"]
    response = alice.post(f"/api/v1/experiments/{experiment_id}/executions", json=variant("passed"),
                          headers={"X-CSRF-Token": csrf(alice)})
    assert response.status_code == 201
    execution_id = response.get_json()["id"]
    private = {
        "workspace": "/alice/Personal",
        "experiment": f"/alice/Personal/experiment/{experiment_id}",
        "execution": f"/alice/Personal/experiment/{experiment_id}/execution/{execution_id}",
    }
    missing = {
        "workspace": "/alice/Nothing-here",
        "experiment": "/alice/Nothing-here/experiment/" + experiment_id[::-1],
        "execution": f"/alice/Nothing-here/experiment/{experiment_id}/execution/{execution_id}",
    }
    for kind, path in private.items():
        assert alice.get(path, headers=BROWSER).status_code == 200, kind  # it does exist
    visitor = app.test_client()
    for kind in private:
        seen = visitor.get(private[kind], headers=BROWSER)
        unknown = visitor.get(missing[kind], headers=BROWSER)
        assert seen.status_code == unknown.status_code == 404, kind
        assert f'href="/signin?next={private[kind]}"' in _main(seen)
        assert f'href="/signin?next={missing[kind]}"' in _main(unknown)
        assert (_without_links_to(private[kind], _main(seen))
                == _without_links_to(missing[kind], _main(unknown))), kind


def test_the_sign_in_offer_keeps_the_query_and_is_only_for_signed_out_browsers(app):
    signed_up_client(app, "alice")
    visitor = app.test_client()
    page = visitor.get("/alice/Personal?tab=runs&x=1", headers=BROWSER)
    assert 'href="/signin?next=/alice/Personal%3Ftab%3Druns%26x%3D1"' in _main(page)
    assert "sign-in-offer" not in _main(signed_up_client(app, "bob").get("/alice/Personal",
                                                                          headers=BROWSER))
    api = visitor.get("/api/v1/orgs/alice/workspaces/Personal")
    assert api.status_code == 404 and api.is_json  # API clients get JSON, no page


def test_sign_in_goes_back_to_next_only_when_it_is_a_path_on_this_site(app):
    sign_up(app.test_client(), "alice")
    cases = {
        "/alice/Personal?tab=runs": "/alice/Personal?tab=runs",
        "//evil.example/x": "/",
        "https://evil.example/": "/",
        "/%2F/evil.example": "/",
        "/\\evil.example": "/",
        "javascript:alert(1)": "/",
        "alice/Personal": "/",
    }
    for target, expected in cases.items():
        browser = app.test_client()
        answer = browser.post("/signin", data={"username": "alice", "password": PASSWORD,
                                               "next": target, "csrf_token": csrf(browser)})
        assert answer.status_code == 303, target
        assert answer.headers["Location"] == expected, target
    # The form carries only a safe `next` onward.
    assert 'name="next" value="/alice"' in app.test_client().get(
        "/signin?next=/alice").get_data(as_text=True)
    assert 'name="next"' not in app.test_client().get(
        "/signin?next=//evil.example").get_data(as_text=True)


# Sign-up -------------------------------------------------------------------------------------


def test_the_sign_up_form_states_the_rules_the_service_applies(client):
    html = client.get("/signup").get_data(as_text=True)
    assert str(escape(auth_service.USERNAME_RULE)) in html
    assert f"At least {passwords.MIN_LENGTH} characters" in html
    assert f'minlength="{passwords.MIN_LENGTH}"' in html
    assert f'pattern="{USERNAME_PATTERN}"' in html
    # The browser's pattern (anchored, as browsers do) accepts exactly what the service does.
    samples = ["ab", "a", "a-b_c", "-ab", "_ab", "ab cd", "Ab9", "é-a", "a" * 39, "a" * 40,
               "a.b", "1-"]
    for sample in samples:
        assert (re.fullmatch(USERNAME_PATTERN, sample) is not None) == (
            auth_service.USERNAME.match(sample) is not None), sample


def test_sign_up_signs_the_account_in_and_goes_to_the_hub_or_next(app, client):
    answer = sign_up(client, "alice")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    assert client.get_cookie(SESSION_COOKIE) is not None
    home = client.get("/", headers=BROWSER)
    assert home.status_code == 200 and 'data-testid="viewer">alice<' in home.get_data(as_text=True)

    other = app.test_client()
    answer = sign_up(other, "bob", next="/alice")
    assert answer.headers["Location"] == "/alice"
    assert sign_up(app.test_client(), "carol", next="//evil.example").headers["Location"] == "/"
    # A refused sign-up signs nobody in, and keeps `next` for the next try.
    refused = app.test_client()
    answer = sign_up(refused, "dave", password="short", next="/alice")
    assert answer.status_code == 422 and refused.get_cookie(SESSION_COOKIE) is None
    assert 'name="next" value="/alice"' in answer.get_data(as_text=True)
    assert sign_in(app.test_client(), "bob").status_code == 303  # the password works too


# Orgs with a display name ----------------------------------------------------------------------


def test_an_org_named_with_spaces_gets_a_slug_address_and_keeps_its_name(app):
    alice = signed_up_client(app, "alice")
    answer = alice.post("/orgs", data={"name": "  Acme   Platform Team ",
                                       "csrf_token": csrf(alice)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/acme-platform-team"
    page = alice.get("/acme-platform-team", headers=BROWSER).get_data(as_text=True)
    assert ">Acme Platform Team</a></h1>" in page and "<title>Acme Platform Team" in page
    assert 'data-testid="org-address">/acme-platform-team<' in page
    api = alice.get("/api/v1/orgs/acme-platform-team").get_json()
    assert (api["name"], api["display_name"]) == ("acme-platform-team", "Acme Platform Team")
    assert "Acme Platform Team" in alice.get("/", headers=BROWSER).get_data(as_text=True)

    # A name that is a valid address already stays as it was, with no display name.
    assert alice.post("/orgs", data={"name": "Chaos-Crew", "csrf_token": csrf(alice)}
                      ).headers["Location"] == "/Chaos-Crew"
    assert alice.get("/api/v1/orgs/Chaos-Crew").get_json()["display_name"] == ""
    # Accents fold into the address; the same address again is taken.
    assert alice.post("/orgs", data={"name": "Équipe Réseau", "csrf_token": csrf(alice)}
                      ).headers["Location"] == "/equipe-reseau"
    taken = alice.post("/orgs", data={"name": "ACME platform team", "csrf_token": csrf(alice)})
    assert taken.status_code == 409 and "taken" in taken.get_data(as_text=True)


@pytest.mark.parametrize("name", ["!!", "a", "日本語のチーム", "x" * 101])
def test_an_org_name_that_makes_no_address_is_refused_with_a_clear_message(app, name):
    alice = signed_up_client(app, "alice")
    answer = alice.post("/orgs", data={"name": name, "csrf_token": csrf(alice)})
    assert answer.status_code == 422
    assert 'role="alert"' in answer.get_data(as_text=True)


def test_a_display_name_is_trimmed_and_refused_when_too_long_or_with_control_characters():
    assert validation.checked_display_name("  Acme \n Platform  Team ") == "Acme Platform Team"
    assert validation.checked_display_name(None) == ""
    for bad in ("x" * 101, "Ops\x07Team", "Ops\x00Team"):
        with pytest.raises(ValidationFailed):
            validation.checked_display_name(bad)
    assert validation.org_name_from("Acme Platform Team") == "acme-platform-team"
    assert validation.org_name_from("Acme") == "Acme"
    assert validation.org_name_from("--Ops  & SRE--") == "ops-sre"
    assert len(validation.org_name_from("word " * 20)) <= 39
    assert not validation.org_name_from("word " * 20).endswith("-")


# In a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("signin-flow-hub")) as url:
        sign_up_over_http(url, "ada")
        yield url


@pytest.mark.e2e
def test_a_link_to_a_private_workspace_offers_sign_in_and_comes_back(page, hub_url, tmp_path):
    page.goto(f"{hub_url}/ada/Nothing-here")
    missing = page.get_by_role("main").inner_text()
    answer = page.goto(f"{hub_url}/ada/Personal")
    assert answer.status == 404
    assert page.get_by_role("main").inner_text() == missing  # nothing tells that it exists
    offer = page.get_by_test_id("sign-in-offer")
    assert offer.is_visible()
    page.screenshot(path=str(tmp_path / "not-found.png"), full_page=True)
    offer.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{hub_url}/signin?next=/ada/Personal")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{hub_url}/ada/Personal")
    assert page.get_by_test_id("viewer").inner_text() == "ada"


@pytest.mark.e2e
def test_sign_up_shows_its_rules_first_and_lands_signed_in(page, hub_url, tmp_path):
    page.goto(f"{hub_url}/signup")
    assert "letters, digits" in page.get_by_test_id("username-rule").inner_text()
    assert f"{passwords.MIN_LENGTH} characters" in page.get_by_test_id("password-rule").inner_text()
    username = page.get_by_label("Username")
    password = page.get_by_label("Password")
    username.fill("grace hopper")
    password.fill("short")
    page.screenshot(path=str(tmp_path / "signup-rules.png"), full_page=True)
    # The browser holds back a form that breaks the rules: no round trip, the page stays.
    assert username.evaluate("e => e.validity.patternMismatch") is True
    assert password.evaluate("e => e.validity.tooShort") is True
    page.get_by_role("button", name="Create account").click()
    assert page.url == f"{hub_url}/signup"

    username.fill("grace")
    page.get_by_label("Display name").fill("Grace Hopper")
    password.fill(PASSWORD)
    assert username.evaluate("e => e.validity.valid") is True
    assert password.evaluate("e => e.validity.valid") is True
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{hub_url}/")
    assert page.get_by_test_id("viewer").inner_text() == "Grace Hopper"
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, Grace Hopper"


@pytest.mark.e2e
def test_a_team_org_named_with_spaces(page, hub_url):
    page.goto(f"{hub_url}/signup")
    page.get_by_label("Username").fill("linus")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{hub_url}/")
    assert "Spaces allowed" in page.locator("#org-name-rule").inner_text()
    page.get_by_label("Org name").fill("Acme Platform Team")
    page.get_by_role("button", name="Create org").click()
    page.wait_for_url(f"{hub_url}/acme-platform-team")
    assert page.get_by_role("heading", level=1).inner_text() == "Acme Platform Team"
    assert page.get_by_test_id("org-address").inner_text() == "/acme-platform-team"
    page.goto(f"{hub_url}/")
    assert "Acme Platform Team" in page.get_by_test_id("org").nth(1).inner_text()
