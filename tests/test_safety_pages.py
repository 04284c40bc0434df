"""The pages of what keeps runs safe: the kill switch's banner on every page of its org (for
its members alone), the org page's forms that engage and release it, and the workspace
settings page's run policy form."""

from __future__ import annotations

import logging
import re

import pytest
from werkzeug.datastructures import MultiDict

from chaoshub.core import web
from chaoshub.dashboard import policy_form
from chaoshub.dashboard.schemas import RunPolicy
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, make_token, variant

BANNER = 'data-testid="kill-switch-banner"'
SWITCH = "/api/v1/orgs/team/kill-switch"
POLICY = "/api/v1/orgs/team/workspaces/ops/policy"


def runnable() -> dict:
    """An experiment the default run policy lets run: one process probe, one process action."""
    def process(name: str, kind: str) -> dict:
        return {"type": kind, "name": name, "provider": {
            "type": "process", "path": "/bin/true", "arguments": [], "timeout": 30}}
    return {"title": "Safe", "description": "d",
            "steady-state-hypothesis": {"title": "ok", "probes": [
                {**process("alive", "probe"), "tolerance": 0}]},
            "method": [process("act", "action")]}


def form(client, url: str, **fields):
    return client.post(url, data={**fields, "csrf_token": csrf(client)})


def browse(client, path: str):
    """A page as a browser asks for it (an experiment's address answers `chaos run` JSON)."""
    return client.get(path, headers={"Accept": "text/html"})


def text(response) -> str:
    return response.get_data(as_text=True)


def field_errors(response) -> list[str]:
    return re.findall(r'class="field-error">([^<]*)<', text(response))


@pytest.fixture
def team(app):
    """alice owns org team (a public workspace ops with an experiment, its execution and a
    run); bob is a member, mona a maintainer, eve signed in from outside."""
    alice = signed_up_client(app, "alice")
    bob, mona, eve = (signed_up_client(app, name) for name in ("bob", "mona", "eve"))
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces",
                     {"name": "ops", "visibility": "public"}).status_code == 201
    for name, role in (("bob", "member"), ("mona", "maintainer")):
        assert post_json(alice, "/api/v1/orgs/team/members",
                         {"username": name, "role": role}).status_code == 201
    experiment = create(alice, "team", "ops", runnable())
    execution = post_json(alice, f"/api/v1/experiments/{experiment['id']}/executions",
                          variant("deviated"))
    assert execution.status_code == 201, execution.get_json()
    token = make_token(alice, ["experiments:read", "executions:read", "runs:execute"])
    run = app.test_client().post(f"/api/v1/experiments/{experiment['id']}/runs", json={},
                                 headers={"Authorization": f"Bearer {token}"})
    assert run.status_code == 202, run.get_json()
    base = f"/team/ops/experiment/{experiment['id']}"
    pages = ["/team", "/team/-/members", "/team/-/settings", "/team/ops",
             "/team/ops/-/settings", base, f"{base}/execution/{execution.get_json()['id']}",
             f"{base}/run/{run.get_json()['id']}"]
    return {"alice": alice, "bob": bob, "mona": mona, "eve": eve, "pages": pages}


# The banner ------------------------------------------------------------------------------------


def test_the_banner_shows_on_every_page_of_the_org_to_its_members_alone(app, team):
    alice, bob, eve = team["alice"], team["bob"], team["eve"]
    assert BANNER not in text(browse(alice, "/team/ops"))  # nothing while it is released
    engaged = post_json(bob, SWITCH, {"engaged": True, "reason": "payments <down> in prod"})
    assert engaged.status_code == 200, engaged.get_json()

    for path in team["pages"]:
        page = browse(alice, path)
        assert page.status_code == 200, path
        html = text(page)
        assert BANNER in html, path
        assert "payments &lt;down&gt; in prod" in html  # why, escaped
        assert re.search(r'data-testid="kill-switch-who">bob<', html)  # who
        assert "<time datetime=" in html.split(BANNER)[1].split("</div>")[0]  # when
        assert "No run of this org starts until it is released." in html
    assert BANNER in text(browse(bob, "/team/ops"))

    # Outsiders of the public workspace, signed in or not, read its pages without the banner.
    for visitor in (eve, app.test_client()):
        for path in ("/team", "/team/ops", team["pages"][5]):
            page = browse(visitor, path)
            assert page.status_code == 200 and BANNER not in text(page), path
    # Pages of no org, or of another org, have none either.
    for path in ("/", "/settings/tokens", "/alice", "/alice/personal"):
        assert BANNER not in text(browse(alice, path)), path

    assert post_json(alice, SWITCH, {"engaged": False}).status_code == 200
    assert all(BANNER not in text(browse(alice, path)) for path in team["pages"])


def test_a_page_asks_for_the_kill_switch_once(app, team):
    calls = []
    learn = app.extensions[web.KILL_SWITCH_EXTENSION]
    app.extensions[web.KILL_SWITCH_EXTENSION] = lambda *a: calls.append(a) or learn(*a)
    post_json(team["bob"], SWITCH, {"engaged": True, "reason": "stop"})
    # The org page shows it twice (the banner and its form) from one call.
    page = text(browse(team["alice"], "/team"))
    assert BANNER in page and "Release the kill switch" in page
    assert [org for _, org in calls] == ["team"]


def test_a_kill_switch_that_cannot_be_learnt_breaks_no_page(app, team, caplog):
    def unreachable(claim, org):
        raise RuntimeError("dashboard is away")

    post_json(team["bob"], SWITCH, {"engaged": True, "reason": "stop"})
    app.extensions[web.KILL_SWITCH_EXTENSION] = unreachable
    with caplog.at_level(logging.WARNING, logger="chaoshub.core.web"):
        page = browse(team["alice"], "/team/ops")
    assert page.status_code == 200 and BANNER not in text(page)
    assert "could not be learnt" in caplog.text and "team" in caplog.text


# The org page's forms ----------------------------------------------------------------------------


def test_a_member_engages_the_kill_switch_from_the_org_page_and_an_owner_releases_it(team):
    alice, bob = team["alice"], team["bob"]
    page = text(browse(bob, "/team"))
    assert 'action="/team/-/kill-switch/engage"' in page and "Engage the kill switch" in page

    engaged = form(bob, "/team/-/kill-switch/engage", reason="checkout errors")
    assert engaged.status_code == 303
    assert engaged.headers["Location"] == "/team?kill_switch=engaged"
    shown = text(browse(bob, engaged.headers["Location"]))
    assert "The kill switch is engaged" in shown and BANNER in shown
    # A member may not release it: the page says so and offers no button.
    assert "Release the kill switch" not in shown
    assert "The org's owners and maintainers release it." in shown
    assert bob.get(SWITCH).get_json()["reason"] == "checkout errors"

    assert "Release the kill switch" in text(browse(alice, "/team"))
    released = form(alice, "/team/-/kill-switch/release")
    assert released.status_code == 303
    shown = text(browse(alice, released.headers["Location"]))
    assert "The kill switch is released" in shown and BANNER not in shown
    assert alice.get(SWITCH).get_json()["engaged"] is False


def test_refusals_on_the_org_page_are_clear(team):
    alice, bob, eve = team["alice"], team["bob"], team["eve"]
    unsaid = form(bob, "/team/-/kill-switch/engage", reason="   ")
    assert unsaid.status_code == 422
    assert field_errors(unsaid) == ["a reason is needed"]

    too_long = form(bob, "/team/-/kill-switch/engage", reason="x" * 501)
    assert too_long.status_code == 422 and field_errors(too_long) == ["500 characters at most"]

    assert form(bob, "/team/-/kill-switch/engage", reason="on fire").status_code == 303
    refused = form(bob, "/team/-/kill-switch/release")
    assert refused.status_code == 403
    assert "does not allow this (release kill switch)" in text(refused)
    assert bob.get(SWITCH).get_json()["engaged"] is True

    outsider = form(eve, "/team/-/kill-switch/engage", reason="mischief")
    assert outsider.status_code == 403 and "does not allow this" in text(outsider)
    assert "Engage the kill switch" not in text(browse(eve, "/team"))  # no form offered to them

    forged = alice.post("/team/-/kill-switch/release", data={})
    assert forged.status_code == 403 and "the form has expired" in text(forged)
    visitor = form(alice.application.test_client(), "/team/-/kill-switch/engage", reason="x")
    assert visitor.status_code == 401
    assert form(alice, "/nowhere/-/kill-switch/engage", reason="x").status_code == 404
    assert alice.get(SWITCH).get_json()["reason"] == "on fire"


# The workspace settings page's run policy --------------------------------------------------------


def test_a_maintainer_changes_the_run_policy_on_the_settings_page(team):
    mona = team["mona"]
    page = text(browse(mona, "/team/ops/-/settings"))
    assert 'id="run-policy"' in page
    assert re.search(r'name="provider_types" value="python" checked', page)
    assert re.search(r'name="python_modules"[^>]*></textarea>', page)  # the workers' modules

    saved = form(mona, "/team/ops/-/policy", provider_types=["process", "http"],
                 python_modules="chaosk8s\n\n  chaosaws  \r\n", process_paths="/bin/true",
                 http_hosts="staging.example.com\napi.example.com",
                 max_duration_seconds="600", max_concurrent_runs="2", dry_run_first="on",
                 allow_vault="on")
    assert saved.status_code == 303
    assert saved.headers["Location"] == "/team/ops/-/settings?saved=1#run-policy"
    assert mona.get(POLICY).get_json() == RunPolicy(
        provider_types=["process", "http"], python_modules=["chaosk8s", "chaosaws"],
        process_paths=["/bin/true"], http_hosts=["staging.example.com", "api.example.com"],
        max_duration_seconds=600, max_concurrent_runs=2, dry_run_first=True,
        allow_runtime_python=False, allow_vault=True).model_dump(mode="json")

    page = text(browse(mona, "/team/ops/-/settings?saved=1"))
    assert "Saved." in page
    assert not re.search(r'name="provider_types" value="python" checked', page)
    assert re.search(r'name="dry_run_first" checked', page)
    assert "staging.example.com\napi.example.com" in page  # one a line
    assert re.search(r'name="python_modules"[^>]*>chaosk8s\nchaosaws</textarea>', page)


def test_policy_errors_show_next_to_their_fields_and_keep_what_was_typed(team):
    alice = team["alice"]
    refused = form(alice, "/team/ops/-/policy", provider_types=["process", "shell"],
                   python_modules="chaosk8s", max_duration_seconds="an hour",
                   max_concurrent_runs="0", allow_runtime_python="on")
    assert refused.status_code == 422
    page = text(refused)
    assert "the run policy is not valid" in page
    errors = dict(re.findall(
        r'name="(\w+)"[^>]*aria-invalid="true"[^<]*(?:</textarea>)?\s*(?:<span class="muted">'
        r'[^<]*</span>\s*)?<span class="field-error">([^<]*)<', page))
    assert set(errors) == {"max_duration_seconds", "max_concurrent_runs"}
    assert "greater than or equal to 1" in errors["max_concurrent_runs"]
    assert "valid integer" in errors["max_duration_seconds"]
    assert len(field_errors(refused)) == 3  # the provider types' too
    assert 'value="an hour"' in page and re.search(r'name="allow_runtime_python" checked', page)
    assert alice.get(POLICY).get_json() == RunPolicy().model_dump(mode="json")  # unchanged


def test_runs_as_kubernetes_jobs_are_refused_beside_their_field_where_the_hub_runs_none(team):
    mona = team["mona"]
    assert re.search(r'<option value="local" selected>', text(browse(mona, "/team/ops/-/settings")))
    refused = form(mona, "/team/ops/-/policy", provider_types=["process"],
                   max_duration_seconds="60", max_concurrent_runs="1", executor="kubernetes")
    assert refused.status_code == 422
    assert re.search(r'name="executor" aria-invalid="true"', text(refused))
    assert re.search(r'<option value="kubernetes" selected>', text(refused))
    assert any("RUN_EXECUTOR=kubernetes" in message for message in field_errors(refused))
    assert mona.get(POLICY).get_json() == RunPolicy().model_dump(mode="json")


def test_what_the_policy_form_does_not_hold_keeps_its_current_value():
    current = RunPolicy(executor="kubernetes", http_hosts=["a.example.com"])
    sent = MultiDict([("provider_types", "http"), ("http_hosts", "b.example.com\n"),
                      ("max_duration_seconds", " 60 "), ("max_concurrent_runs", "2")])
    policy = policy_form.policy_from(policy_form.submitted_policy(sent, current))
    assert policy == RunPolicy(provider_types=["http"], http_hosts=["b.example.com"],
                               max_duration_seconds=60, max_concurrent_runs=2,
                               executor="kubernetes")


def test_members_may_not_change_the_policy(team):
    bob = team["bob"]
    assert browse(bob, "/team/ops/-/settings").status_code == 403
    refused = form(bob, "/team/ops/-/policy", max_concurrent_runs="9",
                   max_duration_seconds="60")
    assert refused.status_code == 403 and "does not allow this" in text(refused)
    assert form(team["eve"], "/team/ops/-/policy", max_concurrent_runs="9").status_code == 403
    assert bob.get(POLICY).get_json()["max_concurrent_runs"] == 3


def test_allowed_windows_on_the_settings_page_one_a_line_in_a_zone(team):
    mona = team["mona"]
    saved = form(mona, "/team/ops/-/policy", provider_types=["process"],
                 max_duration_seconds="600", max_concurrent_runs="2",
                 allowed_windows="mon-fri 09:00-17:00\n\nsat,sun 22:00-06:00\n",
                 windows_time_zone="Europe/Paris")
    assert saved.status_code == 303, text(saved)
    policy = mona.get(POLICY).get_json()
    assert policy["allowed_windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
        {"days": ["sat", "sun"], "start": "22:00", "end": "06:00"}]
    assert policy["windows_time_zone"] == "Europe/Paris"
    page = text(browse(mona, "/team/ops/-/settings"))
    assert re.search(r'name="allowed_windows"[^>]*>mon-fri 09:00-17:00\nsat-sun 22:00-06:00'
                     r'</textarea>', page)
    refused = form(mona, "/team/ops/-/policy", provider_types=["process"],
                   max_duration_seconds="600", max_concurrent_runs="2",
                   allowed_windows="weekdays at nine", windows_time_zone="Mars/Olympus")
    assert refused.status_code == 422
    assert re.search(r'name="allowed_windows"[^>]*aria-invalid="true"', text(refused))
    assert "weekdays at nine" in text(refused)  # what was typed stays
    assert mona.get(POLICY).get_json()["allowed_windows"] == policy["allowed_windows"]
