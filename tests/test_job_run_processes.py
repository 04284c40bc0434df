"""A hub run executed as a Kubernetes Job, end to end with real processes and NO cluster: the
worker (worker.execute, here in the test's process) creates the run's Job, ConfigMap and Secret
through a local stand-in of the Kubernetes API, which plays the pod: once the three exist it
starts a real `chaos run` from the client venv with the command, files and environment the Job
would give its container, reporting through the hub control to a real hub (`chaoshub run
--no-worker` on the test's databases). Deleting the Job SIGTERMs that process, and the Job is
gone once it has exited (foreground deletion)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from chaoshub.experiment import hub_runs, k8s_jobs, runs, worker
from chaoshub.experiment.k8s_jobs import KubernetesAPI
from tests.conftest import csrf, signed_up_client
from tests.helpers import BIN, clean_env, free_port, start, stop, wait_until_up
from tests.test_control import CLIENT
from tests.test_hub_worker import process, queued, runnable
from tests.test_k8s_jobs import KubernetesAPIStandIn, _status

pytestmark = [pytest.mark.workers,
              pytest.mark.skipif(not (CLIENT / "chaos").exists(),
                                 reason="needs the client venv's chaos (scripts/test makes it)")]

POLICY = "/api/v1/orgs/alice/workspaces/Personal/policy"
# Where the Job's container finds things, and what stands for each here.
MOUNTS = (k8s_jobs.EXPERIMENT_DIR, k8s_jobs.VALUES_DIR, k8s_jobs.WORK_DIR, k8s_jobs.TMP_DIR)


class PodStandIn(KubernetesAPIStandIn):
    """The stand-in of the Kubernetes API (NOT a cluster) that also plays the Job's pod: a real
    `chaos run` process given what the Job's container would get."""

    def __init__(self, root: Path):
        super().__init__([{"active": 1}])
        self.root = root
        self.pod: subprocess.Popen | None = None
        self.seen: dict[str, dict] = {}  # what the pod was given: its env, command and token
        self.signals: list[int] = []
        self.deleting = False

    def answer(self, handler, method: str) -> None:
        path = handler.path.split("?")[0]
        name = k8s_jobs.job_name(self.run_id) if hasattr(self, "run_id") else ""
        job = f"/apis/batch/v1/namespaces/chaos/jobs/{name}"
        if method == "POST" or "/pods" in path:
            super().answer(handler, method)
            if method == "POST" and path.endswith("/secrets"):
                self.start_pod()
            return
        if path != job or self.pod is None:
            return super().answer(handler, method)
        self.requests.append({"method": method, "path": path, "query": {}, "body": None,
                              "authorization": handler.headers["Authorization"]})
        if method == "DELETE":
            options = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
            assert options["propagationPolicy"] == "Foreground"
            self.delete(options.get("gracePeriodSeconds") or 30)
            return self.send(handler, 200, _status(200, "", "", "Success"))
        code = self.pod.poll()
        if code is not None and self.deleting:
            return self.send(handler, 404, _status(404, "NotFound", "the Job was deleted"))
        status = {"active": 1} if code is None else (
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            if code == 0 else
            {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                          "reason": "BackoffLimitExceeded"}]})
        return self.send(handler, 200, {**self.objects[("jobs", name)], "status": status})

    def start_pod(self) -> None:
        name = next(n for (kind, n) in self.objects if kind == "jobs")
        job = self.objects[("jobs", name)]
        config_map, secret = self.objects[("configmaps", name)], self.objects[("secrets", name)]
        self.run_id = job["metadata"]["labels"][k8s_jobs.RUN_LABEL]
        folders = {mount: self.root / Path(mount).name for mount in MOUNTS}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        spec = job["spec"]["template"]["spec"]
        for volume in spec["volumes"]:
            source = config_map["data"] if "configMap" in volume else \
                secret["stringData"] if "secret" in volume else None
            if source is None:
                continue
            mount = next(m["mountPath"] for m in spec["containers"][0]["volumeMounts"]
                         if m["name"] == volume["name"])
            items = (volume.get("configMap") or volume.get("secret"))["items"]
            for item in items:
                (folders[mount] / item["path"]).write_text(source[item["key"]])

        def here(value: str) -> str:
            for mount, folder in folders.items():
                if value == mount or value.startswith(mount + "/"):
                    return str(folder) + value[len(mount):]
            return value

        container = spec["containers"][0]
        env = {"PATH": "/usr/bin:/bin"}
        for variable in container["env"]:
            if "value" in variable:
                env[variable["name"]] = here(variable["value"])
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = secret["stringData"][ref["key"]]
        command = [str(CLIENT / "chaos"), *map(here, container["command"][1:])]
        self.seen = {"env": env, "command": command}
        self.pod = start(command, folders[k8s_jobs.WORK_DIR], env, self.root / "pod.log")

    def delete(self, grace: int) -> None:
        """As the kubelet does with a deleted pod: SIGTERM, the grace, then SIGKILL."""
        self.deleting = True
        pod = self.pod
        if pod.poll() is None:
            pod.send_signal(signal.SIGTERM)
            self.signals.append(signal.SIGTERM)

            def kill_after_grace():
                try:
                    pod.wait(grace)
                except subprocess.TimeoutExpired:
                    pod.kill()
                    self.signals.append(signal.SIGKILL)

            threading.Thread(target=kill_after_grace, daemon=True).start()

    def close(self) -> None:
        if self.pod is not None and self.pod.poll() is None:
            stop(self.pod)
        super().close()


@pytest.fixture
def hub(settings, tmp_path):
    """A real hub on the test's databases, without a worker of its own."""
    port = free_port()
    env = clean_env(**{k: str(v) for k, v in settings.items()
                       if k != "CHAOSHUB_INSTANCE_PATH"},
                    CHAOSHUB_INSTANCE_PATH=str(tmp_path / "hub"), LOG_LEVEL="INFO")
    log = tmp_path / "hub.log"
    server = start([str(BIN / "chaoshub"), "run", "--port", str(port), "--no-worker"], tmp_path,
                   env, log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/live", server, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


@pytest.fixture
def cluster(app, hub, tmp_path, monkeypatch):
    """The hub set for Jobs, its worker's Kubernetes API the stand-in, and alice's workspace
    running its experiments as Jobs."""
    stand_in = PodStandIn(tmp_path / "pod")
    app.config.update(RUN_EXECUTOR="kubernetes", RUN_JOB_IMAGE="chaoshub:test",
                      RUN_JOB_HUB_URL=hub, RUN_GRACE_SECONDS=30)
    monkeypatch.setattr(k8s_jobs, "cluster_api", lambda config: KubernetesAPI(
        stand_in.url, "chaos", token="worker-service-account"))
    alice = signed_up_client(app, "alice")
    saved = alice.put(POLICY, json={"executor": "kubernetes"},
                      headers={"X-CSRF-Token": csrf(alice)})
    assert saved.status_code == 200, saved.get_json()
    yield stand_in, alice
    stand_in.close()
    print((tmp_path / "pod" / "pod.log").read_text()[-3000:]
          if (tmp_path / "pod" / "pod.log").exists() else "no pod ran")


def refused_after(hub: str, stand_in: PodStandIn, run_id: str) -> int:
    token = stand_in.seen["env"]["CHAOSHUB_TOKEN"]
    return requests.get(f"{hub}/api/v1/runs/{run_id}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def test_a_run_executes_as_a_job_whose_pod_reports_into_it(app, hub, cluster):
    stand_in, alice = cluster
    run_id = queued(app, alice, runnable())
    with app.app_context():
        assert worker.execute(run_id, "test-worker") == "finished"
        row = runs.load_run(run_id)
        events = runs.load_events(run_id)
    # The pod got the run to report into and a token of its own, and did.
    env = stand_in.seen["env"]
    assert (env["CHAOSHUB_RUN_ID"], env["CHAOSHUB_URL"]) == (run_id, hub)
    assert env["CHAOSHUB_TOKEN"].startswith("chub_")
    assert stand_in.pod.returncode == 0 and stand_in.signals == []
    assert (row.status, row.origin, row.worker) == ("finished", "hub", "test-worker")
    assert [e.type for e in events][:2] == ["run-started", "hypothesis-started"]
    assert events[-1].type == "run-finished"
    assert any(e.type == "activity-completed" and e.data.get("name") == "restore"
               for e in events)
    execution = alice.get(f"/api/v1/executions/{row.execution_id}").get_json()
    assert execution["outcome"] == "passed" and execution["published_by_name"] == "alice"
    # One run: the control opened none of its own.
    listed = alice.get(f"/api/v1/experiments/{row.experiment_id}/runs").get_json()["runs"]
    assert [r["id"] for r in listed] == [run_id]
    # The token went with the run, and never into its row.
    assert refused_after(hub, stand_in, run_id) == 401
    assert env["CHAOSHUB_TOKEN"] not in json.dumps(row.options)


def test_an_abort_deletes_the_job_and_the_run_ends_aborted_with_its_rollbacks(app, hub,
                                                                              cluster):
    stand_in, alice = cluster
    run_id = queued(app, alice, runnable([process("action", "wait", "60", path="/bin/sleep")]))
    ended: dict[str, str] = {}

    def execute():
        with app.app_context():
            ended["status"] = worker.execute(run_id, "test-worker")

    running = threading.Thread(target=execute)
    running.start()
    deadline = time.monotonic() + 60
    with app.app_context():
        while not any(e.type == "activity-started" and e.data.get("name") == "wait"
                      for e in runs.load_events(run_id)):
            assert time.monotonic() < deadline, "the pod never reported its method"
            assert running.is_alive(), ended
            time.sleep(0.2)
        asked = time.monotonic()
        hub_runs.request_abort(run_id, rollbacks=True)
    running.join(60)
    assert not running.is_alive()
    assert time.monotonic() - asked < 20  # within seconds, not the sleep's minute
    assert ended["status"] == "aborted"
    deletes = [r for r in stand_in.requests if r["method"] == "DELETE"]
    assert len(deletes) == 1 and stand_in.signals == [signal.SIGTERM]  # once: no SIGKILL
    with app.app_context():
        row = runs.load_run(run_id)
        events = [e.type for e in runs.load_events(run_id)]
    assert row.status == "aborted" and row.execution_id
    assert "run-interrupted" in events and "rollbacks-completed" in events
    journal = alice.get(f"/api/v1/executions/{row.execution_id}/journal").get_json()
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore"]
    assert refused_after(hub, stand_in, run_id) == 401
    # Stopped once, by the Job's deletion: the control left the abort to it.
    said = (stand_in.root / "pod.log").read_text()
    assert said.count("Caught SIGTERM signal") == 1
    assert "the hub asked this run to stop" not in said
