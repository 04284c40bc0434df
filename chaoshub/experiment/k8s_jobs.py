"""A run as a Kubernetes Job: the manifests one run needs, and a small client of the Kubernetes
API that creates, watches and deletes them (RUN_EXECUTOR=kubernetes).

The second executor beside child.py, behind the same call: `JobExecutor.supervise(spec,
on_events, should_stop)` returns a `ChildOutcome`. The run's pod is the child: one Job per run
(`backoffLimit: 0`: an experiment is never retried behind anyone's back), its deadline is the
Job's `activeDeadlineSeconds`, its rollback grace the pod's `terminationGracePeriodSeconds`
(Kubernetes sends SIGTERM, waits that long, then SIGKILL: what child.py does to a process group),
and an abort deletes the Job (in the foreground: the Job is there until its pod has ended, its
rollbacks played and its journal sent). The experiment goes in a ConfigMap, the run's values,
secrets and reporting token in a Secret; both are owned by the Job, so that deleting it, or its
time to live running out, deletes them too.

Results come back through the hub control (client/chaoshub_client/control.py), which `chaos run`
loads from the settings file in the ConfigMap and which reports into the run named by
CHAOSHUB_RUN_ID with the run's own token (auth.mint_run_token: the run's starter, its workspace,
reporting scopes only, revoked when the run ends): events as they happen, then the journal. So
the outcome this executor returns carries no journal and `on_events` is never called: the hub
gets both from the pod directly, and the run is finished by the time its Job ends
(experiment/job_runs.py settles the rest).

The client speaks the REST API with `requests`, as the pod's service account (its token and CA
from the files Kubernetes mounts); it needs the Role in k8s/job-runs/ and nothing else.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import requests

from chaoshub.experiment.child import ChildOutcome, ChildSpec

SERVICE_ACCOUNT_FOLDER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
RUN_LABEL = "chaoshub.io/run"
RUN_USER = 10001  # the image's user (Dockerfile)
POLL_SECONDS = 1.0
LOG_TAIL_LINES = 200
ABORT_NOW_GRACE = 5  # seconds: "abort-now" gives chaoslib time to write its journal, no more
# Where the pod finds its inputs and may write: its root filesystem is read-only.
EXPERIMENT_DIR = "/run/chaoshub/experiment"
VALUES_DIR = "/run/chaoshub/values"
WORK_DIR = "/work"
TMP_DIR = "/tmp"  # noqa: S108 (an emptyDir of the pod's own)
# The chaos settings file the run reads: the hub control, and nothing of anyone's own.
CHAOS_SETTINGS = "controls:\n  chaoshub:\n    provider:\n      type: python\n" \
                 "      module: chaoshub_client.control\n"
JOB_STATES = ("active", "succeeded", "failed", "gone")


JobState = Literal["active", "succeeded", "failed", "gone"]


class KubernetesError(RuntimeError):
    """The Kubernetes API refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class JobSettings:
    """Where and how runs' Jobs run: from the RUN_JOB_* settings."""

    namespace: str
    image: str
    hub_url: str
    service_account: str = "chaoshub-run"
    ttl_seconds: int = 3600
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "100m", "memory": "256Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"cpu": "1", "memory": "1Gi"})

    @classmethod
    def from_config(cls, config: dict[str, Any], namespace: str) -> JobSettings:
        """The settings of a hub; `namespace` when RUN_JOB_NAMESPACE is unset."""
        return cls(namespace=config.get("RUN_JOB_NAMESPACE") or namespace,
                   image=config["RUN_JOB_IMAGE"], hub_url=config["RUN_JOB_HUB_URL"],
                   service_account=config["RUN_JOB_SERVICE_ACCOUNT"],
                   ttl_seconds=config["RUN_JOB_TTL_SECONDS"])


@dataclass(frozen=True)
class RunReporting:
    """What the run's control needs to report into the run: which run, where, and as whom."""

    run_id: str
    org: str
    workspace: str
    token: str  # the run's own (auth.mint_run_token), revoked when the run ends

    def __repr__(self) -> str:
        # The token stays out of logs and tracebacks.
        return f"RunReporting(run_id={self.run_id!r}, org={self.org!r}, " \
               f"workspace={self.workspace!r})"


@dataclass(frozen=True)
class RunManifests:
    """The three objects of one run: its Job, and the ConfigMap and Secret it mounts."""

    job: dict[str, Any]
    config_map: dict[str, Any]
    secret: dict[str, Any]


def job_name(run_id: str) -> str:
    """The name of a run's Job, ConfigMap and Secret: a DNS label made of the run id."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", run_id.lower()).strip("-")
    if not cleaned:
        raise ValueError(f"a run id makes no Kubernetes name: {run_id!r}")
    # A Job's pods add 6 characters to its name, which must stay a 63-character label.
    return f"chaoshub-run-{cleaned}"[:57].rstrip("-")


def render_run(spec: ChildSpec, reporting: RunReporting, settings: JobSettings) -> RunManifests:
    """The Job, ConfigMap and Secret that run `spec` in the cluster, reporting to the hub."""
    name = job_name(reporting.run_id)
    labels = {"app.kubernetes.io/name": "chaoshub", "app.kubernetes.io/component": "run",
              "app.kubernetes.io/part-of": "chaoshub", RUN_LABEL: reporting.run_id}
    metadata = {"name": name, "namespace": settings.namespace, "labels": labels}
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(metadata), "immutable": True,
        "data": {"experiment.json": json.dumps(spec.experiment, ensure_ascii=False),
                 "settings.yaml": CHAOS_SETTINGS},
    }
    # The run's own variables are secrets as far as the hub knows: each is a key of the Secret.
    variables = _run_variables(spec.environment)
    secret = {
        "apiVersion": "v1", "kind": "Secret", "metadata": dict(metadata), "type": "Opaque",
        "immutable": True,
        "stringData": {
            "vars.json": json.dumps({"configuration": spec.configuration,
                                     "secrets": spec.secrets}, ensure_ascii=False),
            "hub-token": reporting.token,
            **{f"env.{variable}": value for variable, value in variables.items()},
        },
    }
    grace = math.ceil(spec.grace)
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": dict(metadata),
        "spec": {
            "backoffLimit": 0,
            # Kubernetes then stops the pod as the hub stops a child: SIGTERM, the grace, SIGKILL.
            "activeDeadlineSeconds": max(1, math.ceil(spec.deadline)),
            "ttlSecondsAfterFinished": settings.ttl_seconds,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.service_account,
                    # The experiment talks to the cluster only with credentials the run was given.
                    "automountServiceAccountToken": False,
                    # Service links would hand the pod every Service's address as variables.
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": grace,
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": RUN_USER, "runAsGroup": RUN_USER,
                        "fsGroup": RUN_USER, "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "chaos",
                        "image": settings.image,
                        "command": _command(spec),
                        "workingDir": WORK_DIR,
                        "env": _environment(reporting, settings, name, variables),
                        "resources": {"requests": dict(settings.requests),
                                      "limits": dict(settings.limits)},
                        "securityContext": {
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "privileged": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [
                            {"name": "experiment", "mountPath": EXPERIMENT_DIR, "readOnly": True},
                            {"name": "values", "mountPath": VALUES_DIR, "readOnly": True},
                            {"name": "work", "mountPath": WORK_DIR},
                            {"name": "tmp", "mountPath": TMP_DIR},
                        ],
                    }],
                    "volumes": [
                        {"name": "experiment", "configMap": {"name": name, "items": [
                            {"key": "experiment.json", "path": "experiment.json"},
                            {"key": "settings.yaml", "path": "settings.yaml"}]}},
                        {"name": "values", "secret": {
                            "secretName": name, "defaultMode": 0o400,
                            "items": [{"key": "vars.json", "path": "vars.json"}]}},
                        {"name": "work", "emptyDir": {"sizeLimit": "256Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
    return RunManifests(job=job, config_map=config_map, secret=secret)


def owned_by(manifest: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """`manifest` owned by the created `job`: deleting the Job deletes it too."""
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
             "uid": job["metadata"]["uid"], "blockOwnerDeletion": False}
    return {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [owner]}}


def _command(spec: ChildSpec) -> list[str]:
    command = ["chaos", "--no-version-check", "--log-file", f"{WORK_DIR}/chaostoolkit.log",
               "--settings", f"{EXPERIMENT_DIR}/settings.yaml", "run",
               "--journal-path", f"{WORK_DIR}/journal.json"]
    if spec.dry:
        command += ["--dry", spec.dry]
    if spec.rollback_strategy:
        command += ["--rollback-strategy", spec.rollback_strategy]
    if spec.configuration or spec.secrets:
        command += ["--var-file", f"{VALUES_DIR}/vars.json"]
    return [*command, f"{EXPERIMENT_DIR}/experiment.json"]


def _base_environment(reporting: RunReporting, settings: JobSettings) -> dict[str, str]:
    return {"HOME": TMP_DIR, "TMPDIR": TMP_DIR, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "CHAOSHUB_URL": settings.hub_url,
            "CHAOSHUB_ORG": reporting.org, "CHAOSHUB_WORKSPACE": reporting.workspace,
            "CHAOSHUB_RUN_ID": reporting.run_id, "CHAOSHUB_SPOOL_DIR": f"{TMP_DIR}/spool"}


def _run_variables(environment: dict[str, str]) -> dict[str, str]:
    # As child_environment: the run's variables may not redirect where the CLI looks for
    # programs, files or the hub.
    reserved = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE",
                "CHAOSHUB_TOKEN"}
    return {k: v for k, v in environment.items()
            if k not in reserved and not k.startswith(("CHAOSHUB_", "PYTHON"))
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)}


def _environment(reporting: RunReporting, settings: JobSettings, secret: str,
                 variables: dict[str, str]) -> list[dict[str, Any]]:
    def from_secret(variable: str, key: str) -> dict[str, Any]:
        return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    env = [{"name": k, "value": v} for k, v in _base_environment(reporting, settings).items()]
    env.append(from_secret("CHAOSHUB_TOKEN", "hub-token"))
    env += [from_secret(variable, f"env.{variable}") for variable in sorted(variables)]
    return env


# The client ----------------------------------------------------------------------------------


class KubernetesAPI:
    """The few calls of the Kubernetes REST API a run needs, in one namespace."""

    def __init__(self, base_url: str, namespace: str, token_path: Path | None = None,
                 token: str | None = None, verify: str | bool = True,
                 timeout: tuple[float, float] = (3.05, 15)):
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self.token_path = token_path
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json",
                                     "User-Agent": "chaoshub-worker"})

    @classmethod
    def in_cluster(cls, folder: Path = SERVICE_ACCOUNT_FOLDER,
                   environ: dict[str, str] | None = None) -> KubernetesAPI:
        """The API server of the cluster this pod runs in, as its service account."""
        environ = os.environ if environ is None else environ
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get(
            "KUBERNETES_SERVICE_PORT", "443")
        if not host or not (folder / "token").is_file():
            raise KubernetesError("not in a Kubernetes pod with a service account token "
                                  "(KUBERNETES_SERVICE_HOST, " f"{folder}/token)")
        host = f"[{host}]" if ":" in host else host
        namespace = (folder / "namespace").read_text().strip()
        return cls(f"https://{host}:{port}", namespace, token_path=folder / "token",
                   verify=str(folder / "ca.crt"))

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a Job, ConfigMap or Secret; the object the API made (with its uid)."""
        return self._call("POST", self._collection(manifest["kind"]), body=manifest).json()

    def job_state(self, name: str) -> tuple[JobState, dict[str, Any]]:
        """A Job's state ("active" until it ends, "gone" once deleted) and its status."""
        response = self._call("GET", f"{self._collection('Job')}/{quote(name)}", missing=True)
        if response is None:
            return "gone", {}
        status = response.json().get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []
                      if c.get("status") == "True"}
        if "Complete" in conditions or (status.get("succeeded") or 0) > 0:
            return "succeeded", status
        if "Failed" in conditions or (status.get("failed") or 0) > 0:
            return "failed", status
        return "active", status

    def delete_job(self, name: str, grace_seconds: int | None = None) -> bool:
        """Delete a Job with its pods (SIGTERM, then the grace period) and whatever it owns;
        False when it was gone already. In the foreground: the Job is there until its pods
        have ended, so that whoever watches it knows when the run is really over."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                                "propagationPolicy": "Foreground"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        response = self._call("DELETE", f"{self._collection('Job')}/{quote(name)}", body=body,
                              params={"propagationPolicy": "Foreground"}, missing=True)
        return response is not None

    def job_log(self, name: str, tail_lines: int = LOG_TAIL_LINES) -> str:
        """The end of the log of the Job's pod; "" when it has none (yet)."""
        pods = self._call("GET", f"/api/v1/namespaces/{quote(self.namespace)}/pods",
                          params={"labelSelector": f"job-name={name}"}).json()
        items = sorted(pods.get("items") or [],
                       key=lambda pod: pod.get("metadata", {}).get("creationTimestamp") or "")
        if not items:
            return ""
        pod = items[-1]["metadata"]["name"]
        response = self._call("GET", f"/api/v1/namespaces/{quote(self.namespace)}/pods/"
                              f"{quote(pod)}/log", params={"tailLines": str(tail_lines)},
                              missing=True, accept="text/plain")
        return response.text if response is not None else ""

    def _collection(self, kind: str) -> str:
        namespace = quote(self.namespace)
        paths = {"Job": f"/apis/batch/v1/namespaces/{namespace}/jobs",
                 "ConfigMap": f"/api/v1/namespaces/{namespace}/configmaps",
                 "Secret": f"/api/v1/namespaces/{namespace}/secrets"}
        if kind not in paths:
            raise ValueError(f"runs make no {kind}")
        return paths[kind]

    def _call(self, method: str, path: str, body: Any = None, params: dict | None = None,
              missing: bool = False, accept: str = "application/json") -> Any:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": accept}
        try:
            response = self.session.request(method, self.base_url + path, json=body,
                                            params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise KubernetesError(f"{method} {path}: the API cannot be reached "
                                  f"({exc.__class__.__name__})") from exc
        if missing and response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                status = response.json()
            except ValueError:
                status = {}
            raise KubernetesError(
                f"{method} {path}: {response.status_code} {status.get('message') or ''}".strip(),
                response.status_code, status.get("reason") or "")
        return response

    def _token(self) -> str:
        # Projected tokens are rotated by the kubelet: read the file for every call.
        if self.token_path is not None:
            return self.token_path.read_text().strip()
        return self.token or ""


# The executor --------------------------------------------------------------------------------


class JobExecutor:
    """Runs a run as a Job, as child.supervise runs it as a process: same call, same outcome."""

    def __init__(self, api: KubernetesAPI, settings: JobSettings, reporting: RunReporting,
                 poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.api, self.settings, self.reporting = api, settings, reporting
        self.poll_seconds, self.clock, self.sleep = poll_seconds, clock, sleep

    def supervise(self, spec: ChildSpec, on_events: Callable[[list[dict[str, Any]]], None],
                  should_stop: Callable[[], str | None]) -> ChildOutcome:
        """Run `spec` as a Job until it ends, or `should_stop` asks ("abort": the pod gets its
        grace for rollbacks; "abort-now": a few seconds). `on_events` is not called: the pod's
        control sends its events to the hub itself."""
        manifests = render_run(spec, self.reporting, self.settings)
        name = manifests.job["metadata"]["name"]
        try:
            job = self.api.create(manifests.job)
            self.api.create(owned_by(manifests.config_map, job))
            self.api.create(owned_by(manifests.secret, job))
        except KubernetesError as exc:
            self._delete_quietly(name, 0)
            return ChildOutcome(None, None, "lost", 0, problem=f"the run's Job was not "
                                f"created: {exc}")
        state, ended_by, stop_by = "active", "exit", None
        wait_until = float("inf")
        while state == "active":
            self.sleep(self.poll_seconds)
            try:
                state, status = self.api.job_state(name)
            except KubernetesError:
                state = "active"  # the API is away for a moment: the Job goes on; ask again
                status = {}
            if state != "active" or self.clock() > wait_until:
                break
            if _deadline_exceeded(status):
                ended_by = "deadline"
            # Asked every round, even once stopping: that is what keeps the worker's lease.
            wanted = _asked(should_stop)
            if wanted in ("abort", "abort-now") and stop_by in (None, "abort") and \
                    wanted != stop_by:
                stop_by = wanted
                grace = math.ceil(spec.grace) if wanted == "abort" else ABORT_NOW_GRACE
                ended_by = "abort"
                self._delete_quietly(name, grace)
                # The pod needs its grace; after that the Job is over whatever the API says.
                wait_until = min(wait_until, self.clock() + grace + 10 * self.poll_seconds)
        if _deadline_exceeded(status):
            ended_by = "deadline"
        log_tail = self._log_quietly(name) if state != "gone" else ""
        if state == "gone" and stop_by is None:
            return ChildOutcome(None, None, "lost", 0, log_tail,
                                problem="the run's Job was deleted outside the hub")
        exit_code = 0 if state == "succeeded" else None if state in ("gone", "active") else 1
        return ChildOutcome(None, exit_code, ended_by, 0, log_tail,
                            problem=_failure(status) if state == "failed" else "")

    def _delete_quietly(self, name: str, grace: int) -> None:
        try:
            self.api.delete_job(name, grace)
        except KubernetesError:
            pass  # its deadline and time to live end it anyway

    def _log_quietly(self, name: str) -> str:
        try:
            return self.api.job_log(name)
        except KubernetesError:
            return ""


def cluster_api(config: dict[str, Any]) -> KubernetesAPI:
    """The Kubernetes API the worker creates runs' Jobs with: its own cluster's."""
    return KubernetesAPI.in_cluster()


def _failure(status: dict[str, Any]) -> str:
    """Why a failed Job failed, as its Failed condition says."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            said = ": ".join(str(part) for part in (condition.get("reason"),
                                                   condition.get("message")) if part)
            return f"the run's Job failed ({said[:500]})" if said else "the run's Job failed"
    return "the run's Job failed"


def _deadline_exceeded(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Failed" and c.get("reason") == "DeadlineExceeded"
               and c.get("status") == "True" for c in status.get("conditions") or [])


def _asked(should_stop: Callable[[], str | None]) -> str | None:
    try:
        return should_stop()
    except Exception:  # a lost connection to the database must not stop the run; ask again
        return None
