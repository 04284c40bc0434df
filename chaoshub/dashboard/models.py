"""The dashboard service's tables: profiles, orgs, workspaces and who belongs where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chaoshub.core.models import NAMING_CONVENTION, UTCDateTime, new_id, utcnow


class Base(DeclarativeBase):
    """Metadata of the dashboard database only."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Profile(Base):
    """What the hub shows of an account (the account itself lives in auth: only its id here)."""

    __tablename__ = "profiles"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
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
