"""Comparing two executions of one experiment: the API, the page, and who may see what."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chaoshub.experiment import compare
from chaoshub.experiment.schemas import ActivityView, ExecutionView
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, journal, make_token, variant

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def publish(browser, experiment_id: str, body) -> str:
    response = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=body,
                            headers={"X-CSRF-Token": csrf(browser)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def slow_delete() -> dict:
    """The sample's deviated run, in which `delete-marker-file` took 0.9 s."""
    first = journal()
    first["run"][2]["duration"] = 0.9
    return first


def changed_run() -> dict:
    """A run after `slow_delete`: the steady state holds again, but `run-true` got slow,
    `read-marker-size` failed, `delete-marker-file` got faster, `recreate-marker-file` moved
    by a few milliseconds (noise), one hypothesis probe is gone and one rollback is new."""
    later = variant("passed")
    later["duration"] = 2.6
    later["run"][0]["duration"] = 2.5
    later["run"][1]["status"] = "failed"
    later["run"][2]["duration"] = 0.0001
    later["rollbacks"][0]["duration"] = 0.0067  # 2.7 ms in the sample: x2.4, +4 ms
    del later["steady_states"]["before"]["probes"][1]
    notify = json.loads(json.dumps(later["rollbacks"][0]))
    notify["activity"]["name"] = "notify-team"
    later["rollbacks"].append(notify)
    return later


def names(pairs: list[dict]) -> list[tuple[str, str]]:
    return [(p["phase"], p["name"]) for p in pairs]


def test_compare_tells_what_flipped_changed_slowed_and_went(alice):
    created = create(alice)
    before = publish(alice, created["id"], slow_delete())
    after = publish(alice, created["id"], changed_run())
    response = alice.get(f"/api/v1/experiments/{created['id']}/compare?a={before}&b={after}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["detailed"] is True and body["experiment_id"] == created["id"]
    assert (body["a"]["id"], body["a"]["outcome"], body["a"]["status"]) == \
        (before, "deviated", "completed")
    assert (body["b"]["id"], body["b"]["outcome"], body["b"]["version"]) == (after, "passed", 1)
    assert "activities" not in body["a"] and "activities" not in body["b"]
    assert body["duration_change"] == pytest.approx(2.6 - 0.011234045, abs=1e-6)

    [flipped] = body["flipped"]
    assert (flipped["phase"], flipped["name"]) == ("after", "marker-file-exists")
    assert (flipped["a"]["tolerance_met"], flipped["b"]["tolerance_met"]) == (False, True)
    [status] = body["status_changed"]
    assert (status["name"], status["a"]["status"], status["b"]["status"]) == \
        ("read-marker-size", "succeeded", "failed")
    [slower] = body["slower"]
    assert slower["name"] == "run-true"
    assert slower["duration_change"] == pytest.approx(2.5 - 0.001361)
    assert slower["duration_ratio"] == pytest.approx(2.5 / 0.001361)
    assert names(body["faster"]) == [("method", "delete-marker-file")]
    assert body["faster"][0]["duration_change"] < 0
    assert names(body["only_in_a"]) == [("before", "marker-file-test-succeeds")]
    assert body["only_in_a"][0]["b"] is None
    assert names(body["only_in_b"]) == [("rollbacks", "notify-team")]
    assert names(body["activities"]) == [
        ("before", "marker-file-exists"), ("before", "marker-file-test-succeeds"),
        ("method", "run-true"), ("method", "read-marker-size"),
        ("method", "delete-marker-file"), ("after", "marker-file-exists"),
        ("rollbacks", "recreate-marker-file"), ("rollbacks", "notify-team")]

    # The other way round, the same change reads backwards.
    back = alice.get(f"/api/v1/experiments/{created['id']}/compare?a={after}&b={before}")
    assert names(back.get_json()["faster"]) == [("method", "run-true")]
    assert names(back.get_json()["only_in_a"]) == [("rollbacks", "notify-team")]


def test_a_run_compared_with_itself_changed_nothing(alice):
    created = create(alice)
    run = publish(alice, created["id"], journal())
    body = alice.get(f"/api/v1/experiments/{created['id']}/compare?a={run}&b={run}").get_json()
    assert body["duration_change"] == 0 and len(body["activities"]) == 7
    for key in ("flipped", "status_changed", "slower", "faster", "only_in_a", "only_in_b"):
        assert body[key] == [], key


def test_both_executions_must_be_known_runs_of_the_experiment(alice):
    first, second = create(alice), create(alice)
    mine = publish(alice, first["id"], journal())
    theirs = publish(alice, second["id"], journal())
    url = f"/api/v1/experiments/{first['id']}/compare"
    for a, b in ((mine, theirs), (theirs, mine), (mine, "no-such-execution"),
                 ("no-such-execution", mine)):
        response = alice.get(f"{url}?a={a}&b={b}")
        assert response.status_code == 404, (a, b)
        assert response.get_json()["error"] == "not_found"
    assert alice.get(f"/api/v1/experiments/no-such-experiment/compare?a={mine}&b={mine}"
                     ).status_code == 404


def test_both_parameters_are_required(alice):
    created = create(alice)
    run = publish(alice, created["id"], journal())
    url = f"/api/v1/experiments/{created['id']}/compare"
    for query in ("", f"?a={run}", f"?b={run}", f"?a=&b={run}"):
        response = alice.get(url + query)
        assert response.status_code == 400, query
        assert response.get_json()["error"] == "bad_request"


def test_comparing_needs_the_executions_read_scope(app, alice):
    created = create(alice)
    run = publish(alice, created["id"], journal())
    url = f"/api/v1/experiments/{created['id']}/compare?a={run}&b={run}"
    reader = make_token(alice, ["executions:read"])
    other = make_token(alice, ["experiments:read"])
    client = app.test_client()
    assert client.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 403


def test_outsiders_of_a_private_workspace_learn_nothing(app, alice):
    created = create(alice)
    before = publish(alice, created["id"], journal())
    after = publish(alice, created["id"], changed_run())
    url = f"/api/v1/experiments/{created['id']}/compare?a={before}&b={after}"
    bob = signed_up_client(app, "bob")
    for outsider in (bob, app.test_client()):
        response = outsider.get(url)
        assert response.status_code == 404
        assert response.get_json()["message"] == "no such experiment"


def test_outsiders_who_may_see_status_get_no_activity_detail(app, alice):
    created = create(alice, workspace="Public")
    before = publish(alice, created["id"], journal())
    after = publish(alice, created["id"], changed_run())
    url = f"/api/v1/experiments/{created['id']}/compare?a={before}&b={after}"
    bob = signed_up_client(app, "bob")
    # Public shows outsiders no runs by default: as if there were none.
    assert bob.get(url).status_code == 404
    alice.patch("/api/v1/orgs/alice/workspaces/Public", json={"outsider_executions": "status"},
                headers={"X-CSRF-Token": csrf(alice)})
    for outsider in (bob, app.test_client()):
        response = outsider.get(url)
        assert response.status_code == 200
        body = response.get_json()
        assert body["detailed"] is False
        assert (body["a"]["outcome"], body["b"]["outcome"]) == ("deviated", "passed")
        assert body["a"]["detailed"] is False and body["b"]["node"] == ""
        assert body["duration_change"] == pytest.approx(2.6 - 0.011234045, abs=1e-6)
        for key in ("activities", "flipped", "status_changed", "slower", "faster",
                    "only_in_a", "only_in_b"):
            assert body[key] == [], key
        assert "marker" not in json.dumps(body) and "alice" not in json.dumps(body)
    # Members still see it all.
    assert alice.get(url).get_json()["detailed"] is True


def test_repeated_activities_pair_by_order():
    def run(*steps):
        return [ActivityView(phase=phase, name=name, type="action", status="succeeded",
                             duration=duration) for phase, name, duration in steps]

    a = run(("method", "restart", 1.0), ("method", "wait", 5.0), ("method", "restart", 1.0))
    b = run(("method", "wait", 5.0), ("method", "restart", 1.0), ("method", "restart", 3.0),
            ("method", "restart", 1.0), ("rollbacks", "undo", 0.5))
    pairs = compare.pair_activities(a, b)
    assert [(p.name, p.occurrence, p.a is not None, p.b is not None) for p in pairs] == [
        ("wait", 1, True, True), ("restart", 1, True, True), ("restart", 2, True, True),
        ("restart", 3, False, True), ("undo", 1, False, True)]
    assert pairs[2].duration_change == pytest.approx(2.0)
    assert pairs[2].duration_ratio == pytest.approx(3.0)

    def execution(activities):
        return ExecutionView(
            id="x", experiment_id="e", workspace_id="w", version=1, status="completed",
            deviated=False, outcome="passed", started_at=None, ended_at=None, duration=None,
            node="", published_by="", published_by_name="", content_hash="h",
            created_at=datetime.now(UTC), activities=activities)

    compared = compare.compare(execution(a), execution(b))
    assert [(p.name, p.occurrence) for p in compared.slower] == [("restart", 2)]
    assert compared.duration_change is None
    # Timing noise is no slowdown: a millisecond more of a long activity, a microsecond more.
    noisy = compare.compare(execution(run(("method", "a", 10.0), ("method", "b", 0.0001))),
                            execution(run(("method", "a", 10.5), ("method", "b", 0.0005))))
    assert noisy.slower == [] and noisy.faster == []


def timed_pair(before: float, after: float):
    """One method action that took `before` seconds in run A and `after` in run B."""
    [pair] = compare.pair_activities(
        [ActivityView(phase="method", name="x", type="action", status="succeeded",
                      duration=before)],
        [ActivityView(phase="method", name="x", type="action", status="succeeded",
                      duration=after)])
    return pair


@pytest.mark.parametrize(("before", "after"), [
    (0.0022, 0.0067),  # three times as long, 4.5 ms more: process start-up jitter
    (0.05, 0.14),      # almost three times as long, but under 100 ms more
    (10.0, 11.5),      # 1.5 s more, but 15% of a long wait
    (30.0, 29.0),      # a second faster out of thirty
    (0.0, 0.09),
])
def test_timing_noise_is_neither_slower_nor_faster(before, after):
    assert not compare.is_notable(timed_pair(before, after))


@pytest.mark.parametrize(("before", "after"), [
    (0.0014, 2.5),  # a real slowdown
    (1.0, 1.25),    # a quarter longer, 250 ms more
    (10.0, 13.0),
    (2.0, 0.5),     # a real speed-up
    (0.0, 0.1),
])
def test_a_real_change_of_duration_is_notable(before, after):
    assert compare.is_notable(timed_pair(before, after))


def test_unknown_durations_are_not_compared():
    pair = timed_pair(1.0, 5.0)
    for a, b in ((None, 5.0), (1.0, None)):
        unknown = pair.model_copy(update={
            "a": pair.a.model_copy(update={"duration": a}),
            "b": pair.b.model_copy(update={"duration": b}),
            "duration_change": compare.change(a, b)})
        assert not compare.is_notable(unknown)


# The pages -------------------------------------------------------------------------------


def test_the_compare_page_reads_the_changes(alice):
    created = create(alice)
    before = publish(alice, created["id"], journal())
    after = publish(alice, created["id"], changed_run())
    base = f"/alice/Personal/experiment/{created['id']}"
    response = alice.get(f"{base}/compare?a={before}&b={after}", headers=BROWSER)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for text in ("Compare runs of", "Steady-state probes that flipped", "tolerance not met",
                 "read-marker-size", "+2.50 s", "notify-team", "marker-file-test-succeeds",
                 f"{base}/execution/{before}", f"{base}/compare?a={after}&amp;b={before}"):
        assert text in html, text
    assert alice.get(f"{base}/compare?a={before}", headers=BROWSER).status_code == 400
    assert alice.get(f"/alice/Public/experiment/{created['id']}/compare?a={before}&b={after}",
                     headers=BROWSER).status_code == 404


def test_the_execution_page_charts_the_runs_and_links_the_previous_one(alice):
    created = create(alice)
    first = publish(alice, created["id"], journal())  # started 08:57
    second = publish(alice, created["id"], variant("passed"))  # 09:01
    third = publish(alice, created["id"], variant("probe-error"))  # 09:03
    base = f"/alice/Personal/experiment/{created['id']}"
    html = alice.get(f"{base}/execution/{second}", headers=BROWSER).get_data(as_text=True)
    assert html.count('data-testid="chart-mark"') == 3
    assert html.index('data-outcome="deviated"') < html.index('data-outcome="passed"') < \
        html.index('data-outcome="probe-error"')
    assert 'role="img"' in html and "Outcomes and durations of the last 3 runs" in html
    assert "mark passed current" in html
    assert f"{base}/compare?a={first}&amp;b={second}" in html
    oldest = alice.get(f"{base}/execution/{first}", headers=BROWSER).get_data(as_text=True)
    assert 'data-testid="compare-previous"' not in oldest
    page = alice.get(base, headers=BROWSER).get_data(as_text=True)
    assert page.count('data-testid="chart-mark"') == 3
    assert f'name="b" value="{third}" aria-label' in page
