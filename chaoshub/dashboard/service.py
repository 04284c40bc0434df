"""The dashboard service's public interface: orgs, workspaces, members (of orgs and of single
workspaces), invitations, activity, audit, search, and who may do what.

The only module other services import. The functions live by concern in `dashboard/public/`
(each registers itself with `interface.public` there); this module names them all.
"""

from __future__ import annotations

from chaoshub.dashboard.interface import EVENT_SUBSCRIBERS, interface, outbox
from chaoshub.dashboard.permissions import Roles, grantable
from chaoshub.dashboard.public.access import authorize, authorize_workspace, grant
from chaoshub.dashboard.public.domain_events import (
    ACCOUNT_EVENT_TYPES,
    AUTH_EVENT_TYPES,
    PERSONAL_WORKSPACES,
    ack_events,
    audit_account_event,
    create_personal_org,
    handle_account_event,
    pending_events,
)
from chaoshub.dashboard.public.feeds import (
    AUDIT_LISTING,
    activity_feed,
    audit_log,
    audit_page,
    org_activity,
    record_activities,
    verify_audit_chains,
    workspace_activity,
)
from chaoshub.dashboard.public.invitations import (
    INVITATIONS_LISTING,
    MY_INVITATIONS_LISTING,
    accept_invitation,
    create_invitation,
    decline_invitation,
    get_invitation,
    list_invitations,
    my_invitations,
    page_invitations,
    page_my_invitations,
    revoke_invitation,
)
from chaoshub.dashboard.public.members import (
    MEMBERS_LISTING,
    WORKSPACE_MEMBERS_LISTING,
    add_member,
    add_workspace_member,
    change_member_role,
    change_workspace_member_role,
    list_members,
    list_workspace_members,
    page_members,
    page_workspace_members,
    remove_member,
    remove_workspace_member,
    workspace_member_ids,
)
from chaoshub.dashboard.public.orgs import (
    create_org,
    create_workspace,
    delete_org,
    delete_workspace,
    get_org,
    get_workspace,
    list_orgs,
    reserve_existing_names,
    search,
    update_org,
    update_workspace,
)
from chaoshub.dashboard.public.retention import RETENTION_EVENT, apply_retention
from chaoshub.dashboard.public.safety import (
    KILL_SWITCH_ENGAGED,
    KILL_SWITCH_RELEASED,
    get_kill_switch,
    get_run_policy,
    set_kill_switch,
    set_run_policy,
)
from chaoshub.dashboard.public.sights import workspace_sights
from chaoshub.dashboard.schemas import (
    DENIED_MODULES,
    SHELL_PREFIXES,
    SHELL_SUFFIXES,
    SHELLS,
    SYSTEM_PROGRAMS,
    Action,
    ActivityPage,
    AllowedWindow,
    AuditPage,
    AuditView,
    ChainBreak,
    InvitationPage,
    InvitationView,
    KillSwitch,
    MemberPage,
    MemberView,
    NewActivity,
    NewInvitation,
    OrgView,
    OutsiderExecutions,
    Role,
    RunPolicy,
    SearchResults,
    Visibility,
    WorkspaceGrant,
    WorkspaceMemberPage,
    WorkspaceMemberView,
    WorkspaceRef,
    WorkspaceSight,
    WorkspaceView,
    zone_problem,
)
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.validation import (
    NAME,
    NAME_RULE,
    OUTSIDER_EXECUTIONS,
    RESERVED_NAMES,
    VISIBILITIES,
    org_name_problem,
)

__all__ = [
    # The registry, the outbox and the names the other services and the app factory use.
    "ACCOUNT_EVENT_TYPES", "AUDIT_LISTING", "AUTH_EVENT_TYPES", "EVENT_SUBSCRIBERS",
    "INVITATIONS_LISTING", "MEMBERS_LISTING", "MY_INVITATIONS_LISTING", "NAME", "NAME_RULE",
    "OUTSIDER_EXECUTIONS", "PERSONAL_WORKSPACES", "RESERVED_NAMES", "SERVICE", "VISIBILITIES",
    "WORKSPACE_MEMBERS_LISTING", "interface", "outbox", "org_name_problem", "grantable",
    "Roles", "DENIED_MODULES", "SHELLS", "SHELL_PREFIXES",
    "SHELL_SUFFIXES", "SYSTEM_PROGRAMS", "KILL_SWITCH_ENGAGED", "zone_problem",
    "KILL_SWITCH_RELEASED",
    # The shapes its functions take and return.
    "Action", "ActivityPage", "AllowedWindow", "AuditPage", "AuditView", "ChainBreak",
    "InvitationPage",
    "InvitationView", "KillSwitch", "MemberPage", "MemberView", "NewActivity", "NewInvitation",
    "OrgView",
    "OutsiderExecutions", "Role", "RunPolicy", "SearchResults", "Visibility", "WorkspaceGrant",
    "WorkspaceMemberPage", "WorkspaceMemberView", "WorkspaceRef", "WorkspaceSight",
    "WorkspaceView",
    # Orgs and workspaces.
    "create_org", "list_orgs", "get_org", "update_org", "delete_org", "reserve_existing_names",
    "create_workspace", "get_workspace", "update_workspace", "delete_workspace", "search",
    "workspace_sights",
    # Members.
    "list_members", "page_members", "add_member", "change_member_role", "remove_member",
    "list_workspace_members", "page_workspace_members", "add_workspace_member",
    "change_workspace_member_role", "remove_workspace_member", "workspace_member_ids",
    # Invitations.
    "create_invitation", "list_invitations", "page_invitations", "revoke_invitation",
    "my_invitations", "page_my_invitations", "get_invitation", "accept_invitation",
    "decline_invitation",
    # Feeds and the audit log.
    "record_activities", "activity_feed", "org_activity", "workspace_activity", "audit_log",
    "audit_page", "verify_audit_chains",
    # Access, and what keeps runs safe.
    "grant", "authorize", "authorize_workspace", "get_run_policy", "set_run_policy",
    "get_kill_switch", "set_kill_switch",
    # Retention.
    "apply_retention", "RETENTION_EVENT",
    # Domain events.
    "handle_account_event", "create_personal_org", "audit_account_event", "pending_events",
    "ack_events",
]
