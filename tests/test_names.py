"""One namespace for usernames and org names (/{name}), kept by auth and reserved by dashboard."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chaoshub.auth import service as auth
from chaoshub.auth.models import Name
from chaoshub.auth.schemas import ProviderProfile
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, ValidationFailed
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.models import Org, OrgFormerName
from tests.conftest import PASSWORD, sign_up
from tests.test_orgs import Accounts

TAKEN = [{"pointer": "/username", "message": "this username is taken"}]


@pytest.fixture
def hub(app):
    with app.app_context():
        yield Accounts()


def names() -> dict[str, tuple[str, str]]:
    with transaction("auth") as session:
        return {n.name_key: (n.kind, n.owner_id) for n in session.scalars(select(Name))}


def test_a_name_an_org_holds_now_or_held_before_is_refused_at_sign_up(hub):
    alice = hub.claim("alice")
    org = dashboard.create_org(alice, "Acme")
    dashboard.update_org(alice, "acme", name="acme-labs")
    assert names()["acme"] == names()["acme-labs"] == ("org", org.id)
    for name in ("ACME", "acme-labs"):
        with pytest.raises(ValidationFailed) as refused:
            auth.create_local_account(name, PASSWORD)
        assert refused.value.details == TAKEN

    # Deleting the org frees its names, as it did before auth kept them.
    dashboard.delete_org(alice, "acme-labs")
    assert "acme" not in names() and "acme-labs" not in names()
    assert auth.create_local_account("acme", PASSWORD).username == "acme"
    assert names()["acme"][0] == "account"


def test_the_sign_up_form_says_the_name_is_taken(app, client, hub):
    dashboard.create_org(hub.claim("alice"), "acme")
    response = sign_up(client, "Acme")
    assert response.status_code == 422 and b"this username is taken" in response.data


def test_an_org_cannot_take_a_username_or_a_reserved_name(hub):
    alice = hub.claim("alice")
    auth.create_local_account("bob", PASSWORD)
    with pytest.raises(Conflict):
        dashboard.create_org(alice, "BOB")
    with pytest.raises(ValidationFailed):
        auth.create_local_account("admin", PASSWORD)
    org = dashboard.create_org(alice, "team")
    with pytest.raises(Conflict):
        dashboard.update_org(alice, "team", name="bob")
    # Renaming back to a former name is the org's own business.
    dashboard.update_org(alice, "team", name="crew")
    assert dashboard.update_org(alice, "crew", name="team").id == org.id


def test_a_provider_sign_up_picks_a_free_username_when_an_org_holds_the_hint(hub):
    dashboard.create_org(hub.claim("alice"), "octo")
    profile = ProviderProfile(provider="github", subject="42", username_hint="octo")
    account = auth.sign_in_with_identity(profile).account
    assert account.username.startswith("octo-")
    assert dashboard.get_org(auth.resolve_credentials(), account.username).personal


def test_org_names_made_before_the_registry_are_reserved_at_start_up(hub):
    alice = hub.claim("alice")
    org = dashboard.create_org(alice, "acme")
    dashboard.update_org(alice, "acme", name="acme-labs")
    with transaction("auth") as session:
        session.query(Name).filter(Name.kind == "org").delete()
    assert dashboard.reserve_existing_names() == []
    assert names()["acme"] == names()["acme-labs"] == ("org", org.id)
    assert dashboard.reserve_existing_names() == []  # again: nothing changes
    with transaction("dashboard") as session:
        assert session.scalar(select(OrgFormerName.name_key)) == "acme"
        assert session.get(Org, org.id).name_key == "acme-labs"


def test_the_migration_step_reserves_org_names_as_deployments_run_it(hub, settings, monkeypatch):
    # Servers under gunicorn never pass through `chaoshub run`: `chaoshub db upgrade` (the
    # Kubernetes Job) is where a deployment reserves the names of orgs made before the registry.
    from click.testing import CliRunner

    from chaoshub.cli import main

    org = dashboard.create_org(hub.claim("alice"), "acme")
    with transaction("auth") as session:
        session.query(Name).filter(Name.kind == "org").delete()
    for key, value in settings.items():
        monkeypatch.setenv(key, str(value))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert names()["acme"] == ("org", org.id)
