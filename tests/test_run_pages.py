"""The run page without a browser's script, and the forms that start and abort runs."""

from __future__ import annotations

import pytest

from chaoshub.experiment import hub_runs, runs
from tests import run_data
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, make_token
from tests.test_runs_api import FULL, bearer, lifecycle, open_run, send


def runnable(title: str = "Run me from the page") -> dict:
    return run_data.runnable(title)


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def saved(alice):
    return create(alice, document=runnable())


def page_of(saved: dict, run_id: str) -> str:
    return f"/alice/Personal/experiment/{saved['id']}/run/{run_id}"


def test_the_run_button_starts_a_run_and_shows_its_page(app, alice, saved):
    experiment_page = alice.get(f"/alice/Personal/experiment/{saved['id']}",
                                headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'data-testid="run-button"' in experiment_page
    assert f'action="/alice/Personal/experiment/{saved["id"]}/runs"' in experiment_page

    started = alice.post(f"/alice/Personal/experiment/{saved['id']}/runs",
                         data={"csrf_token": csrf(alice), "rollback_strategy": "never"})
    assert started.status_code == 303
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    assert started.headers["Location"] == page_of(saved, run_id)
    with app.app_context():
        row = runs.load_run(run_id)
    assert (row.status, row.origin, row.version) == ("queued", "hub", 1)
    assert row.options["rollback_strategy"] == "never"

    html = alice.get(page_of(saved, run_id)).get_data(as_text=True)
    assert 'data-testid="run-status" id="run-status">Queued<' in html
    assert "on the hub" in html and ">v1<" in html and ">alice<" in html
    assert 'data-testid="abort"' in html and "Abort without rollbacks" in html
    assert f'href="{page_of(saved, run_id)}">refresh</a>' in html
    assert f'data-events-url="/api/v1/runs/{run_id}/events"' in html
    assert "run.js" in html

    # The experiment and workspace pages show it in progress, before any journal.
    experiment_page = alice.get(f"/alice/Personal/experiment/{saved['id']}",
                                headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'data-testid="recent-run" data-status="queued"' in experiment_page
    assert "No runs yet." not in experiment_page
    workspace_page = alice.get("/alice/Personal").get_data(as_text=True)
    assert 'data-testid="run-in-progress"' in workspace_page
    assert f'href="/alice/Personal/experiment/{saved["id"]}/run/{run_id}"' in workspace_page


def test_the_run_forms_refuse_bad_options_and_missing_csrf(app, alice, saved):
    base = f"/alice/Personal/experiment/{saved['id']}"
    assert alice.post(f"{base}/runs", data={}).status_code == 403  # no CSRF token
    bad = alice.post(f"{base}/runs", data={"csrf_token": csrf(alice), "dry": "everything"},
                     headers={"Accept": "text/html"})
    assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
    with app.app_context():
        assert hub_runs.queued_ids() == []
    gone = alice.post(f"/alice/Personal/experiment/{saved['id']}x/runs",
                      data={"csrf_token": csrf(alice)})
    assert gone.status_code == 404


def test_the_abort_buttons_stop_the_run(app, alice, saved):
    base = f"/alice/Personal/experiment/{saved['id']}"
    run_id = alice.post(f"{base}/runs", data={"csrf_token": csrf(alice)}
                        ).headers["Location"].rsplit("/", 1)[1]
    aborted = alice.post(f"{base}/run/{run_id}/abort",
                         data={"csrf_token": csrf(alice), "rollbacks": "no"})
    assert aborted.status_code == 303 and aborted.headers["Location"] == page_of(saved, run_id)
    with app.app_context():
        row = runs.load_run(run_id)
    assert (row.status, row.desired) == ("aborted", "abort-now")
    html = alice.get(page_of(saved, run_id)).get_data(as_text=True)
    assert ">Aborted<" in html and row.reason and row.reason in html
    assert 'data-testid="abort"' not in html and 'data-active="no"' in html
    # Again, once it ended: the page says how it ended.
    again = alice.post(f"{base}/run/{run_id}/abort", data={"csrf_token": csrf(alice)})
    assert again.status_code == 303
    assert alice.post(f"{base}/run/{run_id}/abort", data={
        "csrf_token": csrf(alice), "rollbacks": "maybe"}).status_code == 400


def test_the_run_page_shows_the_events_so_far_without_a_script(app, alice):
    token = make_token(alice, FULL)
    opened = open_run(app, token).get_json()
    send(app, token, opened["id"], lifecycle()[:8])
    html = alice.get(f"/alice/Personal/experiment/{opened['experiment_id']}/run/"
                     f"{opened['id']}").get_data(as_text=True)
    assert "from a Chaos Toolkit client" in html and ">Running<" in html
    assert 'data-testid="phase-before"' in html and 'data-testid="phase-method"' in html
    assert 'data-testid="phase-after"' in html and 'data-testid="phase-rollbacks"' not in html
    assert 'data-name="marker-file-exists"' in html and "succeeded" in html
    assert "1.0 ms" in html  # its duration
    assert 'data-testid="steady-verdict">met<' in html  # before the method
    assert 'data-testid="steady-verdict">checking…<' in html  # after: not yet known
    assert 'data-last-seq="8"' in html


def test_who_may_not_run_sees_no_buttons_and_may_not_press_them(app, alice, saved):
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces",
                     {"name": "ops", "visibility": "private"}).status_code == 201
    made = create(alice, "team", "ops", document=runnable("Team run"))
    bob = signed_up_client(app, "bob")
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "viewer"}).status_code == 201
    base = f"/team/ops/experiment/{made['id']}"
    run_id = alice.post(f"{base}/runs", data={"csrf_token": csrf(alice)}
                        ).headers["Location"].rsplit("/", 1)[1]

    page = bob.get(base, headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'data-testid="run-button"' not in page
    assert bob.post(f"{base}/runs", data={"csrf_token": csrf(bob)}).status_code == 403
    run_page = bob.get(f"{base}/run/{run_id}").get_data(as_text=True)
    assert ">Queued<" in run_page and 'data-testid="abort"' not in run_page
    assert bob.post(f"{base}/run/{run_id}/abort",
                    data={"csrf_token": csrf(bob)}).status_code == 403
    # A run is shown under its own experiment only.
    assert alice.get(f"/alice/Personal/experiment/{saved['id']}/run/{run_id}").status_code == 404
    # Someone with no role there finds nothing.
    carol = signed_up_client(app, "carol")
    assert carol.get(f"{base}/run/{run_id}").status_code == 404
    assert app.test_client().get(f"/api/v1/runs/{run_id}/events",
                                 headers=bearer(make_token(bob, FULL))).status_code == 200


def test_the_run_page_names_the_extensions_of_the_worker_that_runs_it(app, alice, saved,
                                                                      tmp_path, monkeypatch):
    from chaoshub.experiment import workers
    from tests.test_workers_registry import fake_extension

    fake_extension(tmp_path, "chaostoolkit-fake", "1.2.3", "chaosfake")
    monkeypatch.syspath_prepend(str(tmp_path))
    started = alice.post(f"/alice/Personal/experiment/{saved['id']}/runs",
                         data={"csrf_token": csrf(alice)})
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        workers.announce("host-b:7")
        assert hub_runs.claim(run_id, "host-b:7") is not None
    html = alice.get(page_of(saved, run_id)).get_data(as_text=True)
    assert 'data-testid="fact-extensions">chaostoolkit-fake 1.2.3<' in html


def test_the_run_button_offers_the_workspaces_environments(app, alice, saved):
    created = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/environments", {
        "name": "staging", "configuration": {"target": {"value": "staging.example"}}})
    assert created.status_code == 201, created.get_json()
    page = alice.get(f"/alice/Personal/experiment/{saved['id']}",
                     headers={"Accept": "text/html"}).get_data(as_text=True)
    assert '<option value="staging">staging</option>' in page
    started = alice.post(f"/alice/Personal/experiment/{saved['id']}/runs",
                         data={"csrf_token": csrf(alice), "environment": "staging"})
    assert started.status_code == 303
    with app.app_context():
        row = runs.load_run(started.headers["Location"].rsplit("/", 1)[1])
    assert row.options["environment"] == "staging"
