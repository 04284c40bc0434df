"""The dashboard service's tables: profiles, orgs, workspaces, members (of orgs and of single
workspaces), and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chaoshub.core.events import HandledEventColumns, OutboxAckColumns, OutboxEventColumns
from chaoshub.core.models import NAMING_CONVENTION, UTCDateTime, new_id, utcnow


class Base(DeclarativeBase):
    """Metadata of the dashboard database only."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Profile(Base):
    """What the hub shows of an account (the account itself lives in auth: only its id here)."""

    __tablename__ = "profiles"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # A copy of the auth username, so member lists need no call to auth per row.
    username: Mapped[str] = mapped_column(String(40), server_default="")
    display_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Org(Base):
    """An organization: a personal one per account, or a team's."""

    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(40))
    # Lower-cased name: org names are unique whatever their case.
    name_key: Mapped[str] = mapped_column(String(40), unique=True)
    # What pages show ("Acme Platform Team"); empty: the name itself. The name stays the slug.
    display_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    url: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The emergency stop of every run in the org, and who last turned it on or off, and why.
    kill_switch_engaged: Mapped[bool] = mapped_column(Boolean, default=False,
                                                      server_default=false())
    kill_switch_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    kill_switch_by_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    kill_switch_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    workspaces: Mapped[list[Workspace]] = relationship(
        back_populates="org", cascade="all, delete-orphan", order_by="Workspace.name_key"
    )


class Workspace(Base):
    """A place for experiments inside an org, with its visibility."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("org_id", "name_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    name_key: Mapped[str] = mapped_column(String(40))
    visibility: Mapped[str] = mapped_column(String(16))
    # What people outside the org see of executions: none, status, or full journals.
    outsider_executions: Mapped[str] = mapped_column(
        String(16), default="none", server_default="none"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # What its runs may do (a RunPolicy's fields); None: the defaults.
    run_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    org: Mapped[Org] = relationship(back_populates="workspaces")


class OrgMember(Base):
    """An account's role in an org."""

    __tablename__ = "org_members"

    org_id: Mapped[str] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkspaceMember(Base):
    """An account's role in one workspace: above its org role there, or without one."""

    __tablename__ = "workspace_members"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrgFormerName(Base):
    """A name an org was known by before a rename: its old URLs still lead to it."""

    __tablename__ = "org_former_names"

    # Held while the org lives, so an old link never silently reaches someone else's org.
    name_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    renamed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invitation(Base):
    """An invitation into an org: to one account by username, or a single-use link."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # Set for an invitation to one account; a link invitation has a token hash instead.
    invitee_id: Mapped[str | None] = mapped_column(String(36), index=True)
    invitee_username: Mapped[str | None] = mapped_column(String(40))
    # Only the SHA-256 of a link's secret: a copy of the database cannot be turned into access.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ActivityEntry(Base):
    """One line of an activity feed: who did what, where, and who may read it."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_org_id_created_at", "org_id", "created_at", "id"),)

    # An increasing integer: entries made within the same instant keep their order.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(String(300))
    # "members": the org's members only; "readers": whoever may read the entry's workspace now;
    # "executions": whoever may see the workspace's executions now (activity.py).
    scope: Mapped[str] = mapped_column(String(16))
    # The summary without its actor, for outsiders who see the status of executions only.
    outsider_summary: Mapped[str | None] = mapped_column(String(300))
    # What the entry is about beyond its org and workspace, for its link: "experiment:<id>",
    # "execution:<experiment id>:<id>", "run:<experiment id>:<id>" or "member:<account id>".
    subject: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The id of the entry in the outbox of the service that asked for it (experiment's feed
    # outbox): the same entry delivered again is not added twice. None for dashboard's own.
    outbox_id: Mapped[str | None] = mapped_column(String(36), unique=True, index=True)


class AuditEntry(Base):
    """One security-relevant event of an org, chained by hash to the one before it."""

    __tablename__ = "audit_log"
    # One successor per entry: two writers racing cannot fork an org's chain.
    __table_args__ = (UniqueConstraint("org_id", "prev_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: the log outlives the org it tells about.
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    actor_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(60))
    details: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class OutboxEvent(OutboxEventColumns, Base):
    """An event of dashboard's (orgs and workspaces deleted), kept until acknowledged."""

    __tablename__ = "dashboard_outbox_events"


class OutboxAck(OutboxAckColumns, Base):
    """A subscriber's acknowledgement of one of dashboard's events."""

    __tablename__ = "dashboard_outbox_acks"


class HandledEvent(HandledEventColumns, Base):
    """An event of auth's that dashboard has applied: applying it again would change nothing."""

    __tablename__ = "dashboard_handled_events"
