"""Domain events across dashboard's border: auth's account events it applies, and its own
events (org and workspace deletions) it hands to its subscribers."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from chaoshub.core import events
from chaoshub.dashboard import audit, store
from chaoshub.dashboard.interface import EVENT_SUBSCRIBERS, interface, outbox
from chaoshub.dashboard.models import Org, OrgMember, Profile, Workspace
from chaoshub.dashboard.writes import joining

log = logging.getLogger(__name__)

# Auth's account events this service writes into audit logs, under the names the logs show.
ACCOUNT_EVENT_TYPES = tuple(f"account.{e.removeprefix('auth.')}" for e in audit.ACCOUNT_EVENTS)
# All of auth's events this service handles (handle_account_event), in one subscription.
AUTH_EVENT_TYPES = ("account.created", *ACCOUNT_EVENT_TYPES)
PERSONAL_WORKSPACES = (("Personal", "private"), ("Public", "public"))


# Auth's events ---------------------------------------------------------------------------------


def handle_account_event(session: Session, event: events.Event) -> None:
    """Apply one of auth's account events (ACCOUNT_EVENT_TYPES), in the session of its delivery."""
    # One subscription for all of them keeps their order: the personal org comes before the
    # sign-in that followed the sign-up is written into its audit log.
    if event.type == "account.created":
        create_personal_org(session, event)
    else:
        audit_account_event(session, event)


def create_personal_org(session: Session, event: events.Event) -> None:
    """Make a new account's profile and personal org (workspaces Personal and Public), from
    auth's `account.created` event, in the session of its delivery."""
    account_id, name = event.subject.id, event.payload["username"]
    with joining(session, account_id) as work:
        # Accepting an invitation before this event arrived may have made the profile already.
        if session.get(Profile, account_id) is None:
            session.add(Profile(account_id=account_id, username=name,
                                display_name=event.payload["display_name"]))
        if store.name_taken(session, name.lower()):
            # Only an org older than auth's registry of names can hold it; no retry would mend it.
            log.error("account %s has no personal org: the name %r is an org's", account_id, name)
            return
        org = Org(name=name, name_key=name.lower(), personal=True)
        org.workspaces = [Workspace(name=ws, name_key=ws.lower(), visibility=visibility)
                          for ws, visibility in PERSONAL_WORKSPACES]
        session.add(org)
        session.flush()
        session.add(OrgMember(org_id=org.id, account_id=account_id, role="owner"))
        work.forget(*store.org_cache_keys(session, org),
                    *store.member_keys(session, org, account_id))


def audit_account_event(session: Session, event: events.Event) -> None:
    """Write an account's security event (auth's, ACCOUNT_EVENT_TYPES) into the audit log of
    each of the account's orgs it concerns, in the session of its delivery: a sign-in into all
    of them, a token's event into the personal org and the org of the workspace it is kept to."""
    name = "auth." + event.type.removeprefix("account.")
    details = dict(event.payload) if isinstance(event.payload, dict) else event.payload
    # Where the token is kept says which logs it concerns; the entry names the workspace itself.
    kept_to = details.pop("workspace_id", None) \
        if name in audit.TOKEN_EVENTS and isinstance(details, dict) else None
    problems = audit.account_event_problems(name, details)
    if problems or not event.actor:
        # No retry would mend it: it is dropped, not left to hold back the events after it.
        log.error("event %s (%s) not written to the audit log: %s", event.id, event.type,
                  problems or "no actor")
        return
    with joining(session, event.actor) as work:
        # Orgs where the account holds only a workspace role log its events too.
        org_ids = (set(session.scalars(select(OrgMember.org_id)
                                       .where(OrgMember.account_id == event.actor)))
                   | set(store.workspace_roles(session, event.actor)))
        if name in audit.TOKEN_EVENTS:
            # A token is its account's own: a team sees only one kept to its workspace.
            org_ids &= _token_orgs(session, event.actor, kept_to)
        # Every writer takes the chains in one order: two of them cannot deadlock on them.
        for org_id in sorted(org_ids):
            work.audit(org_id, name, details)


def _token_orgs(session: Session, account_id: str, workspace_id: str | None) -> set[str]:
    # A personal org has no member but its account (members are refused there).
    orgs = set(session.scalars(select(Org.id).join(OrgMember, OrgMember.org_id == Org.id)
                               .where(Org.personal.is_(True),
                                      OrgMember.account_id == account_id)))
    if isinstance(workspace_id, str):
        orgs |= set(session.scalars(select(Workspace.org_id)
                                    .where(Workspace.id == workspace_id)))
    return orgs


# Dashboard's own events ------------------------------------------------------------------------


@interface.public(callers=EVENT_SUBSCRIBERS)
def pending_events(subscriber: str, types: list[str], limit: int = events.BATCH
                   ) -> list[events.Event]:
    """Dashboard's events of `types` that `subscriber` has not acknowledged yet, oldest first."""
    return outbox.pending(subscriber, types, limit)


@interface.public(callers=EVENT_SUBSCRIBERS)
def ack_events(subscriber: str, ids: list[str]) -> None:
    """Record that `subscriber` has handled these events of dashboard's."""
    outbox.ack(subscriber, ids)
