"""Settings from the environment (and a .env file), resolved once per app."""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

SERVICES = ("auth", "dashboard", "experiment")

DEFAULTS: dict[str, Any] = {
    "CHAOSHUB_ENV": "development",
    "CHAOSHUB_SERVICES": ",".join(SERVICES),
    "PUBLIC_URL": "",
    # Host names the hub answers to (Flask refuses others); unset: any, but absolute URLs are
    # then built from the Host header only when it is a loopback name (development).
    "TRUSTED_HOSTS": "",
    "REDIS_URL": "",
    "CACHE_TTL": 300,
    "CACHE_PREFIX": "chaoshub",
    # With Redis, each process keeps what it read for at most this many seconds (0: never), up
    # to CACHE_LOCAL_ITEMS entries; a change drops them in every process over Redis pub/sub.
    "CACHE_LOCAL_SECONDS": 5,
    "CACHE_LOCAL_ITEMS": 4096,
    "CLAIM_TTL": 60,
    "CLAIM_ISSUER": "chaoshub",
    "SESSION_LIFETIME_DAYS": 14,
    # The ceiling of any request body; each kind of body has its own limit below it.
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "EXPERIMENT_MAX_BYTES": 1024 * 1024,
    "EXECUTION_MAX_BYTES": 5 * 1024 * 1024,
    # Every other body (forms, settings, members, tokens): parsing costs ~20x its size in memory.
    "BODY_MAX_BYTES": 64 * 1024,
    "SERVICE_TIMEOUT": 10.0,
    # Seconds each call to a sign-in provider may take (connecting, then reading).
    "OAUTH_TIMEOUT_SECONDS": 5.0,
    # Seconds between two polls for other services' events (core/events.py); 0: no polling
    # thread, events then go only right after the commits of this process.
    "EVENTS_POLL_SECONDS": 2.0,
    # Experiment's feed entries go to dashboard from a thread of each process, at most this
    # often (seconds) after a commit, many in one transaction (experiment/feed_outbox.py); 0:
    # right after each answer is sent, no thread (what fails then waits for the next one).
    "FEED_DELIVERY_SECONDS": 0.2,
    "LOG_LEVEL": "INFO",
    # /metrics: unset, anyone reaching the process may read it (the Ingress sends it nowhere);
    # METRICS_TOKEN asks for `Authorization: Bearer <it>`, METRICS_ALLOW (CIDRs, comma-separated)
    # for a client address in one of them; both set, both are asked.
    "METRICS_TOKEN": "",
    "METRICS_ALLOW": "",
    # Log lines as "json" (one object a line) or readable "text"; unset: json in production.
    "CHAOSHUB_LOG_FORMAT": "",
    # Traces over OTLP/HTTP (e.g. http://otel-collector:4318); unset, none are made.
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_SERVICE_NAME": "",  # unset: chaoshub-<the services the process hosts>
    "TOKEN_DEFAULT_DAYS": 90,
    "TOKEN_MAX_DAYS": 365,
    "SIGNUP_OPEN": "true",
    "SIGNUP_ALLOWED_DOMAINS": "",
    "SIGNUP_LIMIT_PER_HOUR": 10,  # password sign-ups per client address
    # Trusted proxies in front of the process; unset means 0, except that a process hosting only
    # some services must say (they usually sit behind the router or an Ingress controller).
    "PROXY_HOPS": "",
    # "standard" (argon2id, RFC 9106 low-memory) or "fast" (test suites only; not in production).
    "PASSWORD_HASHING": "standard",
    # Runs on the hub: the longest a run may take, the time it gets for its rollbacks after
    # SIGTERM, and how long a worker's lease on a run lasts without renewal.
    "RUN_MAX_SECONDS": 3600,
    "RUN_GRACE_SECONDS": 60,
    "RUN_LEASE_SECONDS": 30,
    # How often each worker process looks for schedules' firings that are due; 0: never (a
    # process of its own, or none, fires them).
    "SCHEDULER_TICK_SECONDS": 5.0,
    # Live views of runs one process serves at once: each holds a server thread.
    "RUN_STREAMS_PER_PROCESS": 8,
    # The longest a request waits for a run to end (?wait=, at most 600): below the timeout
    # of the proxies in front of the hub.
    "RUN_WAIT_MAX_SECONDS": 600,
    # The RQ queue of runs; unset: "<CACHE_PREFIX>-runs", so that hubs sharing a Redis each
    # keep their own.
    "RUNS_QUEUE": "",
    # The keys that encrypt environments' secrets (AES-256-GCM): comma-separated URL-safe
    # base64 keys of 32 bytes, the first encrypting, every one decrypting (to rotate, put the
    # new key first). Required in production; in development one is made in the instance folder.
    "RUN_SECRETS_KEY": "",
    # Where runs execute: "local" (a supervised `chaos run` child of the worker) or "kubernetes"
    # (one Job per run, chaoshub/experiment/k8s_jobs.py). The Jobs go to RUN_JOB_NAMESPACE (unset:
    # the worker's own), run RUN_JOB_IMAGE (the hub's image has the Chaos Toolkit) as the service
    # account RUN_JOB_SERVICE_ACCOUNT, report to the hub at RUN_JOB_HUB_URL, and are deleted
    # RUN_JOB_TTL_SECONDS after they end.
    "RUN_EXECUTOR": "local",
    # A local run's child confines itself with Landlock: it reads the system and the hub's
    # Python, writes its own folder, and cannot see or signal other processes. "auto" confines
    # where the kernel allows it (Linux 5.13+) and warns where not; "landlock" refuses to run
    # otherwise; "off" never confines. RUN_SANDBOX_READ adds readable paths (colon-separated),
    # for tools an experiment calls that live elsewhere.
    "RUN_SANDBOX": "auto",
    "RUN_SANDBOX_READ": "",
    "RUN_JOB_NAMESPACE": "",
    "RUN_JOB_IMAGE": "",
    "RUN_JOB_SERVICE_ACCOUNT": "chaoshub-run",
    "RUN_JOB_HUB_URL": "",
    "RUN_JOB_TTL_SECONDS": 3600,
    # How many days the hub keeps executions' journals (the execution, its activities and its
    # outcome stay), hub runs' events and activity feed entries; 0 or empty: forever. Workers
    # remove what is older, audited in each org's log (never the audit log itself).
    "RETENTION_JOURNAL_DAYS": "",
    "RETENTION_RUN_EVENTS_DAYS": "",
    "RETENTION_ACTIVITY_DAYS": "",
    # Webhooks and Slack notifications (experiment/webhooks.py): targets on private, loopback,
    # link-local or CGNAT addresses are refused unless this is true (cloud metadata always is).
    "ALLOW_PRIVATE_TARGETS": "false",
    # The retry schedule's delays (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) are multiplied by
    # this: tests retry in milliseconds.
    "WEBHOOK_RETRY_SCALE": 1.0,
    # Seconds a receiver has to connect, then to answer.
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # How often a worker looks for deliveries that are due (seconds).
    "WEBHOOK_POLL_SECONDS": 1.0,
    # Experiments from git (experiment/git_sync.py): where each workspace's bare copy of its
    # repository is kept (unset: git-cache in the instance folder), how long one git command
    # may take, and how often a worker looks for syncs asked for (seconds).
    "GIT_CACHE_DIR": "",
    # file:// repository URLs (the worker's own disk: tests only): never implied by
    # ALLOW_PRIVATE_TARGETS.
    "GIT_ALLOW_FILE_URLS": "false",
    "GIT_TIMEOUT_SECONDS": 120.0,
    # The most bytes one fetch may write (its pack): a repository larger stops the sync.
    "GIT_FETCH_MAX_BYTES": 1024 * 1024 * 1024,
    "GIT_SYNC_POLL_SECONDS": 1.0,
    # How long a sync's worker holds it without renewing (it renews while it works); past it,
    # another worker takes the sync again.
    "GIT_SYNC_LEASE_SECONDS": 600,
    # Mail (address verification, password reset, notifications): off while SMTP_HOST is
    # empty. SMTP_SECURITY is starttls (port 587), ssl (implicit TLS, port 465) or none;
    # SMTP_PASSWORD is a secret, never logged. Messages wait in the sending service's mail
    # outbox and go from a thread of each process, at most MAIL_DELIVERY_SECONDS after the
    # commit that queued them (0: right after the answer is sent), retried for a day.
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_SECURITY": "starttls",
    "SMTP_TIMEOUT_SECONDS": 10.0,
    "MAIL_FROM": "",
    "MAIL_DELIVERY_SECONDS": 1.0,
}
SMTP_SECURITIES = ("starttls", "ssl", "none")
PASSWORD_HASHINGS = ("standard", "fast")
RUN_EXECUTORS = ("local", "kubernetes")
RUN_SANDBOXES = ("auto", "landlock", "off")
MAX_CLAIM_TTL = 300  # seconds: the longest-lived claim a verifier accepts

INT_SETTINGS = ("CACHE_TTL", "CACHE_LOCAL_SECONDS", "CACHE_LOCAL_ITEMS", "CLAIM_TTL",
                "SESSION_LIFETIME_DAYS", "MAX_CONTENT_LENGTH",
                "EXPERIMENT_MAX_BYTES", "EXECUTION_MAX_BYTES", "BODY_MAX_BYTES",
                "GIT_FETCH_MAX_BYTES",
                "TOKEN_DEFAULT_DAYS", "TOKEN_MAX_DAYS", "SIGNUP_LIMIT_PER_HOUR",
                "RUN_MAX_SECONDS", "RUN_GRACE_SECONDS", "RUN_LEASE_SECONDS",
                "GIT_SYNC_LEASE_SECONDS",
                "RUN_JOB_TTL_SECONDS", "RUN_STREAMS_PER_PROCESS", "RUN_WAIT_MAX_SECONDS",
                "SMTP_PORT")
FLOAT_SETTINGS = ("SERVICE_TIMEOUT", "EVENTS_POLL_SECONDS", "OAUTH_TIMEOUT_SECONDS",
                  "FEED_DELIVERY_SECONDS", "WEBHOOK_RETRY_SCALE", "WEBHOOK_TIMEOUT_SECONDS",
                  "WEBHOOK_POLL_SECONDS", "GIT_TIMEOUT_SECONDS", "GIT_SYNC_POLL_SECONDS",
                  "SMTP_TIMEOUT_SECONDS", "MAIL_DELIVERY_SECONDS",
                  "SCHEDULER_TICK_SECONDS")
RETENTION_SETTINGS = ("RETENTION_JOURNAL_DAYS", "RETENTION_RUN_EVENTS_DAYS",
                      "RETENTION_ACTIVITY_DAYS")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; raised before the app serves anything."""


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, .env, the environment and explicit overrides, in that order."""
    settings: dict[str, Any] = dict(DEFAULTS)
    settings.update({k: v for k, v in dotenv_values(".env").items() if v is not None})
    settings.update({k: v for k, v in os.environ.items() if _is_ours(k)})
    settings.update(overrides or {})

    for key in INT_SETTINGS:
        settings[key] = _number(int, key, settings[key])
    for key in FLOAT_SETTINGS:
        settings[key] = _number(float, key, settings[key])
    for key in RETENTION_SETTINGS:
        settings[key] = _days(key, settings[key])
    hops = settings["PROXY_HOPS"]
    settings["PROXY_HOPS"] = None if hops in ("", None) else _number(int, "PROXY_HOPS", hops)

    settings["CHAOSHUB_SERVICES"] = _hosted_services(settings["CHAOSHUB_SERVICES"])
    settings["SIGNUP_OPEN"] = str(settings["SIGNUP_OPEN"]).strip().lower() in ("1", "true", "yes")
    settings["ALLOW_PRIVATE_TARGETS"] = str(settings["ALLOW_PRIVATE_TARGETS"]).strip().lower() \
        in ("1", "true", "yes")
    settings["GIT_ALLOW_FILE_URLS"] = str(settings["GIT_ALLOW_FILE_URLS"]).strip().lower() \
        in ("1", "true", "yes")
    settings["RUNS_QUEUE"] = settings["RUNS_QUEUE"] or f"{settings['CACHE_PREFIX']}-runs"
    settings["RUN_EXECUTOR"] = str(settings["RUN_EXECUTOR"]).strip().lower()
    settings["RUN_SANDBOX"] = str(settings["RUN_SANDBOX"]).strip().lower()
    settings["SMTP_HOST"] = str(settings["SMTP_HOST"] or "").strip()
    settings["SMTP_SECURITY"] = str(settings["SMTP_SECURITY"]).strip().lower()
    settings["MAIL_FROM"] = str(settings["MAIL_FROM"] or "").strip()
    settings["CHAOSHUB_LOG_FORMAT"] = (str(settings["CHAOSHUB_LOG_FORMAT"]).strip().lower()
                                       or ("json" if is_production(settings) else "text"))
    settings["SIGNUP_ALLOWED_DOMAINS"] = frozenset(
        d.strip().lower() for d in str(settings["SIGNUP_ALLOWED_DOMAINS"]).split(",") if d.strip()
    )
    settings["PUBLIC_URL"] = str(settings["PUBLIC_URL"]).rstrip("/")
    settings["TRUSTED_HOSTS"] = _names(settings["TRUSTED_HOSTS"]) or None
    instance = Path(settings.get("CHAOSHUB_INSTANCE_PATH") or Path.cwd() / "instance")
    settings["CHAOSHUB_INSTANCE_PATH"] = str(instance.resolve())
    for service in SERVICES:
        key = f"{service.upper()}_DATABASE_URL"
        if not settings.get(key):
            settings[key] = f"sqlite:///{instance.resolve() / f'{service}.db'}"
        url_key = f"{service.upper()}_SERVICE_URL"
        settings[url_key] = str(settings.get(url_key) or "").rstrip("/")
    _check(settings)
    settings["PROXY_HOPS"] = settings["PROXY_HOPS"] or 0
    return settings


def is_production(settings: dict[str, Any]) -> bool:
    """True when the hub runs with production rules (no generated secrets)."""
    return str(settings.get("CHAOSHUB_ENV", "")).lower() == "production"


def instance_secret(settings: dict[str, Any], name: str) -> str:
    """A development secret kept in the instance folder, made on first use."""
    path = instance_file(settings["CHAOSHUB_INSTANCE_PATH"], name,
                         lambda: secrets.token_urlsafe(48))
    return path.read_text().strip()


def run_secrets_keys(settings: dict[str, Any]) -> list[str]:
    """The keys of RUN_SECRETS_KEY, first the one that encrypts; in development, one kept in
    the instance folder when it is unset. ConfigError in production when it is unset."""
    keys = [k.strip() for k in str(settings.get("RUN_SECRETS_KEY") or "").split(",") if k.strip()]
    if keys:
        return keys
    if is_production(settings):
        raise ConfigError("RUN_SECRETS_KEY is required in production to keep environments' "
                          "secrets (32 random bytes, URL-safe base64)")
    made = instance_file(settings["CHAOSHUB_INSTANCE_PATH"], "run-secrets.key",
                         lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    # Comma-separated too: a restored backup puts a hub's whole RUN_SECRETS_KEY there.
    return [k.strip() for k in made.read_text().split(",") if k.strip()]


def instance_file(instance_path: str, name: str, make: Callable[[], str]) -> Path:
    """A file of the instance folder, readable by its owner only, written by `make` on first use."""
    path = Path(instance_path) / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Workers that start together must all keep the same secret: the first link wins.
    handle, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")  # owner-only
    try:
        with os.fdopen(handle, "w") as out:
            out.write(make())
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)
    return path


def _is_ours(key: str) -> bool:
    return key in DEFAULTS or key in ("SECRET_KEY",) or key.startswith(
        ("CHAOSHUB_", "AUTH_", "DASHBOARD_", "EXPERIMENT_", "OIDC_", "GITHUB_", "GITLAB_",
         "GOOGLE_", "BITBUCKET_", "SIGNUP_")
    )


def _number(kind: type, key: str, value: Any) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number, got {value!r}") from exc


def _days(key: str, value: Any) -> int:
    if value is None or str(value).strip() == "":
        return 0  # kept forever
    try:
        days = int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{key} must be a whole number of days (0 or empty: keep forever), "
                          f"got {value!r}") from exc
    if days < 0:
        raise ConfigError(f"{key} must be 0 (keep forever) or more days, got {days}")
    return days


def _names(value: Any) -> list[str]:
    names = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    return [n.strip().lower() for n in names if n.strip()]


def _hosted_services(value: Any) -> tuple[str, ...]:
    hosted = tuple(_names(value))
    unknown = sorted(set(hosted) - set(SERVICES))
    if unknown or not hosted:
        raise ConfigError(f"CHAOSHUB_SERVICES names unknown services: {unknown or value!r}")
    return hosted


def _check(settings: dict[str, Any]) -> None:
    for service in SERVICES:
        if service not in settings["CHAOSHUB_SERVICES"] and not settings[
            f"{service.upper()}_SERVICE_URL"
        ]:
            raise ConfigError(
                f"the {service} service is not hosted here: set {service.upper()}_SERVICE_URL"
            )
    split = len(settings["CHAOSHUB_SERVICES"]) < len(SERVICES)
    if split and settings["PROXY_HOPS"] is None:
        # Behind the router or an Ingress every client would have the proxy's address (and share
        # its rate limits); reached directly, X-Forwarded-For must not be believed. Only the
        # operator knows which.
        raise ConfigError("a process hosting only some services needs PROXY_HOPS: 1 behind "
                          "`chaoshub route` or an Ingress controller, 0 when clients reach it "
                          "directly")
    if settings["EVENTS_POLL_SECONDS"] < 0:
        raise ConfigError("EVENTS_POLL_SECONDS must be 0 (no polling) or more")
    if settings["SCHEDULER_TICK_SECONDS"] < 0:
        raise ConfigError("SCHEDULER_TICK_SECONDS must be 0 (no scheduler here) or more")
    if settings["FEED_DELIVERY_SECONDS"] < 0:
        raise ConfigError("FEED_DELIVERY_SECONDS must be 0 (after each answer) or more")
    if not 0 < settings["CLAIM_TTL"] <= MAX_CLAIM_TTL:
        raise ConfigError(f"CLAIM_TTL must be between 1 and {MAX_CLAIM_TTL} seconds "
                          "(verifiers refuse more)")
    if settings["SMTP_SECURITY"] not in SMTP_SECURITIES:
        raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITIES)}")
    if settings["SMTP_HOST"] and not settings["MAIL_FROM"]:
        raise ConfigError("MAIL_FROM is required when SMTP_HOST is set (the sender of the "
                          "hub's mail, e.g. ChaosHub <chaoshub@example.com>)")
    if settings["MAIL_DELIVERY_SECONDS"] < 0:
        raise ConfigError("MAIL_DELIVERY_SECONDS must be 0 (after each answer) or more")
    if settings["RUN_SANDBOX"] not in RUN_SANDBOXES:
        raise ConfigError(f"RUN_SANDBOX must be one of {', '.join(RUN_SANDBOXES)}")
    if settings["CHAOSHUB_LOG_FORMAT"] not in ("json", "text"):
        raise ConfigError("CHAOSHUB_LOG_FORMAT must be json or text")
    if settings["OTEL_EXPORTER_OTLP_ENDPOINT"] and not str(
            settings["OTEL_EXPORTER_OTLP_ENDPOINT"]).startswith(("http://", "https://")):
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL")
    if any(not p.startswith("/") for p in str(settings["RUN_SANDBOX_READ"]).split(":") if p):
        raise ConfigError("RUN_SANDBOX_READ holds absolute paths only (a run starts elsewhere)")
    if settings["RUN_EXECUTOR"] not in RUN_EXECUTORS:
        raise ConfigError(f"RUN_EXECUTOR must be one of {', '.join(RUN_EXECUTORS)}")
    if settings["RUN_EXECUTOR"] == "kubernetes":
        missing = [k for k in ("RUN_JOB_IMAGE", "RUN_JOB_HUB_URL") if not settings[k]]
        if missing:
            raise ConfigError(f"RUN_EXECUTOR=kubernetes needs {' and '.join(missing)}")
    if settings["PASSWORD_HASHING"] not in PASSWORD_HASHINGS:
        raise ConfigError(f"PASSWORD_HASHING must be one of {', '.join(PASSWORD_HASHINGS)}")
    if is_production(settings):
        if settings["PASSWORD_HASHING"] != "standard":
            raise ConfigError("PASSWORD_HASHING=fast is for test suites, not production")
        if not settings.get("SECRET_KEY"):
            raise ConfigError("SECRET_KEY is required in production")
        if not settings["PUBLIC_URL"]:
            # Links in pages, API answers and sign-in callbacks must not come from a Host header.
            raise ConfigError("PUBLIC_URL is required in production (the address browsers use)")
        if split and not (settings.get("CHAOSHUB_SERVICE_KEY")
                          or settings.get("CHAOSHUB_SERVICE_KEY_FILE")):
            # Every replica of a service must sign with the key its Service publishes.
            raise ConfigError("CHAOSHUB_SERVICE_KEY or CHAOSHUB_SERVICE_KEY_FILE is required in "
                              "production when a process hosts only some services")
        if "auth" in settings["CHAOSHUB_SERVICES"] and not (
            settings.get("CHAOSHUB_SIGNING_KEY") or settings.get("CHAOSHUB_SIGNING_KEY_FILE")
        ):
            raise ConfigError(
                "CHAOSHUB_SIGNING_KEY or CHAOSHUB_SIGNING_KEY_FILE is required in production"
            )
