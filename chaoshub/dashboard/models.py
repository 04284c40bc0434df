"""The dashboard service's tables: profiles, orgs, workspaces and who belongs where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    url: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

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


class OrgFormerName(Base):
    """A name an org was known by before a rename: its old URLs still lead to it."""

    __tablename__ = "org_former_names"

    # Held while the org lives, so an old link never silently reaches someone else's org.
    name_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    renamed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
