"""Activity feeds: what is recorded, who sees which entry, and paging by cursor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chaoshub.auth import service as auth
from chaoshub.core import claims
from chaoshub.core.errors import BadRequest, NotFound
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import service as experiment
from tests import experiment_data
from tests.conftest import PASSWORD, post_json, signed_up_client
from tests.test_invitations import claim_for


@pytest.fixture
def hub(app):
    with app.app_context():
        yield claim_for


def kinds(page) -> list[str]:
    return [entry.kind for entry in page.entries]


def entry(claim: str, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
          scope: str | None = None, **more) -> dashboard.NewActivity:
    """A feed entry by the claim's user, as another service's outbox hands it over."""
    return dashboard.NewActivity(
        id=str(uuid.uuid4()), org_id=org_id, workspace_id=workspace_id,
        actor_id=claims.verify(claim).sub, kind=kind, summary=summary, scope=scope,
        created_at=datetime.now(UTC), **more)


def record(*args, **kwargs) -> int:
    """Ask dashboard for one entry (see `entry`), as experiment does; how many it added."""
    return dashboard.record_activities([entry(*args, **kwargs)])


def test_feeds_show_each_reader_only_what_they_may_see(hub):
    olga, mary, otto = hub("olga"), hub("mary"), hub("otto")
    visitor = auth.resolve_credentials()
    org = dashboard.create_org(olga, "team")
    secret = dashboard.create_workspace(olga, "team", "secret", "private")
    dashboard.create_workspace(olga, "team", "inside", "internal")
    dashboard.create_workspace(olga, "team", "open", "public")
    dashboard.add_member(olga, "team", "mary", "member")
    record(mary, org.id, "experiment.created", "mary added an experiment", secret.id)

    everything = ["experiment.created", "member.joined", "workspace.created",
                  "workspace.created", "workspace.created", "org.created"]
    assert kinds(dashboard.org_activity(olga, "team")) == everything
    assert kinds(dashboard.activity_feed(mary)) == everything
    outsider = dashboard.org_activity(otto, "team")
    assert [e.workspace_name for e in outsider.entries] == ["open", "inside"]
    assert [e.workspace_name for e in dashboard.org_activity(visitor, "team").entries] == [
        "open"]
    assert dashboard.activity_feed(otto).entries == []
    with pytest.raises(NotFound):
        dashboard.workspace_activity(otto, "team", "secret")
    assert kinds(dashboard.workspace_activity(mary, "team", "secret")) == [
        "experiment.created", "workspace.created"]

    # A workspace made private later takes its history out of outsiders' sight.
    dashboard.update_workspace(olga, "team", "open", visibility="private")
    assert [e.workspace_name for e in dashboard.org_activity(otto, "team").entries] == [
        "inside"]
    with pytest.raises(NotFound):  # nothing of the org is open to visitors any more
        dashboard.org_activity(visitor, "team")

    # Leaving an org leaves its feed, one's own entries included: they stay only where open.
    dashboard.remove_member(mary, "team", "mary")
    assert kinds(dashboard.activity_feed(mary)) == []
    assert dashboard.org_activity(olga, "team").entries[0].summary == "mary left team"


def test_other_services_record_only_valid_entries_each_in_its_org(hub, caplog):
    olga = hub("olga")
    org = dashboard.create_org(olga, "team")
    other = dashboard.create_org(olga, "other")
    ws = dashboard.create_workspace(olga, "other", "prod")
    refused = [
        entry(olga, org.id, "run.finished", "a run finished", ws.id),  # another org's workspace
        entry(olga, str(uuid.uuid4()), "run.finished", "no such org"),
        entry(olga, org.id, "run.finished", "no workspace", None, "readers"),
        entry(olga, org.id, "run.finished", "", ws.id),
        entry(olga, org.id, "run.finished", "no such scope", None, "everyone"),
        # Another service audits only its own kinds of event, never one of dashboard's.
        entry(olga, other.id, "member.removed", "olga removed mary", ws.id,
              audited={"member": "mary"}),
    ]
    kept = entry(olga, other.id, "run.finished", "run 7 succeeded", ws.id)
    # The entries that cannot go in are logged and left out; they hold back no other.
    assert dashboard.record_activities([*refused[:3], kept, *refused[3:]]) == 1
    assert kinds(dashboard.workspace_activity(olga, "other", "prod")) == [
        "run.finished", "workspace.created"]
    assert dashboard.workspace_activity(olga, "other", "prod").entries[0].summary == (
        "run 7 succeeded")
    assert kinds(dashboard.org_activity(olga, "team")) == ["org.created"]
    assert [e.event for e in dashboard.audit_log(olga, "other")] == [
        "org.created", "workspace.created"]
    assert sum("not recorded" in r.getMessage() for r in caplog.records) == len(refused)


def test_an_entry_delivered_again_is_added_once_with_its_audit_entry(hub):
    olga = hub("olga")
    dashboard.create_org(olga, "team")
    ws = dashboard.create_workspace(olga, "team", "prod")
    batch = [entry(olga, ws.org_id, "run.started", f"olga started run {n}", ws.id,
                   "executions", audited={"run_id": f"r{n}"}) for n in range(3)]
    assert dashboard.record_activities(batch) == 3
    # The delete of the delivered batch was lost: the same batch, and one more, come again.
    again = entry(olga, ws.org_id, "run.started", "olga started run 3", ws.id, "executions",
                  audited={"run_id": "r3"})
    assert dashboard.record_activities([*batch, again]) == 1
    assert dashboard.record_activities(batch) == 0
    assert kinds(dashboard.workspace_activity(olga, "team", "prod")).count("run.started") == 4
    runs = [e.details for e in dashboard.audit_log(olga, "team", "run.")]
    assert runs == [{"run_id": f"r{n}"} for n in range(4)]
    assert dashboard.verify_audit_chains() == []


def test_paging_by_cursor_walks_every_entry_once(hub):
    olga = hub("olga")
    org = dashboard.create_org(olga, "team")
    for n in range(7):
        record(olga, org.id, "note", f"note {n}")
    seen, cursor = [], None
    while True:
        page = dashboard.org_activity(olga, "team", cursor, 3)
        seen += [e.summary for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"note {n}" for n in reversed(range(7))] + ["olga created the org team"]
    with pytest.raises(BadRequest):
        dashboard.org_activity(olga, "team", "not-a-cursor")


def test_the_api_and_pages(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "prod", "visibility": "public"})
    first = olga.get("/api/v1/activity?limit=1").json
    assert [e["kind"] for e in first["entries"]] == ["workspace.created"]
    rest = olga.get(f"/api/v1/activity?limit=5&cursor={first['next_cursor']}").json
    assert [e["kind"] for e in rest["entries"]] == ["org.created"] and rest["next_cursor"] is None
    assert olga.get("/api/v1/activity?cursor=zzz").status_code == 400

    visitor = app.test_client()
    assert [e["kind"] for e in visitor.get("/api/v1/orgs/team/activity").json["entries"]] == [
        "workspace.created"]
    assert visitor.get("/api/v1/orgs/team/workspaces/prod/activity").status_code == 200
    assert visitor.get("/api/v1/activity").status_code == 401
    for path in ("/", "/team", "/team/prod"):
        page = olga.get(path).text
        assert '<a class="feed-actor" data-testid="activity-actor" href="/olga">olga</a>' in page
        assert '<a data-testid="activity-link" href="/team/prod">created the workspace prod' in page


def test_feed_cursors_serve_their_own_feed_and_the_page_size_rule(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    for name in ("prod", "test", "dev"):
        post_json(olga, "/api/v1/orgs/team/workspaces", {"name": name})
    seen, cursor = [], None
    while True:
        page = olga.get("/api/v1/orgs/team/activity?limit=2"
                        + (f"&cursor={cursor}" if cursor else "")).json
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    whole = [e["id"] for e in olga.get("/api/v1/orgs/team/activity?limit=100").json["entries"]]
    assert len(seen) == 4 and seen == whole
    first = olga.get("/api/v1/orgs/team/activity?limit=1").json["next_cursor"]
    assert olga.get(f"/api/v1/activity?cursor={first}").status_code == 400
    post_json(olga, "/api/v1/orgs", {"name": "other"})
    assert olga.get(f"/api/v1/orgs/other/activity?cursor={first}").status_code == 400
    assert olga.get("/api/v1/activity?limit=101").status_code == 400


def by_kind(page) -> dict[str, object]:
    return {entry.kind: entry for entry in page.entries}


def test_entries_link_to_what_they_are_about_and_name_people_by_username(hub):
    # Olga's entries from the experiment service are written with her display name, the
    # dashboard's with her username: the feed names her one way, by username.
    auth.create_local_account("olga", PASSWORD, "Olga Smith")
    olga, mary = hub("olga"), hub("mary")
    visitor = auth.resolve_credentials()
    dashboard.create_org(olga, "team")
    dashboard.create_workspace(olga, "team", "open", "public", "status")
    dashboard.add_member(olga, "team", "mary", "member")
    made = experiment.create_experiment(olga, "team", "open", experiment_data.experiment())
    ran = experiment.publish_execution(olga, made.id, experiment_data.journal()).execution

    seen = by_kind(dashboard.org_activity(mary, "team"))
    created = seen["experiment.created"]
    assert created.summary.startswith("Olga Smith created")
    assert (created.actor, created.actor_url) == ("olga", "/olga")
    assert created.action == f"created the experiment {made.title}"
    assert created.url == f"/team/open/experiment/{made.id}"
    published = seen["execution.published"]
    assert published.url == f"/team/open/experiment/{made.id}/execution/{ran.id}"
    assert published.actor == "olga" and published.action.startswith("published a run of")
    assert seen["member.joined"].url == "/mary"  # the member, not who added them
    assert seen["member.joined"].action == "added mary as member"
    assert seen["workspace.created"].url == "/team/open"
    assert seen["org.created"].url == "/team"

    # Visitors follow no link to people; the run they see the status of, without its actor.
    outside = by_kind(dashboard.org_activity(visitor, "team"))
    assert "member.joined" not in outside
    assert all(entry.actor_url is None for entry in outside.values())
    status = outside["execution.published"]
    assert (status.actor, status.action) == ("someone", "")
    assert status.url == published.url
    assert outside["experiment.created"].url == created.url


def test_a_subject_must_name_what_it_is_about(hub):
    olga = hub("olga")
    org = dashboard.create_org(olga, "team")
    ws = dashboard.create_workspace(olga, "team", "prod")
    for bad in ("experiment", "experiment:", "execution:only-one", "planet:x", "x" * 200):
        assert record(olga, org.id, "note", "a note", ws.id, subject=bad) == 0
    # An experiment lives in a workspace.
    assert record(olga, org.id, "note", "a note", subject="experiment:e1") == 0
    assert record(olga, org.id, "note", "olga ran e1", ws.id, subject="run:e1:r1") == 1
    assert dashboard.workspace_activity(olga, "team", "prod").entries[0].url == (
        "/team/prod/experiment/e1/run/r1")
