"""Invitations: by username and by single-use link, their pages and API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from chaoshub.auth import service as auth
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chaoshub.core.models import utcnow
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.invitations import token_hash
from chaoshub.dashboard.models import Invitation
from tests.conftest import PASSWORD, csrf, post_json, signed_up_client


@pytest.fixture
def hub(app):
    with app.app_context():
        yield claim_for


def claim_for(username: str) -> str:
    """Sign `username` up (first time) and in; the claim of that session."""
    try:
        auth.create_local_account(username, PASSWORD)
    except ValidationFailed:
        pass
    return auth.resolve_credentials(session_token=auth.sign_in(username, PASSWORD).token)


def test_a_link_works_once_and_only_its_hash_is_stored(hub):
    olga, mary, otto = hub("olga"), hub("mary"), hub("otto")
    dashboard.create_org(olga, "team")
    new = dashboard.create_invitation(olga, "team", "viewer")
    assert new.token.startswith("chinv_") and new.invitation.kind == "link"
    assert (new.invitation.expires_at - new.invitation.created_at).days == 7
    with transaction("dashboard") as session:
        stored = session.get(Invitation, new.invitation.id)
        assert stored.token_hash == token_hash(new.token) and new.token not in str(vars(stored))
    assert [i.id for i in dashboard.list_invitations(olga, "team")] == [new.invitation.id]

    with pytest.raises(NotFound):
        dashboard.get_org(mary, "team")  # a miss that the role cache now remembers
    assert dashboard.get_invitation(mary, new.token).org_name == "team"
    with pytest.raises(NotFound):  # a link invitation is never reached by its id
        dashboard.accept_invitation(mary, new.invitation.id)
    accepted = dashboard.accept_invitation(mary, new.token)
    assert accepted.state == "accepted"
    assert dashboard.get_org(mary, "team").role == "viewer"  # the cached miss is forgotten
    with pytest.raises(NotFound):
        dashboard.accept_invitation(otto, new.token)  # single use
    assert dashboard.list_invitations(olga, "team") == []


def test_expired_and_revoked_links_refuse(hub):
    olga, mary = hub("olga"), hub("mary")
    dashboard.create_org(olga, "team")
    expired = dashboard.create_invitation(olga, "team", expires_in_days=1)
    with transaction("dashboard") as session:
        session.execute(update(Invitation).where(Invitation.id == expired.invitation.id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    revoked = dashboard.create_invitation(olga, "team")
    dashboard.revoke_invitation(olga, "team", revoked.invitation.id)
    for new in (expired, revoked):
        with pytest.raises(NotFound):
            dashboard.accept_invitation(mary, new.token)
    with pytest.raises(NotFound):
        dashboard.revoke_invitation(olga, "team", revoked.invitation.id)
    with pytest.raises(ValidationFailed):
        dashboard.create_invitation(olga, "team", expires_in_days=31)


def test_inviting_by_username_lets_the_invitee_accept_or_decline(hub):
    olga, mary, vic = hub("olga"), hub("mary"), hub("vic")
    dashboard.create_org(olga, "team")
    for_mary = dashboard.create_invitation(olga, "team", "member", username="MARY")
    assert for_mary.token is None and for_mary.invitation.invitee == "mary"
    with pytest.raises(Conflict):
        dashboard.create_invitation(olga, "team", username="mary")  # one pending is enough
    for_vic = dashboard.create_invitation(olga, "team", username="vic")

    assert [i.org_name for i in dashboard.my_invitations(mary)] == ["team"]
    with pytest.raises(NotFound):
        dashboard.accept_invitation(vic, for_mary.invitation.id)  # not theirs
    dashboard.accept_invitation(mary, for_mary.invitation.id)
    assert dashboard.get_org(mary, "team").role == "member"
    assert dashboard.my_invitations(mary) == []

    dashboard.decline_invitation(vic, for_vic.invitation.id)
    assert dashboard.my_invitations(vic) == []
    with pytest.raises(NotFound):
        dashboard.accept_invitation(vic, for_vic.invitation.id)
    with pytest.raises(Conflict):
        dashboard.create_invitation(olga, "team", username="mary")  # a member already


def test_only_owners_invite_and_never_into_a_personal_org(hub):
    olga, mary = hub("olga"), hub("mary")
    dashboard.create_org(olga, "team")
    dashboard.add_member(olga, "team", "mary", "maintainer")
    with pytest.raises(Forbidden):
        dashboard.create_invitation(mary, "team")
    with pytest.raises(Forbidden):
        dashboard.list_invitations(mary, "team")
    with pytest.raises(Forbidden):
        dashboard.create_invitation(olga, "olga")
    with pytest.raises(NotFound):
        dashboard.create_invitation(hub("otto"), "team")  # a private org stays invisible


def test_the_api_and_pages(app):
    olga, mary = signed_up_client(app, "olga"), signed_up_client(app, "mary")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    made = post_json(olga, "/api/v1/orgs/team/invitations", {"role": "member"})
    assert made.status_code == 201 and made.json["url"].endswith(made.json["token"])
    listed = olga.get("/api/v1/orgs/team/invitations").json["invitations"]
    assert [i["id"] for i in listed] == [made.json["id"]] and "token" not in listed[0]
    members_page = olga.get("/team/-/members").text
    assert 'data-testid="pending-invitation"' in members_page and made.json["token"] not in (
        members_page)

    visitor = app.test_client()
    page = visitor.get(f"/invitations/{made.json['token']}")
    # The secret waits in a cookie of the visitor's browser, never in the redirect.
    assert page.status_code == 302
    assert page.headers["Location"] == "/signin?next=/invitations/pending"
    assert visitor.get_cookie("chaoshub_invitation", path="/invitations/pending").value == (
        made.json["token"])

    page = mary.get(f"/invitations/{made.json['token']}")
    assert page.status_code == 200 and "Accept invitation" in page.text
    joined = mary.post(f"/invitations/{made.json['token']}/accept",
                       data={"csrf_token": csrf(mary)})
    assert joined.status_code == 303 and joined.headers["Location"] == "/team"
    assert mary.get("/team").status_code == 200
    again = post_json(mary, f"/api/v1/invitations/{made.json['token']}/accept", {})
    assert again.status_code == 404

    by_name = post_json(olga, "/api/v1/orgs/team/invitations", {"username": "vic"})
    assert by_name.status_code == 404  # no such account
    link = post_json(olga, "/api/v1/orgs/team/invitations", {})
    revoked = olga.delete(f"/api/v1/orgs/team/invitations/{link.json['id']}",
                          headers={"X-CSRF-Token": csrf(olga)})
    assert revoked.status_code == 204
    gone = mary.get(f"/invitations/{link.json['token']}")
    assert gone.status_code == 404 and "cannot be used" in gone.text

    vic = signed_up_client(app, "vic")
    invite = post_json(olga, "/api/v1/orgs/team/invitations", {"username": "vic"})
    mine = vic.get("/api/v1/invitations").json["invitations"]
    assert [i["id"] for i in mine] == [invite.json["id"]]
    assert 'data-testid="invitation"' in vic.get("/").text
    declined = post_json(vic, f"/api/v1/invitations/{invite.json['id']}/decline", {})
    assert declined.status_code == 204
    assert vic.get("/api/v1/invitations").json["invitations"] == []
    with app.app_context(), transaction("dashboard") as session:
        states = sorted(session.scalars(select(Invitation.state)))
    assert states == ["accepted", "declined", "revoked"]


def test_invitations_page_by_signed_cursor(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs", {"name": "other"})
    for _ in range(5):
        assert post_json(olga, "/api/v1/orgs/team/invitations",
                         {"role": "member"}).status_code == 201
    url = "/api/v1/orgs/team/invitations"
    seen, cursor = [], None
    while True:
        page = olga.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["invitations"]) <= 2
        seen += [i["id"] for i in page["invitations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in olga.get(f"{url}?limit=100").json["invitations"]]
    assert len(set(seen)) == 5
    cursor = olga.get(f"{url}?limit=1").json["next_cursor"]
    assert olga.get(f"/api/v1/orgs/other/invitations?cursor={cursor}").status_code == 400
    assert olga.get(f"/api/v1/invitations?cursor={cursor}").status_code == 400
    assert olga.get(f"{url}?limit=101").status_code == 400
    assert olga.get("/api/v1/invitations?limit=101").status_code == 400


def test_my_invitations_page_by_signed_cursor(app):
    mary = signed_up_client(app, "mary")
    for org in ("a1", "a2", "a3"):
        owner = signed_up_client(app, f"{org}-owner")
        post_json(owner, "/api/v1/orgs", {"name": org})
        assert post_json(owner, f"/api/v1/orgs/{org}/invitations",
                         {"role": "member", "username": "mary"}).status_code == 201
    seen, cursor = [], None
    while True:
        page = mary.get("/api/v1/invitations?limit=2"
                        + (f"&cursor={cursor}" if cursor else "")).json
        seen += [i["org_name"] for i in page["invitations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["a1", "a2", "a3"]
