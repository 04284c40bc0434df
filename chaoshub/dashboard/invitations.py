"""Invitations' internals: link secrets, lookups and views."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from chaoshub.core import paging
from chaoshub.core.models import utcnow
from chaoshub.dashboard.models import Invitation, Org, OrgMember, Profile
from chaoshub.dashboard.permissions import PERMISSIONS
from chaoshub.dashboard.schemas import InvitationView

TOKEN_PREFIX = "chinv_"
DEFAULT_DAYS = 7
MAX_DAYS = 30


def new_token() -> str:
    """A link's secret: random, and recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a link's secret."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_token(value: str) -> bool:
    """True for a link's secret, False for an invitation's id."""
    return (value or "").startswith(TOKEN_PREFIX)


def lifetime(days: int | None) -> tuple[datetime, datetime]:
    """When an invitation made now for `days` days is made, and when it runs out."""
    now = utcnow()
    return now, now + timedelta(days=days or DEFAULT_DAYS)


def find(session: Session, token_or_id: str) -> Invitation | None:
    """An invitation by its link's secret or by its id."""
    if is_token(token_or_id):
        return session.scalar(select(Invitation)
                              .where(Invitation.token_hash == token_hash(token_or_id)))
    return session.get(Invitation, token_or_id or "")


def is_open(invitation: Invitation | None) -> bool:
    """True for an invitation that may still be accepted."""
    return (invitation is not None and invitation.state == "pending"
            and invitation.expires_at > utcnow())


def pending_for_org(session: Session, org_id: str, after: tuple[datetime, str] | None = None,
                    limit: int | None = None) -> list[Invitation]:
    """The org's invitations still open, newest first, past `after` if given."""
    return _pending(session, Invitation.org_id == org_id, after, limit)


def pending_for_account(session: Session, account_id: str,
                        after: tuple[datetime, str] | None = None,
                        limit: int | None = None) -> list[Invitation]:
    """The open invitations addressed to one account, newest first, past `after` if given."""
    return _pending(session, Invitation.invitee_id == account_id, after, limit)


def _pending(session: Session, where: ColumnElement[bool], after: tuple[datetime, str] | None,
             limit: int | None) -> list[Invitation]:
    query = select(Invitation).where(where, Invitation.state == "pending",
                                     Invitation.expires_at > utcnow())
    query = paging.after(query, Invitation.created_at, Invitation.id, after)
    return list(session.scalars(query.limit(limit) if limit else query))


def maker_may_invite(session: Session, invitation: Invitation) -> bool:
    """True while the invitation's maker may still invite into its org."""
    # Read now, in this transaction: a link is worth its maker's rights of today.
    role = session.scalar(select(OrgMember.role).where(
        OrgMember.org_id == invitation.org_id, OrgMember.account_id == invitation.invited_by))
    return role in PERMISSIONS["manage_members"]


def revoke_made_by(session: Session, org_id: str, account_id: str) -> int:
    """Revoke the pending invitations one account made into one org; how many there were."""
    result = session.execute(update(Invitation)
                             .where(Invitation.org_id == org_id,
                                    Invitation.invited_by == account_id,
                                    Invitation.state == "pending")
                             .values(state="revoked")
                             .execution_options(synchronize_session=False))
    return result.rowcount


def answer(session: Session, invitation: Invitation, state: str) -> bool:
    """Move a pending invitation to `state`; False when someone else answered it first."""
    # A conditional update, so a link is used once even when two people click it together.
    result = session.execute(update(Invitation)
                             .where(Invitation.id == invitation.id,
                                    Invitation.state == "pending")
                             .values(state=state)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    invitation.state = state
    return True


def view(session: Session, invitation: Invitation, org: Org | None = None) -> InvitationView:
    """An invitation as lists show it."""
    org = org or session.get(Org, invitation.org_id)
    inviter = session.get(Profile, invitation.invited_by)
    return InvitationView(
        id=invitation.id, org_id=invitation.org_id, org_name=org.name if org else "",
        role=invitation.role, kind="link" if invitation.token_hash else "user",
        invitee=invitation.invitee_username,
        invited_by=inviter.username if inviter else "someone", state=invitation.state,
        created_at=invitation.created_at, expires_at=invitation.expires_at)
