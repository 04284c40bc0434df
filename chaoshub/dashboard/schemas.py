"""The plain data the dashboard service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from chaoshub.core.schemas import Frozen

Visibility = Literal["private", "internal", "public"]
# What people outside the org see of a workspace's executions.
OutsiderExecutions = Literal["none", "status", "full"]
Role = Literal["owner", "maintainer", "member", "viewer"]
Action = Literal[
    "read", "write", "run", "list_members", "manage_members", "manage_workspace_members",
    "change_settings", "delete_org", "manage_environments", "manage_webhooks",
    "engage_kill_switch", "release_kill_switch",
]
# Python modules no policy lets an experiment call: they run commands, load code or reach the
# worker's own files and network (chaoslib's own providers would run a process or a shell).
DENIED_MODULES = ("os", "subprocess", "builtins", "importlib", "pickle", "marshal", "shutil",
                  "socket", "sys", "ctypes", "multiprocessing", "pty", "posix", "runpy",
                  "code", "chaoshub", "chaoslib", "chaostoolkit")
# Programs a process activity may never name unless a policy lists them: shells, interpreters
# and the programs that run another program or a command of their own.
SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "env",
          "xargs", "python", "python3", "perl", "ruby", "node", "php", "lua", "tclsh", "su",
          "sudo", "doas", "awk", "gawk", "mawk", "nawk", "sed", "find", "timeout", "nice",
          "nohup", "stdbuf", "setsid", "chroot", "flock", "watch", "script", "strace", "ltrace",
          "gdb", "time", "make", "git", "ssh", "scp", "rsync", "tar", "zip", "vi", "vim", "ex",
          "ed", "less", "more", "man", "socat", "nc", "ncat", "expect", "parallel", "run-parts",
          "start-stop-daemon", "unshare", "nsenter", "ionice", "chrt", "taskset", "runuser",
          "prlimit", "setpriv", "setarch", "linux32", "linux64", "x86_64", "i386", "aarch64",
          "choom", "runcon", "sg", "newgrp", "pkexec", "capsh", "unbuffer", "systemd-run",
          "at", "batch", "crontab", "dpkg", "apt", "apt-get", "npm", "npx", "gem", "cpan",
          "cargo", "go", "java", "jshell", "Rscript", "julia", "gcc", "cc", "tcc", "cmake",
          "ninja", "ld.so", "wish", "sqlite3", "psql", "redis-cli", "mysql", "docker",
          "kubectl-exec", "chaos", "chaoshub", "gunicorn", "rq", "flask")
# Name prefixes and endings of programs in the same families: interpreters with their
# versions (python3.12, perl5.36-x86_64-linux-gnu), loaders (ld-linux-x86-64.so.2), package
# installers (pip3.12) and shells of every kind (rbash, yash).
SHELL_PREFIXES = ("python", "perl", "ruby", "node", "php", "lua", "pip", "pydoc", "ld-", "ld.",
                  "tclsh", "jython", "pypy", "bash", "zsh", "ksh")
SHELL_SUFFIXES = ("sh",)
# Where the programs of a default policy live: folders a run cannot write to, so that no run
# runs a file an earlier activity downloaded.
SYSTEM_PROGRAMS = ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin")


class WorkspaceRef(Frozen):
    """A workspace and its org, as other services refer to them."""

    id: str
    name: str
    visibility: Visibility
    org_id: str
    org_name: str
    outsider_executions: OutsiderExecutions = "none"


class WorkspaceView(WorkspaceRef):
    """A workspace as its reader sees it: with the role that counts for the reader there (the
    higher of their org and workspace roles) and what they may do there."""

    role: Role | None = None
    allowed: list[Action] = []


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# "HH:MM" on a 24-hour clock; "24:00" ends a window at midnight.
CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
# Files of the zone database that are no zone of their own but the host's (or its default
# rules): a schedule or window in them would differ between the hub's machines.
HOST_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def zone_problem(name: object) -> str | None:
    """Why `name` is no IANA time zone (None when it is one)."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")) \
            or ".." in name or name in HOST_ZONES:
        return "name an IANA time zone, such as Europe/Paris or UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"{name} is no IANA time zone (such as Europe/Paris or UTC)"
    return None


class AllowedWindow(Frozen):
    """When runs may start: on these days, from `start` to `end` in the policy's time zone; a
    window whose end comes before its start runs overnight, into the next day."""

    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=CLOCK_TIME, description="HH:MM, 24-hour clock")
    end: str = Field(pattern=CLOCK_TIME, description="HH:MM, 24-hour clock (24:00: midnight)")

    @model_validator(mode="after")
    def _not_empty(self) -> AllowedWindow:
        if self.start == "24:00":
            raise ValueError("a window starts at 23:59 at the latest")
        if self.start == self.end:
            raise ValueError("a window ends at another time than it starts")
        return self


class RunPolicy(Frozen):
    """What runs of a workspace's experiments may do, checked when a run is asked for and again
    by the worker before it starts. The defaults run process and http activities and the
    python modules of the Chaos Toolkit extensions the workers have, and nothing that runs a
    shell."""

    provider_types: list[Literal["process", "http", "python"]] = ["process", "http", "python"]
    # Prefixes of the python modules activities and controls may name (DENIED_MODULES never);
    # empty: the modules of the Chaos Toolkit extensions the workers have.
    python_modules: list[str] = []
    # Absolute paths of the programs process activities may run; empty: the system's programs
    # (SYSTEM_PROGRAMS) but shells, interpreters and the programs that run others (SHELLS).
    process_paths: list[str] = []
    # Hosts http activities may call; empty: any but link-local addresses (cloud metadata).
    http_hosts: list[str] = []
    max_duration_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    max_concurrent_runs: int = Field(3, ge=1, le=100)
    dry_run_first: bool = False  # a dry run must pass before a new version's first real run
    allow_runtime_python: bool = False
    allow_vault: bool = False
    # Where its runs execute: "local", a child process of a worker; "kubernetes", a Job of
    # its own (only where the hub's RUN_EXECUTOR allows Jobs).
    executor: Literal["local", "kubernetes"] = "local"
    # When runs may start (hub runs asked for, and schedules' firings); empty: at any time.
    allowed_windows: list[AllowedWindow] = Field([], max_length=50)
    windows_time_zone: str = Field("UTC", description="The IANA time zone of the windows.")

    @field_validator("windows_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        problem = zone_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class KillSwitch(Frozen):
    """An org's emergency stop: while engaged, its runs are aborted and no new one starts."""

    engaged: bool = False
    reason: str = ""
    changed_by_name: str = ""
    changed_at: datetime | None = None


class WorkspaceGrant(WorkspaceView):
    """What one caller may do in one workspace, worked out by dashboard once per request: the
    service that owns the data decides from `allows`, never from role names."""

    # What the caller sees of the workspace's executions: all of them as a member, else what
    # the workspace shows outsiders.
    executions: OutsiderExecutions = "none"
    # Where a signed-in session may move this workspace's experiments (its page offers them).
    move_to: list[WorkspaceRef] = []
    # What runs there may do, and the org's emergency stop.
    run_policy: RunPolicy = RunPolicy()
    kill_switch: KillSwitch = KillSwitch()

    def allows(self, action: Action) -> bool:
        """True when the caller may `action` in this workspace."""
        return action in self.allowed


class OrgView(Frozen):
    """An org with the workspaces the reader may see, and the reader's role in it."""

    id: str
    name: str
    personal: bool
    role: Role | None
    workspaces: list[WorkspaceRef]
    display_name: str = ""
    description: str = ""
    url: str | None = None
    email: str | None = None
    former_names: list[str] = []
    allowed: list[Action] = []


class MemberView(Frozen):
    """One member of an org and their role."""

    account_id: str
    username: str
    display_name: str
    role: Role
    joined_at: datetime


class WorkspaceMemberView(Frozen):
    """Someone given a role in one workspace, beside their role in its org (None: not in it)."""

    account_id: str
    username: str
    display_name: str
    role: Role
    org_role: Role | None = None
    added_at: datetime


class InvitationView(Frozen):
    """A pending (or answered) invitation into an org."""

    id: str
    org_id: str
    org_name: str
    role: Role
    kind: Literal["user", "link"]
    invitee: str | None = None  # the username, for an invitation to one account
    invited_by: str
    state: Literal["pending", "accepted", "declined", "revoked"]
    created_at: datetime
    expires_at: datetime


class NewInvitation(Frozen):
    """A new invitation, with the link's secret for a link invitation: shown this once."""

    invitation: InvitationView
    token: str | None = None


class FeedEntry(Frozen):
    """One entry of an activity feed."""

    id: int
    org_id: str
    org_name: str
    workspace_id: str | None = None
    workspace_name: str | None = None
    actor_id: str
    actor: str
    kind: str
    summary: str
    created_at: datetime
    # The summary without its actor's name in front ("" when it does not start with it).
    action: str = ""
    # The actor's page, for signed-in readers; the page of what the entry is about (the
    # experiment, the run, the member, else its workspace or org), as far as the reader sees.
    actor_url: str | None = None
    url: str | None = None


class NewActivity(Frozen):
    """An entry another service asks to add to an org's feed (record_activities), as its
    outbox keeps it: `id` makes a second delivery of it change nothing."""

    id: str
    org_id: str
    workspace_id: str | None = None
    actor_id: str
    kind: str
    summary: str
    scope: str | None = None
    outsider_summary: str | None = None
    # With details, the org's audit log gets an entry of the same kind.
    audited: dict[str, Any] | None = None
    subject: str | None = None
    created_at: datetime


class ActivityPage(Frozen):
    """A page of a feed, newest first, and the cursor of the next page (None: no more)."""

    entries: list[FeedEntry]
    next_cursor: str | None = None


class AuditView(Frozen):
    """One entry of an org's audit log, with the hashes that chain it."""

    id: int
    org_id: str
    actor_id: str
    actor: str
    event: str
    details: dict
    created_at: datetime
    prev_hash: str
    hash: str


class ChainBreak(Frozen):
    """The first entry of an org's audit chain that does not hold together."""

    org_id: str
    org_name: str | None
    entry_id: int
    reason: str


class SearchHit(Frozen):
    """A user, org or workspace whose name starts with what was searched."""

    kind: Literal["user", "org", "workspace"]
    name: str
    url: str
    detail: str = ""


class SearchResults(Frozen):
    """What a search found, by kind."""

    users: list[SearchHit] = []
    orgs: list[SearchHit] = []
    workspaces: list[SearchHit] = []


class WorkspaceSight(Frozen):
    """A workspace the caller may see, and what they see of its executions (as in a grant)."""

    id: str
    org_name: str
    name: str
    visibility: Visibility
    executions: OutsiderExecutions


class AuditPage(Frozen):
    """A page of an org's audit log, oldest first, and the cursor of the next page."""

    entries: list[AuditView]
    next_cursor: str | None = None


class MemberPage(Frozen):
    """A page of an org's members, owners first, and the cursor of the next page."""

    members: list[MemberView]
    next_cursor: str | None = None


class InvitationPage(Frozen):
    """A page of pending invitations, newest first, and the cursor of the next page."""

    invitations: list[InvitationView]
    next_cursor: str | None = None


class WorkspaceMemberPage(Frozen):
    """A page of the people given a role in a workspace, and the cursor of the next page."""

    members: list[WorkspaceMemberView]
    next_cursor: str | None = None
