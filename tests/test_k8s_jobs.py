"""Runs as Kubernetes Jobs (chaoshub/experiment/k8s_jobs.py): the manifests a run renders,
validated offline as k8s/ is, and the client tested against a local stand-in of the Kubernetes
API (no cluster can run here): a small HTTP server on 127.0.0.1 that records each request and
answers as the API server would.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml

from chaoshub.core.config import ConfigError, load_settings
from chaoshub.experiment.child import ChildSpec
from chaoshub.experiment.k8s_jobs import (
    JobExecutor,
    JobSettings,
    KubernetesAPI,
    KubernetesError,
    RunReporting,
    job_name,
    owned_by,
    render_run,
)

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES_VERSION = "1.33"
RUN_ID = "0b5c4a52-2f7e-4c55-9d59-3a1f0e6c7d21"
TOKEN = "run-token-not-for-logs"  # noqa: S105
SECRET_VALUE = "s3cr3t-password-value"  # noqa: S105
EXPERIMENT = {"title": "t", "description": "d", "method": [
    {"type": "probe", "name": "p", "provider": {"type": "process", "path": "/bin/true"}}]}
SETTINGS = JobSettings(namespace="chaos", image="registry.example.com/chaoshub:1.2",
                       hub_url="https://hub.example.com")
REPORTING = RunReporting(run_id=RUN_ID, org="acme", workspace="platform", token=TOKEN)


def _spec(**changes) -> ChildSpec:
    values = {"experiment": EXPERIMENT, "deadline": 300, "grace": 45.5, "dry": None,
              "rollback_strategy": "always", "configuration": {"base_url": "http://svc"},
              "secrets": {"db": {"password": SECRET_VALUE}},
              "environment": {"API_KEY": SECRET_VALUE, "PATH": "/evil",
                              "CHAOSHUB_URL": "http://evil"}}
    return ChildSpec(**{**values, **changes})


# Rendering -------------------------------------------------------------------------------------


def test_a_runs_manifests_are_valid_for_kubernetes():
    manifests = render_run(_spec(), REPORTING, SETTINGS)
    job = {**manifests.job, "metadata": {**manifests.job["metadata"], "uid": "u-1"}}
    for manifest in (manifests.job, owned_by(manifests.config_map, job),
                     owned_by(manifests.secret, job)):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    broken = json.loads(json.dumps(manifests.job))
    broken["spec"]["backofLimit"] = broken["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_job_runs_once_within_the_deadline_and_gives_rollbacks_their_grace():
    job = render_run(_spec(), REPORTING, SETTINGS).job
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 300
    assert spec["ttlSecondsAfterFinished"] == SETTINGS.ttl_seconds
    assert pod["terminationGracePeriodSeconds"] >= 45.5
    assert pod["restartPolicy"] == "Never"
    assert job["metadata"]["namespace"] == "chaos"
    assert job["metadata"]["labels"]["chaoshub.io/run"] == RUN_ID


def test_the_runs_pod_is_restricted():
    pod = render_run(_spec(), REPORTING, SETTINGS).job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["serviceAccountName"] == SETTINGS.service_account
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    # Every place it writes is a volume of its own.
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/work", "/tmp"}
    assert container["workingDir"] in writable


def test_the_experiment_goes_in_the_configmap_and_the_values_in_the_secret():
    manifests = render_run(_spec(), REPORTING, SETTINGS)
    config_map, secret, job = manifests.config_map, manifests.secret, manifests.job
    assert json.loads(config_map["data"]["experiment.json"]) == EXPERIMENT
    # The hub control reports the run; no other control, notification or auth of anyone's.
    assert yaml.safe_load(config_map["data"]["settings.yaml"]) == {"controls": {"chaoshub": {
        "provider": {"type": "python", "module": "chaoshub_client.control"}}}}
    values = json.loads(secret["stringData"]["vars.json"])
    assert values == {"configuration": {"base_url": "http://svc"},
                      "secrets": {"db": {"password": SECRET_VALUE}}}
    assert secret["stringData"]["hub-token"] == TOKEN
    # Secret values and the token appear in the Secret only, never in the Job or the ConfigMap.
    for public in (config_map, job):
        text = json.dumps(public)
        assert SECRET_VALUE not in text and TOKEN not in text
    assert TOKEN not in repr(REPORTING)
    names = {config_map["metadata"]["name"], secret["metadata"]["name"]}
    volumes = job["spec"]["template"]["spec"]["volumes"]
    mounted = {v["configMap"]["name"] for v in volumes if "configMap" in v} | {
        v["secret"]["secretName"] for v in volumes if "secret" in v}
    assert mounted == names
    assert config_map["immutable"] is True and secret["immutable"] is True


def test_the_command_and_environment_follow_the_childs():
    container = render_run(_spec(dry="probes"), REPORTING, SETTINGS).job[
        "spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:2] == ["chaos", "--no-version-check"]
    assert command[command.index("--dry") + 1] == "probes"
    assert command[command.index("--rollback-strategy") + 1] == "always"
    assert command[command.index("--var-file") + 1].endswith("/vars.json")
    assert command[-1].endswith("/experiment.json")
    env = {v["name"]: v for v in container["env"]}
    assert env["CHAOSHUB_URL"]["value"] == SETTINGS.hub_url
    assert env["CHAOSHUB_RUN_ID"]["value"] == RUN_ID
    assert env["CHAOSHUB_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "hub-token"
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "env.API_KEY"
    # The run's own variables may not redirect the CLI or the hub it reports to.
    assert "PATH" not in env
    assert len([v for v in container["env"] if v["name"] == "CHAOSHUB_URL"]) == 1
    without_values = render_run(_spec(configuration={}, secrets={}), REPORTING, SETTINGS)
    assert "--var-file" not in without_values.job["spec"]["template"]["spec"][
        "containers"][0]["command"]


def test_job_names_are_dns_labels_short_enough_for_their_pods():
    for run_id in (RUN_ID, "A" * 80, "weird_id.with/chars"):
        name = job_name(run_id)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert len(name) + 6 <= 63
    with pytest.raises(ValueError):
        job_name("___")


def test_the_executor_settings_are_checked_at_start(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in ("RUN_EXECUTOR", "RUN_JOB_IMAGE", "RUN_JOB_HUB_URL"):
        monkeypatch.delenv(key, raising=False)
    assert load_settings({})["RUN_EXECUTOR"] == "local"
    with pytest.raises(ConfigError, match="RUN_EXECUTOR must be one of"):
        load_settings({"RUN_EXECUTOR": "docker"})
    with pytest.raises(ConfigError, match="RUN_JOB_IMAGE and RUN_JOB_HUB_URL"):
        load_settings({"RUN_EXECUTOR": "kubernetes"})
    settings = load_settings({"RUN_EXECUTOR": "Kubernetes", "RUN_JOB_IMAGE": "img",
                              "RUN_JOB_HUB_URL": "https://hub"})
    assert JobSettings.from_config(settings, "mine") == JobSettings(
        namespace="mine", image="img", hub_url="https://hub")


# The client, against a stand-in of the Kubernetes API ------------------------------------------


class KubernetesAPIStandIn:
    """A local stand-in of the Kubernetes API server, NOT a cluster: it records every request
    and answers the few calls a run makes as the API would (create -> 201 with a uid, GET Job ->
    its scripted status, DELETE -> 200 then 404)."""

    def __init__(self, statuses: list[dict], refuse: str | None = None):
        self.requests: list[dict] = []
        self.statuses = statuses  # the Job's status at each GET; the last one repeats
        self.refuse = refuse  # a collection that answers 403
        self.objects: dict[tuple[str, str], dict] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                stand_in.answer(self, "POST")

            def do_GET(self):
                stand_in.answer(self, "GET")

            def do_DELETE(self):
                stand_in.answer(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        self.requests.append({"method": method, "path": url.path, "query": parse_qs(url.query),
                              "body": body, "authorization": handler.headers["Authorization"]})
        match = re.fullmatch(r"/(?:api/v1|apis/batch/v1)/namespaces/([^/]+)/([a-z]+)"
                             r"(?:/([^/]+))?(?:/(log))?", url.path)
        if not match:
            return self.send(handler, 404, _status(404, "NotFound", "no such path"))
        _, collection, name, log = match.groups()
        if collection == self.refuse:
            return self.send(handler, 403, _status(403, "Forbidden", f"{collection} is "
                                                   "forbidden: the Role does not allow it"))
        if method == "POST":
            created = {**body, "metadata": {**body["metadata"], "uid": f"uid-{collection}"}}
            self.objects[(collection, body["metadata"]["name"])] = created
            return self.send(handler, 201, created)
        if collection == "pods" and log:
            return self.send(handler, 200, "chaos run: the experiment ended\n", "text/plain")
        if collection == "pods":
            job = parse_qs(url.query)["labelSelector"][0].removeprefix("job-name=")
            return self.send(handler, 200, {"kind": "PodList", "items": [
                {"metadata": {"name": f"{job}-abcde", "creationTimestamp": "2025-01-01T00:00:00Z"}}
            ]})
        if (collection, name) not in self.objects:
            return self.send(handler, 404, _status(404, "NotFound", f'jobs "{name}" not found'))
        if method == "DELETE":
            del self.objects[(collection, name)]
            return self.send(handler, 200, _status(200, "", "", "Success"))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return self.send(handler, 200, {**self.objects[(collection, name)], "status": status})

    @staticmethod
    def send(handler, code: int, body, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]


def _status(code: int, reason: str, message: str, status: str = "Failure") -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": status, "message": message,
            "reason": reason, "code": code}


ACTIVE = {"active": 1}
SUCCEEDED = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
FAILED = {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                       "reason": "BackoffLimitExceeded"}]}
DEADLINE = {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                         "reason": "DeadlineExceeded"}]}


@pytest.fixture
def stand_in():
    servers = []

    def start(statuses, refuse=None) -> KubernetesAPIStandIn:
        server = KubernetesAPIStandIn(statuses, refuse)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _executor(server: KubernetesAPIStandIn, token_path: Path | None = None) -> JobExecutor:
    api = KubernetesAPI(server.url, "chaos", token_path=token_path,
                        token=None if token_path else "worker-sa-token")
    return JobExecutor(api, SETTINGS, REPORTING, poll_seconds=0.01)


JOBS = "/apis/batch/v1/namespaces/chaos/jobs"
NAME = job_name(RUN_ID)


def test_a_run_as_a_job_is_created_watched_and_ends(stand_in):
    server = stand_in([ACTIVE, ACTIVE, SUCCEEDED])
    events = []
    outcome = _executor(server).supervise(_spec(), events.extend, lambda: None)
    assert (outcome.ended_by, outcome.exit_code, outcome.journal) == ("exit", 0, None)
    assert "the experiment ended" in outcome.log_tail
    assert events == []  # the pod's control sends them to the hub itself
    calls = server.calls()
    assert calls[:3] == [("POST", JOBS), ("POST", "/api/v1/namespaces/chaos/configmaps"),
                         ("POST", "/api/v1/namespaces/chaos/secrets")]
    assert calls.count(("GET", f"{JOBS}/{NAME}")) == 3
    assert calls[-2:] == [("GET", "/api/v1/namespaces/chaos/pods"),
                          ("GET", f"/api/v1/namespaces/chaos/pods/{NAME}-abcde/log")]
    assert all(r["authorization"] == "Bearer worker-sa-token" for r in server.requests)
    # The ConfigMap and Secret belong to the Job: they go when it goes.
    for request in server.requests[1:3]:
        (owner,) = request["body"]["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", NAME, "uid-jobs")
    assert server.requests[2]["body"]["stringData"]["hub-token"] == TOKEN
    assert not any(method == "DELETE" for method, _ in calls)  # its time to live deletes it


def test_an_abort_deletes_the_job_in_the_foreground_with_the_rollback_grace(stand_in):
    server = stand_in([ACTIVE])
    asked = iter([None, None, "abort"])
    outcome = _executor(server).supervise(_spec(), lambda _: None,
                                          lambda: next(asked, None))
    assert outcome.ended_by == "abort"
    (delete,) = [r for r in server.requests if r["method"] == "DELETE"]
    assert delete["path"] == f"{JOBS}/{NAME}"
    assert delete["query"]["propagationPolicy"] == ["Foreground"]
    assert delete["body"]["propagationPolicy"] == "Foreground"
    assert delete["body"]["gracePeriodSeconds"] == 46  # the rollback grace, rounded up
    # Deleted: the next look finds no Job, and the watch ends.
    assert server.calls()[-1] == ("GET", f"{JOBS}/{NAME}")


def test_an_abort_without_rollbacks_gives_the_pod_seconds_only(stand_in):
    server = stand_in([ACTIVE])
    outcome = _executor(server).supervise(_spec(), lambda _: None, lambda: "abort-now")
    assert outcome.ended_by == "abort"
    (delete,) = [r for r in server.requests if r["method"] == "DELETE"]
    assert delete["body"]["gracePeriodSeconds"] == 5


def test_a_job_past_its_deadline_ends_as_the_childs_deadline(stand_in):
    server = stand_in([ACTIVE, DEADLINE])
    outcome = _executor(server).supervise(_spec(), lambda _: None, lambda: None)
    assert (outcome.ended_by, outcome.exit_code) == ("deadline", 1)


def test_a_failed_job_ends_with_a_failing_exit_and_says_why(stand_in):
    server = stand_in([FAILED])
    outcome = _executor(server).supervise(_spec(), lambda _: None, lambda: None)
    assert (outcome.ended_by, outcome.exit_code) == ("exit", 1)
    assert outcome.problem == "the run's Job failed (BackoffLimitExceeded)"


def test_the_lease_is_kept_while_the_pod_stops_and_an_abort_may_turn_into_abort_now(stand_in):
    server = stand_in([ACTIVE] * 6 + [FAILED])
    asked = []
    wishes = iter(["abort", None, "abort", "abort-now", "abort-now"])

    def should_stop():
        asked.append(1)
        return next(wishes, None)

    executor = _executor(server)
    executor.api.delete_job = lambda name, grace: deletes.append(grace) or True
    deletes: list[int] = []
    outcome = executor.supervise(_spec(), lambda _: None, should_stop)
    assert outcome.ended_by == "abort"
    assert deletes == [46, 5]  # the rollback grace, then no more than a few seconds
    assert len(asked) == 6  # asked every round, stopping or not: the worker's lease lives


def test_a_refused_creation_is_a_lost_run_and_leaves_no_job(stand_in):
    server = stand_in([ACTIVE], refuse="secrets")
    outcome = _executor(server).supervise(_spec(), lambda _: None, lambda: None)
    assert outcome.ended_by == "lost"
    assert "403" in outcome.problem and "forbidden" in outcome.problem
    assert ("DELETE", f"{JOBS}/{NAME}") in server.calls()
    assert SECRET_VALUE not in outcome.problem and TOKEN not in outcome.problem


def test_a_job_deleted_behind_the_hubs_back_is_a_lost_run(stand_in):
    server = stand_in([ACTIVE])
    executor = _executor(server)
    seen = []

    def should_stop():
        if len(seen) == 1:
            server.objects.clear()  # someone ran kubectl delete job
        seen.append(1)
        return None

    outcome = executor.supervise(_spec(), lambda _: None, should_stop)
    assert outcome.ended_by == "lost" and "deleted outside the hub" in outcome.problem


def test_an_unreachable_api_is_a_clear_error():
    from tests.helpers import free_port

    api = KubernetesAPI(f"http://127.0.0.1:{free_port()}", "chaos", token="t")
    with pytest.raises(KubernetesError, match="cannot be reached"):
        api.job_state("x")


def test_in_cluster_reads_the_service_account_and_rereads_a_rotated_token(stand_in, tmp_path):
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "ca.crt").write_text("not a real CA")
    (tmp_path / "namespace").write_text("runs\n")
    api = KubernetesAPI.in_cluster(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                              "KUBERNETES_SERVICE_PORT": "6443"})
    assert (api.base_url, api.namespace, api.session.verify) == (
        "https://10.0.0.1:6443", "runs", str(tmp_path / "ca.crt"))
    with pytest.raises(KubernetesError, match="not in a Kubernetes pod"):
        KubernetesAPI.in_cluster(tmp_path, {})
    server = stand_in([ACTIVE])
    token = tmp_path / "token"
    api = KubernetesAPI(server.url, "chaos", token_path=token)
    api.job_state("a")
    token.write_text("second\n")
    api.job_state("a")
    assert [r["authorization"] for r in server.requests] == ["Bearer first", "Bearer second"]


def test_the_client_uses_only_what_the_role_in_k8s_grants(stand_in):
    role = next(doc for doc in yaml.safe_load_all((ROOT / "k8s/job-runs/rbac.yaml").read_text())
                if doc["kind"] == "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    server = stand_in([ACTIVE, ACTIVE, SUCCEEDED])
    _executor(server).supervise(_spec(), lambda _: None, lambda: None)
    aborted = stand_in([ACTIVE])
    _executor(aborted).supervise(_spec(), lambda _: None, lambda: "abort")
    used = set()
    for request in server.requests + aborted.requests:
        group = "batch" if request["path"].startswith("/apis/batch/") else ""
        parts = request["path"].split("/namespaces/chaos/")[1].split("/")
        resource = parts[0] + ("/log" if parts[-1] == "log" else "")
        verb = {"POST": "create", "DELETE": "delete"}.get(request["method"]) or (
            "get" if len(parts) > 1 else "list")
        used.add((group, resource, verb))
    assert used <= granted, used - granted
    assert ("batch", "jobs", "delete") in used and ("", "pods/log", "get") in used
