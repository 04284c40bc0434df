"""Invitations into an org: made by its owners, for one account or as a single-use link, and
answered by those invited."""

from __future__ import annotations

from sqlalchemy.orm import Session

from chaoshub.auth import service as auth
from chaoshub.core import claims, paging
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, NotFound, ValidationFailed
from chaoshub.dashboard import invitations, store, validation
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Invitation, Org, OrgMember, Profile
from chaoshub.dashboard.public.access import org_access, session_user, signed_in
from chaoshub.dashboard.public.members import refuse_personal
from chaoshub.dashboard.schemas import InvitationPage, InvitationView, NewInvitation, Role
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.writes import write

INVITATIONS_LISTING = "org invitations"  # the listing's name, signed into its cursors
MY_INVITATIONS_LISTING = "my invitations"


# An org's invitations ------------------------------------------------------------------------


@interface.public
def create_invitation(
    claim: str, org: str, role: Role = "member", username: str | None = None,
    expires_in_days: int | None = None,
) -> NewInvitation:
    """Invite one account by username, or make a single-use link (its secret shown once)."""
    user = session_user(claim)
    validation.check_role(role)
    if expires_in_days is not None and not 1 <= expires_in_days <= invitations.MAX_DAYS:
        raise ValidationFailed("the invitation cannot be made", [{
            "pointer": "/expires_in_days",
            "message": f"from 1 to {invitations.MAX_DAYS} days"}])
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        refuse_personal(found)
    account = auth.find_account(claim, username) if username else None
    token = None if account else invitations.new_token()
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        if account is not None:
            if session.get(OrgMember, (found.id, account.id)) is not None:
                raise Conflict(f"{account.username} is already a member of {found.name}")
            if any(i.invitee_id == account.id
                   for i in invitations.pending_for_org(session, found.id)):
                raise Conflict(f"{account.username} has an invitation already")
        created_at, expires_at = invitations.lifetime(expires_in_days)
        invitation = Invitation(
            org_id=found.id, role=role, invited_by=user.sub, created_at=created_at,
            invitee_id=account.id if account else None,
            invitee_username=account.username if account else None,
            token_hash=invitations.token_hash(token) if token else None,
            expires_at=expires_at)
        session.add(invitation)
        session.flush()
        view = invitations.view(session, invitation, found)
        work.audit(found.id, "invitation.created", {
            "invitation_id": invitation.id, "kind": view.kind, "invitee": view.invitee,
            "role": role, "expires_at": view.expires_at.isoformat()})
    return NewInvitation(invitation=view, token=token)


@interface.public
def list_invitations(claim: str, org: str) -> list[InvitationView]:
    """The org's pending invitations (owners)."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        return [invitations.view(session, i, found)
                for i in invitations.pending_for_org(session, found.id)]


@interface.public
def page_invitations(claim: str, org: str, cursor: str | None = None,
                     limit: int | str | None = None) -> InvitationPage:
    """A page of the org's pending invitations (owners), newest first."""
    user = claims.verify(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        return _invitation_page(session, INVITATIONS_LISTING, [found.id], cursor, limit,
                                lambda after: invitations.pending_for_org(
                                    session, found.id, after, limit + 1), found)


@interface.public
def revoke_invitation(claim: str, org: str, invitation_id: str) -> None:
    """Withdraw a pending invitation (owners); its link stops working at once."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        invitation = session.get(Invitation, invitation_id or "")
        if invitation is None or invitation.org_id != found.id or not invitations.answer(
                session, invitation, "revoked"):
            raise NotFound("no such pending invitation")
        work.audit(found.id, "invitation.revoked", {
            "invitation_id": invitation.id, "invitee": invitation.invitee_username,
            "role": invitation.role})


# The caller's invitations --------------------------------------------------------------------


@interface.public
def my_invitations(claim: str) -> list[InvitationView]:
    """The pending invitations addressed to the claim's account (a session's business)."""
    user = session_user(claim)
    with transaction(SERVICE) as session:
        return [invitations.view(session, i)
                for i in invitations.pending_for_account(session, user.sub)]


@interface.public
def page_my_invitations(claim: str, cursor: str | None = None,
                        limit: int | str | None = None) -> InvitationPage:
    """A page of the pending invitations addressed to the claim's account, newest first."""
    user = session_user(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        return _invitation_page(session, MY_INVITATIONS_LISTING, [user.sub], cursor, limit,
                                lambda after: invitations.pending_for_account(
                                    session, user.sub, after, limit + 1))


@interface.public
def get_invitation(claim: str, token: str) -> InvitationView:
    """An open invitation by its link's secret (or, for its invitee, by its id)."""
    user = signed_in(claim)
    with transaction(SERVICE) as session:
        return invitations.view(session, _open_invitation(session, user, token))


@interface.public
def accept_invitation(claim: str, token: str) -> InvitationView:
    """Join the org an invitation is for: by the link's secret, or by id for its invitee."""
    user = session_user(claim)
    with transaction(SERVICE) as session:
        profile = session.get(Profile, user.sub)
    account = auth.get_account(claim) if profile is None else None
    with write(user.sub) as work:
        session = work.session
        invitation = _open_invitation(session, user, token)
        org = session.get(Org, invitation.org_id)
        if session.get(OrgMember, (org.id, user.sub)) is not None:
            raise Conflict(f"you are a member of {org.name} already")
        if not invitations.answer(session, invitation, "accepted"):
            raise NotFound("this invitation has been used, revoked or has expired")
        if account is not None:
            session.add(Profile(account_id=user.sub, username=account.username,
                                display_name=account.display_name))
        session.add(OrgMember(org_id=org.id, account_id=user.sub, role=invitation.role))
        session.flush()
        view = invitations.view(session, invitation, org)
        name = store.username(session, user)
        work.feed(org.id, "invitation.accepted",
                  f"{name} accepted an invitation from {view.invited_by} "
                  f"and joined as {invitation.role}", subject=f"member:{user.sub}")
        work.audit(org.id, "invitation.accepted", {
            "invitation_id": invitation.id, "kind": view.kind, "username": name,
            "role": invitation.role})
        work.audit(org.id, "member.added", {
            "username": name, "account_id": user.sub, "role": invitation.role,
            "invitation_id": invitation.id})
        # The miss cached before joining would otherwise hide the new membership until it
        # expires.
        work.forget(*store.member_keys(session, org, user.sub))
    return view


@interface.public
def decline_invitation(claim: str, invitation_id: str) -> None:
    """Turn down an invitation addressed to the claim's account."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        invitation = session.get(Invitation, invitation_id or "")
        if (invitation is None or invitation.invitee_id != user.sub
                or not invitations.is_open(invitation)
                or not invitations.answer(session, invitation, "declined")):
            raise NotFound("no such pending invitation")
        work.audit(invitation.org_id, "invitation.declined", {
            "invitation_id": invitation.id, "username": invitation.invitee_username})


def _invitation_page(session: Session, name: str, filters: list, cursor: str | None,
                     limit: int, rows_after, org: Org | None = None) -> InvitationPage:
    # One more row than shown says whether a next page follows.
    after = paging.timed(paging.decode(cursor, name, filters)) if cursor else None
    rows = rows_after(after)
    views = [invitations.view(session, i, org) for i in rows[:limit]]
    if len(rows) <= limit:
        return InvitationPage(invitations=views)
    last = rows[limit - 1]
    return InvitationPage(invitations=views, next_cursor=paging.encode(
        name, filters, [last.created_at.isoformat(), last.id]))


def _open_invitation(session: Session, user: UserClaim, token: str) -> Invitation:
    invitation = invitations.find(session, token)
    # By id only for its invitee: ids show in lists, the link's secret never does.
    by_id = not invitations.is_token(token)
    if (not invitations.is_open(invitation)
            or (by_id and invitation.invitee_id != user.sub)
            or (invitation.invitee_id and invitation.invitee_id != user.sub)
            or not invitations.maker_may_invite(session, invitation)):
        raise NotFound("this invitation does not exist, has been used, revoked, or has expired")
    return invitation
