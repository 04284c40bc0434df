"""The experiment service's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chaoshub.core.events import HandledEventColumns
from chaoshub.core.models import NAMING_CONVENTION, UTCDateTime, new_id, utcnow


class Base(DeclarativeBase):
    """Metadata of the experiment database only."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Experiment(Base):
    """An experiment document kept in a workspace (the workspace lives in dashboard: its id)."""

    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_listing", "workspace_id", "updated_at", "id"),
        Index("ix_experiments_last_run", "workspace_id", "last_run_at", "id"),
        # A file of the workspace's repository is one experiment there.
        Index("ix_experiments_source", "workspace_id", "source_path", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The latest version's document and number: what readers and runs get.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The most recently published execution, copied here so listings filter and sort by it
    # without a join (see last_runs.py). No foreign key: executions already point at this table.
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    last_execution_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Synced from a repository linked to the workspace (git_sync.py): the file path is its key
    # in the workspace, and while the link stands the hub's editor and API leave it alone.
    source_link_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    source_repository: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    removed_upstream: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    # The repository paths (globs) its `chaoshub` extension says it depends on.
    depends_on: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class ExperimentTag(Base):
    """One tag of an experiment, a row of its own so listings filter by tag on any database."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class ExperimentContribution(Base):
    """What an experiment says it tells about one quality of the system (its `contributions`),
    a row of its own so listings filter by it."""

    __tablename__ = "experiment_contributions"

    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    # Lower-cased: "Availability" and "availability" are one quality.
    name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    level: Mapped[str] = mapped_column(String(10))  # high, medium, low or none


class ExperimentVersion(Base):
    """One immutable state of an experiment's document."""

    __tablename__ = "experiment_versions"
    __table_args__ = (UniqueConstraint("experiment_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(36))
    author_name: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A version synced from git: the commit it came from and that commit's author.
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    commit_author: Mapped[str | None] = mapped_column(Text, nullable=True)


class Execution(Base):
    """The index of one published journal: what listings, pages and comparisons read."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("experiment_id", "content_hash"),
        UniqueConstraint("experiment_id", "idempotency_key"),
        Index("ix_executions_listing", "experiment_id", "created_at", "id"),
        Index("ix_executions_workspace_recent", "workspace_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    deviated: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    node: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[str] = mapped_column(String(36))
    published_by_name: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExecutionJournal(Base):
    """The journal as published, whole, apart from the index so listings never load it."""

    __tablename__ = "execution_journals"

    execution_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True)
    journal: Mapped[dict[str, Any]] = mapped_column(JSON)


class ExecutionActivity(Base):
    """One activity of an execution: where it ran, how it went, and its tolerance verdict."""

    __tablename__ = "execution_activities"

    execution_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase: Mapped[str] = mapped_column(String(20))  # before, method, after, during, rollbacks
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    tolerance_met: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class Run(Base):
    """A run of an experiment, started on the hub (`origin` "hub") or reported by a Chaos
    Toolkit client ("client"), from its start to its journal (then `execution_id` names the
    execution the journal became)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_listing", "experiment_id", "created_at", "id"),
                      Index("ix_runs_status", "status", "created_at"),
                      # A run opened again with its Idempotency-Key (a retry) is the first one.
                      Index("ix_runs_idempotency", "created_by", "idempotency_key", unique=True))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    # queued, running, finished, aborted, interrupted, refused
    status: Mapped[str] = mapped_column(String(20))
    # What the hub wants of the run: "run", "abort" (rollbacks played) or "abort-now".
    desired: Mapped[str] = mapped_column(String(20), default="run", server_default="run")
    origin: Mapped[str] = mapped_column(String(10), default="client", server_default="client")
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # what a hub run runs
    # A hub run's options: dry, rollback_strategy, configuration values.
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    worker: Mapped[str] = mapped_column(Text, default="", server_default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Renewed by the worker while the run goes on: past it, the worker is taken as lost.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    node: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(36))
    created_by_name: Mapped[str] = mapped_column(Text, default="")
    # The request that started or opened the run: its worker and events carry it on.
    request_id: Mapped[str] = mapped_column(String(128), default="", server_default="")
    # The client's Idempotency-Key when it opened the run (store.idempotency_key's form).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    execution_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("executions.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RunEvent(Base):
    """One lifecycle event of a run, kept once per sequence number (clients resend)."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The request the event came in with (a hub run's: the one that queued it).
    request_id: Mapped[str] = mapped_column(String(128), default="", server_default="")


class RunEnvironment(Base):
    """A workspace's named environment (staging, production): the configuration values and
    secrets a run started in it receives. Protected ones are for maintainers' runs only."""

    __tablename__ = "run_environments"
    __table_args__ = (UniqueConstraint("workspace_id", "name_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))  # the name in lower case: unique
    description: Mapped[str] = mapped_column(Text, default="")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunEnvironmentEntry(Base):
    """One value of an environment: a configuration value (kept as is) or a secret (kept
    sealed, never shown), given to the run as a --var-file value or an environment variable."""

    __tablename__ = "run_environment_entries"

    environment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("run_environments.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "configuration" or "secret"
    target: Mapped[str] = mapped_column(String(10))  # "var" (--var-file) or "env"
    scope: Mapped[str] = mapped_column(String(128), default="")  # a var secret's scope
    value: Mapped[Any] = mapped_column(JSON, nullable=True)  # configuration values only
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)  # secrets only
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Worker(Base):
    """A worker process that runs experiments, and the Chaos Toolkit extensions it has: it
    says so when it starts and while it lives."""

    __tablename__ = "run_workers"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # [{"name": distribution, "version": ..., "modules": [top-level modules]}]
    extensions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class HandledEvent(HandledEventColumns, Base):
    """An event of dashboard's that experiment has applied: applying it again would change
    nothing."""

    __tablename__ = "experiment_handled_events"


class FeedOutboxEntry(Base):
    """An entry for an org's activity feed (dashboard's), written in the transaction of the
    change it tells of and kept until dashboard has taken it (feed_outbox.py)."""

    __tablename__ = "feed_outbox"
    __table_args__ = (Index("ix_feed_outbox_order", "created_at", "id"),)

    # Dashboard keeps it with the entry: a batch delivered twice adds nothing the second time.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(36))
    workspace_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_id: Mapped[str] = mapped_column(String(36))
    # Unbounded here: dashboard cuts and checks them, and a long title must not fail the write.
    kind: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outsider_summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    # With details, the org's audit log gets an entry of the same kind.
    audited: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Webhook(Base):
    """A workspace's subscription to some of its notifications: a signed webhook, or a Slack
    incoming webhook. Its secrets (the signing secret, a Slack URL) are kept sealed."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    # The names its links to runs are made of (dashboard's: kept as they were when the webhook
    # was made or last changed; a renamed org's old name redirects).
    org_name: Mapped[str] = mapped_column(Text, default="")
    workspace_name: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10))  # "webhook", "slack" or "email"
    # What answers show of the target: a webhook's URL whole, a Slack URL cut to its host.
    url: Mapped[str] = mapped_column(Text)
    url_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)  # a Slack URL
    secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)  # "whsec_..."
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # An email notification's chosen members ({"id", "username"} each); None: the workspace's
    # members who opted in to notifications by mail.
    recipients: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One notification owed to one webhook, written in the transaction of the change it
    tells of; the workers send it, retrying on a schedule, until it is delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_listing", "webhook_id", "created_at", "id"),
                      Index("ix_webhook_deliveries_due", "status", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhooks.id", ondelete="CASCADE"))
    # The message's id (`webhook-id`): the same on every attempt, so receivers drop repeats.
    message_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the body's `data`
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Where in the retry schedule it is (a redelivery starts it again).
    retries: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Held by the worker sending it: another worker leaves it alone until this time.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookAttempt(Base):
    """One attempt at a delivery: the receiver's answer (or the error), and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    response_excerpt: Mapped[str] = mapped_column(Text, default="")


class Schedule(Base):
    """When an experiment runs by itself: once at a time, or by a cron expression in a time
    zone, with a manual run's options, acting as the person who made it (schedules.py)."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_fire_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "once" or "cron"
    cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    once_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The run's options: version (None: the latest), environment, dry, rollback_strategy.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    missed: Mapped[str] = mapped_column(String(10), default="skip")  # skip, run_once
    overlap: Mapped[str] = mapped_column(String(10), default="skip")  # skip, queue, abort
    # The next firing the scheduler owes (None: a one-off that fired, or nothing to come).
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(36))
    created_by_name: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScheduleFiring(Base):
    """What one firing of a schedule did: started a run, waits for the previous one (queue),
    or was skipped and why. Unique per schedule and fire time: however many schedulers see a
    firing due, one of them records it, in the transaction that queues its run."""

    __tablename__ = "schedule_firings"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_at"),
                      Index("ix_schedule_firings_listing", "schedule_id", "fire_at"),
                      Index("ix_schedule_firings_waiting", "outcome"),
                      # The hourly prune looks for the oldest, whatever their schedule.
                      Index("ix_schedule_firings_age", "fire_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(10))  # started, skipped, waiting
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RepositoryLink(Base):
    """A workspace's git repository: where its experiment files are, the credentials to
    fetch them (sealed), and the secret its push webhooks are signed with (sealed)."""

    __tablename__ = "repository_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36), unique=True)
    org_id: Mapped[str] = mapped_column(String(36))
    url: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(String(200))
    paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    credential: Mapped[str] = mapped_column(String(12), default="none")  # none, token, deploy_key
    credential_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    deploy_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret_sealed: Mapped[str] = mapped_column(Text)
    last_synced_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The ssh host keys ("ssh-ed25519 AAAA...", one a line) its first ssh fetch met: every
    # worker trusts these alone. None until then, after a URL change, or when forgotten.
    host_keys: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who linked it (or last changed it): webhook syncs and their runs act as them.
    created_by: Mapped[str] = mapped_column(String(36))
    created_by_name: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GitSync(Base):
    """One sync of a workspace with its repository: asked for (a person, or a push webhook),
    done by a worker, and what it found, changed and ran."""

    __tablename__ = "git_syncs"
    __table_args__ = (Index("ix_git_syncs_listing", "workspace_id", "created_at", "id"),
                      Index("ix_git_syncs_status", "status", "created_at"),
                      UniqueConstraint("link_id", "delivery_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(String(36))
    org_id: Mapped[str] = mapped_column(String(36))
    link_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(12))  # queued, running, succeeded, failed
    trigger: Mapped[str] = mapped_column(String(10))  # "manual" or "webhook"
    run_changed: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(36))
    requested_by_name: Mapped[str] = mapped_column(Text, default="")
    # A webhook's delivery id and the head it pushed: the same push twice syncs once.
    delivery_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pushed_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    from_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # files_seen, created, updated, removed, restored, invalid, runs (git_sync_views.SyncResult)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Who holds the lease (a token of each taking): a worker that lost it writes nothing; and
    # how many times it was taken (one taken too often without ending is failed).
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
