"""Run tokens: the API token auth makes for one run on the hub (its Kubernetes Job reports with
it): reporting scopes only, kept to the run's workspace, expiring with the run, in no listing,
stored as a hash, revoked when the run ends, for the experiment service alone."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from chaoshub.auth import service as auth
from chaoshub.auth.models import ApiToken
from chaoshub.core import claims
from chaoshub.core.db import transaction
from chaoshub.core.errors import Unauthorized, ValidationFailed
from chaoshub.core.models import utcnow
from tests.conftest import csrf, signed_up_client

RUN_ID = "7d3c2a9e-0000-4000-8000-000000000001"


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def _ids(alice) -> tuple[str, str]:
    me = alice.get("/api/v1/me").get_json()
    workspace = alice.get("/api/v1/orgs/alice/workspaces/Personal").get_json()
    return me["id"], workspace["id"]


def _mint(app, alice, seconds: int = 600) -> str:
    account, workspace = _ids(alice)
    with app.app_context():
        return auth.mint_run_token(account, RUN_ID, workspace, seconds)


def test_a_run_token_reports_runs_in_its_workspace_only(app, alice, caplog):
    account, workspace = _ids(alice)
    with caplog.at_level(logging.DEBUG):
        secret = _mint(app, alice, 600)
        with app.app_context():
            user = claims.verify(auth.resolve_credentials(bearer_token=secret))
    assert (user.sub, user.workspace, user.run) == (account, workspace, RUN_ID)
    assert set(user.scopes) == {"executions:read", "executions:write"}
    assert not user.allows("runs:execute") and not user.allows("experiments:write")
    assert secret not in caplog.text
    with app.app_context(), transaction("auth") as session:
        row = session.scalar(select(ApiToken).where(ApiToken.run_id == RUN_ID))
        assert (row.purpose, row.workspace_id) == ("run", workspace)
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in " ".join(str(v) for v in vars(row).values())
        lifetime = row.expires_at - row.created_at
    assert abs(lifetime - timedelta(seconds=600)) < timedelta(seconds=5)
    # A real API token: the API takes it, within its scopes.
    bearer = {"Authorization": f"Bearer {secret}"}
    assert alice.get("/api/v1/me", headers=bearer).status_code == 200
    made = alice.post("/api/v1/orgs/alice/workspaces/Personal/experiments", headers=bearer,
                      json={"title": "t", "method": []})
    assert made.status_code == 403


def test_a_run_token_is_in_no_listing_and_cannot_be_revoked_as_a_token(app, alice):
    _mint(app, alice)
    assert alice.get("/api/v1/tokens").get_json()["tokens"] == []
    with app.app_context(), transaction("auth") as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.run_id == RUN_ID))
    gone = alice.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": csrf(alice)})
    assert gone.status_code == 404
    page = alice.get("/settings/tokens")
    assert page.status_code == 200 and RUN_ID not in page.get_data(as_text=True)


def test_a_run_token_is_refused_once_revoked_or_expired(app, alice):
    secret = _mint(app, alice)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert alice.get("/api/v1/me", headers=bearer).status_code == 200
    with app.app_context():
        assert auth.revoke_run_token(RUN_ID) == 1
        assert auth.revoke_run_token(RUN_ID) == 0  # once
        with pytest.raises(Unauthorized):
            auth.resolve_credentials(bearer_token=secret)
    assert alice.get("/api/v1/me", headers=bearer).status_code == 401
    later = _mint(app, alice)
    with app.app_context(), transaction("auth") as session:
        session.execute(update(ApiToken).where(ApiToken.revoked_at.is_(None), ApiToken.run_id
                                               == RUN_ID).values(expires_at=utcnow()))
    assert alice.get("/api/v1/me", headers={"Authorization": f"Bearer {later}"}
                     ).status_code == 401


def test_a_run_token_lives_a_bounded_time_and_only_experiment_may_ask_for_one(app, alice):
    account, workspace = _ids(alice)
    with app.app_context():
        for seconds in (0, -5, auth.RUN_TOKEN_MAX_SECONDS + 1, "60"):
            with pytest.raises(ValidationFailed):
                auth.mint_run_token(account, RUN_ID, workspace, seconds)
        with pytest.raises(ValidationFailed):
            auth.mint_run_token(account, RUN_ID, "", 60)
    for name in ("mint_run_token", "revoke_run_token"):
        assert auth.interface.functions[name].callers == {"experiment"}
