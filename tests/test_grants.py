"""A grant per request: dashboard says once what the caller may do in a workspace, and the
experiment service decides from that grant (issue 18, item 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from chaoshub.auth import service as auth
from chaoshub.core import request_memo
from chaoshub.core.errors import Forbidden, NotFound
from chaoshub.dashboard import service as dashboard
from tests.test_invitations import claim_for

BENCH = Path(__file__).resolve().parents[1] / "bench" / "service_calls.py"


def _bench():
    spec = importlib.util.spec_from_file_location("service_calls", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_busiest_requests_ask_dashboard_once_and_verify_the_claim_once(app):
    measured = _bench().measure(app)
    assert set(measured) == {"experiment page", "execution page", "read as chaos run does",
                             "publish a journal"}
    for name, counts in measured.items():
        # Publishing also files the run in the org's feed: a write of dashboard's, after the
        # grant that allowed it.
        assert counts["dashboard"] <= (2 if name == "publish a journal" else 1), (name, counts)
        assert counts["claim verifications"] <= 1, (name, counts)


@pytest.fixture
def team(app):
    """Olga's org `team` with a private workspace `lab` and a public one `open` that shows
    outsiders the status of its runs; vic is a viewer of the org."""
    with app.app_context():
        olga = claim_for("olga")
        claim_for("vic")
        dashboard.create_org(olga, "team")
        dashboard.create_workspace(olga, "team", "lab", "private")
        dashboard.create_workspace(olga, "team", "open", "public")
        dashboard.update_workspace(olga, "team", "open", outsider_executions="status")
        dashboard.add_member(olga, "team", "vic", "viewer")
        yield olga


def test_a_grant_says_what_the_role_allows_and_what_is_seen_of_runs(team):
    owner = dashboard.grant(team, "team", "lab")
    assert owner.allows("write") and owner.allows("run") and owner.executions == "full"
    assert "team/open" in {f"{ws.org_name}/{ws.name}" for ws in owner.move_to}
    assert dashboard.grant(team, workspace_id=owner.id) == owner

    vic = claim_for("vic")
    viewer = dashboard.grant(vic, "team", "lab")
    assert viewer.allows("read") and not viewer.allows("write")
    assert (viewer.executions, viewer.move_to) == ("full", [])

    otto = claim_for("otto")
    with pytest.raises(NotFound):
        dashboard.grant(otto, "team", "lab")
    outsider = dashboard.grant(otto, "team", "open")
    assert (outsider.allowed, outsider.executions) == (["read"], "status")


def test_a_grant_keeps_a_token_to_its_scopes_workspace(team):
    lab = dashboard.grant(team, "team", "lab")
    token = auth.resolve_credentials(bearer_token=auth.create_token(
        team, "ci", ["full"], workspace_id=lab.id, workspace_label="team/lab").secret)
    # A page's form needs a session: a token is offered nowhere to move experiments to.
    assert dashboard.grant(token, "team", "lab").move_to == []
    with pytest.raises(Forbidden, match="restricted"):
        dashboard.grant(token, "team", "open")


def test_what_a_request_worked_out_is_kept_for_that_request_alone(app):
    worked = []

    def work():
        worked.append(1)
        return len(worked)

    with app.app_context():
        assert (request_memo.remember(("k",), work), request_memo.remember(("k",), work)) == (1, 2)
    with app.test_request_context():
        assert (request_memo.remember(("k",), work), request_memo.remember(("k",), work)) == (3, 3)
    with app.test_request_context():
        assert request_memo.remember(("k",), work) == 4
