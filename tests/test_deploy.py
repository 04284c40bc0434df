"""The deployment, checked offline: the image, the Kubernetes manifests, skaffold.yaml, and the
table of public paths that the Ingress and `chaoshub route` share.

Every layout is rendered with tests/kustomize.py (compared with `kubectl kustomize` where kubectl
is installed), validated against the Kubernetes API with kubernetes-validate in strict mode, and
checked against itself (Services select pods, references resolve), against the app (the settings
production requires, probe paths, public routes) and against the image.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from gunicorn.config import Config as GunicornConfig
from gunicorn.util import import_app
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server
from werkzeug.test import Client

from chaoshub import create_app
from chaoshub.cli import main
from chaoshub.core.config import SERVICES, ConfigError, is_production, load_settings
from chaoshub.router import NOT_ORGS, ROUTES, Router, matches_route, service_for
from tests.conftest import FIXTURES
from tests.helpers import free_port
from tests.kustomize import render

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.33"
IMAGE = "chaoshub"
SECRET = "chaoshub-secrets"
SERVICE_KEYS = "chaoshub-service-keys"  # split mode: one key per service, each pod mounts its own
INGRESS_CONTROLLER = {"namespaceSelector": {"matchLabels": {
    "kubernetes.io/metadata.name": "ingress-nginx"}}, "podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "ingress-nginx"}}}
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
CLOSED = "chaoshub-private-paths"  # the Service with no pods where private paths go
OPTIONAL_SECRETS = {"chaoshub-oauth"}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Paths that must never be reachable from outside the cluster.
PRIVATE_PATHS = ("/internal", "/internal/rpc/auth/resolve_credentials", "/status/health",
                 "/metrics")
USE_REGEX = "nginx.ingress.kubernetes.io/use-regex"

# The overlays skaffold deploys on minikube, and the production shapes a cluster's own overlay
# builds on: the same parts without the dev loop's relaxations.
OVERLAYS = {"dev": ["base", "postgres", "hub", "worker"],
            "split": ["base", "postgres", "split", "worker"]}
PRODUCTION = {"production-hub": OVERLAYS["dev"], "production-split": OVERLAYS["split"],
              "production-split-jobs": OVERLAYS["split"]}
# Components a production shape adds: runs as Kubernetes Jobs (RUN_EXECUTOR=kubernetes).
COMPONENTS = {"production-split-jobs": ["job-runs"]}
LAYOUTS = sorted([*OVERLAYS, *PRODUCTION])
WORKER = "chaoshub-worker"
# The runtime stage's only packages: git and ssh, for the repositories linked to workspaces.
RUNTIME_PACKAGES = ["git", "openssh-client"]
APT_RUN = ("apt-get update && apt-get install --yes --no-install-recommends git openssh-client "
           "&& rm -rf /var/lib/apt/lists/*")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """The folder of each layout: k8s/overlays/*, or a kustomization made here for the others."""
    found = {name: K8S / "overlays" / name for name in OVERLAYS}
    for name, parts in PRODUCTION.items():
        folder = tmp_path_factory.mktemp(name)
        resources = [os.path.relpath(K8S / part, folder) for part in parts]
        components = [os.path.relpath(K8S / part, folder) for part in COMPONENTS.get(name, [])]
        # As the README's cluster overlay does: production needs the hub's address.
        public_url = [{"op": "add", "path": "/data/PUBLIC_URL", "value": "https://hub.example.com"}]
        patch = {"target": {"kind": "ConfigMap", "name": "chaoshub-settings"},
                 "patch": yaml.safe_dump(public_url)}
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(
            {"resources": resources, "components": components, "patches": [patch]}))
        found[name] = folder
    return found


@pytest.fixture(scope="module")
def rendered(folders) -> dict[str, list[dict]]:
    return {name: render(folder) for name, folder in folders.items()}


@pytest.fixture(params=LAYOUTS)
def layout(request, rendered) -> tuple[str, list[dict]]:
    return request.param, rendered[request.param]


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict[tuple[str, ...], object]:
    """The Flask app of each kind of process: one service each, or all three."""
    built = {}
    with pytest.MonkeyPatch.context() as patch:
        _clear_hub_environment(patch)
        for hosted in [(service,) for service in SERVICES] + [SERVICES]:
            folder = tmp_path_factory.mktemp("-".join(hosted))
            patch.chdir(folder)
            built[hosted] = create_app({
                "CHAOSHUB_SERVICES": ",".join(hosted),
                "CHAOSHUB_INSTANCE_PATH": str(folder),
                "PROXY_HOPS": 1,
                **{f"{s.upper()}_SERVICE_URL": f"http://{s}:8080" for s in SERVICES},
            })
    return built


@pytest.fixture
def no_hub_settings(monkeypatch, tmp_path):
    """No hub setting from the environment or a .env file; an instance folder of the test's own."""
    _clear_hub_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSHUB_INSTANCE_PATH", str(tmp_path))


# Rendering and validation ---------------------------------------------------------------------


def test_each_overlay_is_a_production_shape_plus_the_dev_loop():
    for name, parts in OVERLAYS.items():
        kustomization = yaml.safe_load((K8S / "overlays" / name / "kustomization.yaml").read_text())
        assert kustomization["resources"] == [f"../../{part}" for part in parts]
        assert kustomization["components"] == ["../../dev-loop"]


def test_the_renderer_patches_copies_of_yaml_anchors(tmp_path):
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: b}}\n"
        "spec:\n  initContainers: [{name: i, image: x, env: &env [{name: A, value: '1'}]}]\n"
        "  containers: [{name: c, image: x, env: *env}]\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [pod.yaml]\npatches:\n  - target: {kind: Pod, labelSelector: a=b}\n"
        "    patch: '[{op: replace, path: /spec/containers/0/env/0/value, value: \"2\"}]'\n")
    (pod,) = render(tmp_path)
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    assert pod["spec"]["initContainers"][0]["env"] == [{"name": "A", "value": "1"}]


@pytest.mark.skipif(shutil.which("kubectl") is None,
                    reason="kubectl is not installed; tests/kustomize.py renders on its own")
@pytest.mark.parametrize("name", LAYOUTS)
def test_the_renderer_agrees_with_kubectl_kustomize(name, folders, rendered):
    output = subprocess.run(["kubectl", "kustomize", str(folders[name])],
                            capture_output=True, text=True, check=True).stdout
    theirs = [doc for doc in yaml.safe_load_all(output) if doc]
    assert sorted(theirs, key=_identity) == sorted(rendered[name], key=_identity)


def test_every_manifest_is_valid_for_kubernetes(layout):
    _, resources = layout
    problems = []
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{_identity(resource)}: {error.message} at {list(error.path)}")
    assert not problems, "\n".join(problems)
    assert {"Deployment", "Service", "ConfigMap", "Job", "Ingress", "StatefulSet",
            "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= {r["kind"] for r in resources}


def test_strict_validation_refuses_an_unknown_field(rendered):
    deployment = copy.deepcopy(next(_kind(rendered["dev"], "Deployment")))
    container = _pod(deployment)["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# Cross-references -----------------------------------------------------------------------------


def test_each_service_selects_one_workload_and_a_port_it_opens(layout):
    _, resources = layout
    for service in _kind(resources, "Service"):
        if service["metadata"]["name"] == CLOSED:
            assert "selector" not in service["spec"]
            continue
        selected = _selected(resources, service["spec"]["selector"])
        assert len(selected) == 1, f"Service {service['metadata']['name']} selects {selected}"
        ports = {p["name"] for c in _pod(selected[0])["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port}"


def test_every_reference_resolves(layout):
    _, resources = layout
    services = _named(resources, "Service")
    (ingress,) = _kind(resources, "Ingress")
    assert "defaultBackend" not in ingress["spec"]
    for path, _, backend in _ingress_routes(ingress):
        ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        assert backend["port"]["name"] in ports, path
    scaled = {h["spec"]["scaleTargetRef"]["name"]
              for h in _kind(resources, "HorizontalPodAutoscaler")}
    for budget in _kind(resources, "PodDisruptionBudget"):
        assert len(_selected(resources, budget["spec"]["selector"]["matchLabels"])) == 1
    # Every ChaosHub server scales with load and keeps serving through a node drain.
    servers = {w["metadata"]["name"] for w in _kind(resources, "Deployment") if _is_hub(w)}
    budgeted = {b["metadata"]["name"] for b in _kind(resources, "PodDisruptionBudget")}
    assert servers and servers == scaled == budgeted

    configmaps = _named(resources, "ConfigMap")
    for workload in _workloads(resources):
        pod = _pod(workload)
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
            if "secret" in volume:
                assert volume["secret"]["secretName"] in (SECRET, SERVICE_KEYS)
        for container in _containers(pod):
            _container_env(container, configmaps)  # fails on a dangling reference


def test_each_process_gets_the_settings_production_requires(layout, no_hub_settings):
    name, resources = layout
    configmaps, services = _named(resources, "ConfigMap"), _named(resources, "Service")
    hosted = set()
    for workload, pod, container in _hub_containers(resources):
        where = f"{workload['metadata']['name']}/{container['name']}"
        env = _container_env(container, configmaps)
        settings = load_settings(env)  # ConfigError when the code misses a required setting
        assert is_production(settings), where
        # Behind the Ingress controller, or every client would share its address.
        assert settings["PROXY_HOPS"] == 1, where
        with pytest.raises(ConfigError):
            load_settings({k: v for k, v in env.items() if k != "SECRET_KEY"})
        assert "PGPASSWORD" in env, where
        assert urlsplit(settings["REDIS_URL"]).hostname in services, where
        for service in settings["CHAOSHUB_SERVICES"]:
            database = make_url(settings[f"{service.upper()}_DATABASE_URL"])
            assert database.drivername == "postgresql+psycopg", where
            assert database.host in services and database.password is None, where
        for service in set(SERVICES) - set(settings["CHAOSHUB_SERVICES"]):
            url = urlsplit(settings[f"{service.upper()}_SERVICE_URL"])
            assert url.port in {p["port"] for p in services[url.hostname]["spec"]["ports"]}
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        if "auth" in settings["CHAOSHUB_SERVICES"]:
            assert _mounted_secret_key(pod, container, env["CHAOSHUB_SIGNING_KEY_FILE"]), where
        else:
            assert "signing-key" not in mounts, f"{where} verifies claims with the JWKS"
        if len(settings["CHAOSHUB_SERVICES"]) == 1:
            # Split: its own service key, and no other service's, to sign its calls with.
            (service,) = settings["CHAOSHUB_SERVICES"]
            keys = {item["key"] for volume in pod["volumes"] if "secret" in volume
                    and volume["secret"]["secretName"] == SERVICE_KEYS
                    for item in volume["secret"]["items"]}
            assert keys == {f"{service}-service-key.pem"}, where
            assert _mounted_secret_key(pod, container, env["CHAOSHUB_SERVICE_KEY_FILE"]), where
        hosted.add(tuple(settings["CHAOSHUB_SERVICES"]))
    # One process per service when split; the hub, and the migration Job, host all three; the
    # workers host experiment's.
    split = {(service,) for service in SERVICES} if "split" in name else set()
    assert hosted == {SERVICES, ("experiment",)} | split


def test_the_secret_holds_the_keys_the_readme_creates(rendered):
    readme = (ROOT / "README.md").read_text()
    used: dict[str, set[str]] = {SECRET: set(), SERVICE_KEYS: set()}
    for resources in rendered.values():
        for workload in _workloads(resources):
            pod = _pod(workload)
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    used[volume["secret"]["secretName"]] |= {
                        item["key"] for item in volume["secret"]["items"]}
            for container in _containers(pod):
                used[SECRET] |= {v["valueFrom"]["secretKeyRef"]["key"]
                                 for v in container.get("env", [])
                                 if "secretKeyRef" in v.get("valueFrom", {})}
    for secret, keys in used.items():
        commands = re.findall(rf"kubectl create secret generic {secret}((?:.*\\\n)+.*)", readme)
        assert commands, f"the README shows how to create {secret}"
        for command in commands:
            assert set(re.findall(r"--from-(?:literal|file)=([\w.-]+)", command)) == keys


# Security and resources -----------------------------------------------------------------------


def test_pods_run_unprivileged_with_limits(layout):
    name, resources = layout
    for workload in _workloads(resources):
        pod, where = _pod(workload), workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        # Only a worker that runs Jobs (../job-runs) speaks to the Kubernetes API.
        talks_to_api = name in COMPONENTS and workload["metadata"]["name"] == WORKER
        assert pod["automountServiceAccountToken"] is talks_to_api, where
        for container in _containers(pod):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            for need in ("requests", "limits"):
                assert set(container["resources"][need]) == {"cpu", "memory"}, where
            if _is_hub(workload):
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert {"/tmp", "/var/lib/chaoshub"} <= mounts, where
            # Only skaffold's file sync needs to write into a server's root filesystem.
            synced = name in OVERLAYS and _is_hub(workload) and \
                workload["kind"] == "Deployment" and container is pod["containers"][0]
            assert security["readOnlyRootFilesystem"] is not synced, where


def test_only_the_ingress_controller_and_the_other_services_reach_a_server(layout):
    name, resources = layout
    servers = _servers(resources)
    workers = [w["metadata"]["name"] for w in _kind(resources, "Deployment") if _is_worker(w)]
    policies = list(_kind(resources, "NetworkPolicy"))
    for server in servers:
        where = server["metadata"]["name"]
        guarding = [p for p in policies if _selects(p["spec"]["podSelector"], _pod_labels(server))]
        assert guarding, f"no NetworkPolicy guards {where}"
        for policy in guarding:
            assert policy["spec"]["policyTypes"] == ["Ingress"], where
            for rule in policy["spec"]["ingress"]:
                assert rule["ports"] == [{"port": "http", "protocol": "TCP"}], where
                for peer in rule["from"]:
                    if "namespaceSelector" in peer:
                        assert peer in (INGRESS_CONTROLLER, PROMETHEUS), where
                        continue
                    # Only the hub's servers and workers: not the migration Job, Redis or
                    # PostgreSQL.
                    assert set(peer) == {"podSelector"}, where
                    reached = {w["metadata"]["name"] for w in _workloads(resources)
                               if _selects(peer["podSelector"], _pod_labels(w))}
                    assert reached <= {s["metadata"]["name"] for s in servers} | set(workers)
    if "split" in name:
        # Each service calls the others and fetches their keys: all of them must get through.
        callers = servers + [w for w in _kind(resources, "Deployment") if _is_worker(w)]
        for caller, callee in ((a, b) for a in callers for b in servers if a is not b):
            assert any(_selects(peer["podSelector"], _pod_labels(caller))
                       for p in policies if _selects(p["spec"]["podSelector"], _pod_labels(callee))
                       for rule in p["spec"]["ingress"] for peer in rule["from"]
                       if "namespaceSelector" not in peer), (caller["metadata"]["name"], callee)


# The workers -----------------------------------------------------------------------------------


def test_the_worker_runs_queued_runs_without_the_signing_key(layout, no_hub_settings):
    _, resources = layout
    configmaps = _named(resources, "ConfigMap")
    worker = _named(resources, "Deployment")[WORKER]
    pod = _pod(worker)
    (container,) = pod["containers"]
    assert container["image"] == IMAGE and container["command"] == ["chaoshub", "worker"]
    env = _container_env(container, configmaps)
    settings = load_settings(env)
    assert settings["CHAOSHUB_SERVICES"] == ("experiment",)
    assert settings["REDIS_URL"] and settings["EXPERIMENT_DATABASE_URL"]
    # Never the key that signs every claim: no such variable, volume or mount.
    assert not {"CHAOSHUB_SIGNING_KEY", "CHAOSHUB_SIGNING_KEY_FILE"} & set(env)
    keys = {item["key"] for volume in pod["volumes"] if "secret" in volume
            for item in volume["secret"]["items"]}
    assert keys == {"experiment-service-key.pem"}
    # A drained worker finishes its run, rollbacks included, before Kubernetes kills it.
    assert pod["terminationGracePeriodSeconds"] >= (settings["RUN_MAX_SECONDS"]
                                                    + settings["RUN_GRACE_SECONDS"])
    (scaler,) = [h for h in _kind(resources, "HorizontalPodAutoscaler")
                 if h["spec"]["scaleTargetRef"]["name"] == WORKER]
    assert [m["resource"]["name"] for m in scaler["spec"]["metrics"]] == ["cpu"]


def test_the_workers_sync_repositories_into_a_volume_of_their_own(layout, no_hub_settings):
    _, resources = layout
    worker = _named(resources, "Deployment")[WORKER]
    pod = _pod(worker)
    (container,) = pod["containers"]
    settings = load_settings(_container_env(container, _named(resources, "ConfigMap")))
    cache = settings["GIT_CACHE_DIR"]
    # Not the default under the instance folder, whose small volume holds other things.
    assert cache and not cache.startswith(settings["CHAOSHUB_INSTANCE_PATH"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"]
                if cache == m["mountPath"] or cache.startswith(m["mountPath"].rstrip("/") + "/")]
    assert not mount.get("readOnly")
    volume = volumes[mount["name"]]
    assert "persistentVolumeClaim" in volume or _bytes(volume["emptyDir"]["sizeLimit"]) >= 2**30
    # git's HOME (a fresh folder per command) is made under /tmp.
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity).groups()
    return int(number) * units.get(unit, 1)


def test_nobody_reaches_a_worker_and_it_reaches_what_it_needs(layout):
    _, resources = layout
    worker = _named(resources, "Deployment")[WORKER]
    services = _named(resources, "Service")
    (policy,) = [p for p in _kind(resources, "NetworkPolicy")
                 if _selects(p["spec"]["podSelector"], _pod_labels(worker))]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    rules = policy["spec"]["egress"]

    def reached(workload: dict, port: int) -> bool:
        """Whether a rule lets the worker reach the workload's pods in this namespace."""
        return any(set(peer) == {"podSelector"}
                   and _selects(peer["podSelector"], _pod_labels(workload))
                   and any(p["port"] == port for p in rule["ports"])
                   for rule in rules for peer in rule["to"])

    workloads = {w["metadata"]["name"]: w for w in _workloads(resources)}
    assert reached(workloads["redis"], services["redis"]["spec"]["ports"][0]["port"])
    assert reached(workloads["postgres"], services["postgres"]["spec"]["ports"][0]["port"])
    for server in _servers(resources):
        assert reached(server, 8080), server["metadata"]["name"]
    dns = [rule for rule in rules if any(
        peer.get("podSelector", {}).get("matchLabels") == {"k8s-app": "kube-dns"}
        for peer in rule["to"])]
    assert dns and {"port": 53, "protocol": "UDP"} in dns[0]["ports"]
    # The experiments' targets, but never the clouds' metadata address.
    blocks = [peer["ipBlock"] for rule in rules for peer in rule["to"] if "ipBlock" in peer]
    assert blocks and all("169.254.0.0/16" in block["except"] for block in blocks)


def test_runs_as_jobs_get_a_role_in_their_namespace_only(rendered, no_hub_settings):
    resources = rendered["production-split-jobs"]
    (role,) = _kind(resources, "Role")
    assert not list(_kind(resources, "ClusterRole")) and not list(
        _kind(resources, "ClusterRoleBinding"))
    rights = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
              for resource in rule["resources"] for verb in rule["verbs"]}
    assert rights == {("batch", "jobs", "create"), ("batch", "jobs", "get"),
                      ("batch", "jobs", "delete"), ("", "configmaps", "create"),
                      ("", "secrets", "create"), ("", "pods", "list"), ("", "pods/log", "get")}
    (binding,) = _kind(resources, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    worker = _named(resources, "Deployment")[WORKER]
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": _pod(worker)["serviceAccountName"]}]
    env = _container_env(_pod(worker)["containers"][0], _named(resources, "ConfigMap"))
    settings = load_settings(env)
    assert settings["RUN_EXECUTOR"] == "kubernetes" and settings["RUN_JOB_IMAGE"] == IMAGE
    # The runs' own account holds no token and no right.
    accounts = _named(resources, "ServiceAccount")
    run_account = accounts[settings["RUN_JOB_SERVICE_ACCOUNT"]]
    assert run_account["automountServiceAccountToken"] is False
    assert settings["RUN_JOB_SERVICE_ACCOUNT"] not in {s["name"] for s in binding["subjects"]}
    # Without the component the worker has neither the token nor the Role.
    plain = rendered["production-split"]
    assert not list(_kind(plain, "Role"))
    assert _pod(_named(plain, "Deployment")[WORKER])["automountServiceAccountToken"] is False


def test_hub_pods_run_the_image_as_its_user(layout):
    _, resources = layout
    user = _dockerfile_final_stage()["USER"][-1].split(":")[0]
    for _, pod, container in _hub_containers(resources):
        assert container["image"] == IMAGE
        assert str(pod["securityContext"]["runAsUser"]) == user


def test_probes_ask_the_app_for_routes_it_serves(layout, apps):
    _, resources = layout
    configmaps = _named(resources, "ConfigMap")
    probed = 0
    for workload, pod, container in _hub_containers(resources):
        hosted = _container_env(container, configmaps).get("CHAOSHUB_SERVICES")
        urls = apps[tuple(hosted.split(",")) if hosted else SERVICES].url_map.bind("hub")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                get = container[probe]["httpGet"]
                urls.match(get["path"], method="GET")  # NotFound when the app has no such route
                assert get["port"] in {p["name"] for p in container["ports"]}
                probed += 1
        if workload in _servers(resources) and container is pod["containers"][0]:
            assert container["livenessProbe"]["httpGet"]["path"] == "/status/live"
            assert container["readinessProbe"]["httpGet"]["path"] == "/status/ready"
    assert probed


def test_prometheus_scrapes_each_server_where_it_serves_metrics(layout, apps):
    _, resources = layout
    configmaps = _named(resources, "ConfigMap")
    servers = _servers(resources)
    assert servers
    for server in servers:
        pod_template = server["spec"]["template"]
        annotations = pod_template["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", server["metadata"]["name"]
        container = pod_template["spec"]["containers"][0]
        ports = {str(p["containerPort"]) for p in container["ports"]}
        assert annotations["prometheus.io/port"] in ports
        hosted = _container_env(container, configmaps).get("CHAOSHUB_SERVICES")
        urls = apps[tuple(hosted.split(",")) if hosted else SERVICES].url_map.bind("hub")
        urls.match(annotations["prometheus.io/path"], method="GET")
        # Prometheus gets through the NetworkPolicy to the port it scrapes, and only that one.
        rules = [rule for policy in _kind(resources, "NetworkPolicy")
                 if _selects(policy["spec"]["podSelector"], _pod_labels(server))
                 for rule in policy["spec"]["ingress"] if PROMETHEUS in rule["from"]]
        assert rules and all(rule["ports"] == [{"port": "http", "protocol": "TCP"}]
                             for rule in rules)


# Public paths: the Ingress and `chaoshub route` -----------------------------------------------


def test_the_ingress_sends_private_paths_nowhere(layout):
    name, resources = layout
    (ingress,) = _kind(resources, "Ingress")
    routes = _ingress_routes(ingress)
    for private in PRIVATE_PATHS:
        assert _ingress_backend(routes, private) == CLOSED, private
    # Anything but Exact and Prefix means what the controller makes of it: here, nginx's regular
    # expressions, and only when the Ingress asks for them.
    regex = ingress["metadata"].get("annotations", {}).get(USE_REGEX) == "true"
    for path, kind, _ in routes:
        assert kind in ("Exact", "Prefix") or (kind == "ImplementationSpecific" and regex), path
    assert ingress["spec"]["ingressClassName"] == "nginx"
    if "split" in name:
        table = {(path, kind, None if backend["name"] == CLOSED else
                  backend["name"].removeprefix("chaoshub-")) for path, kind, backend in routes}
        assert table == set(ROUTES)


def test_every_public_route_reaches_its_service(rendered, apps):
    ingresses = {name: _ingress_routes(next(_kind(resources, "Ingress")))
                 for name, resources in rendered.items()}
    for service in SERVICES:
        for path in _own_paths(apps, service):
            assert service_for(path) == service, f"chaoshub/router.py sends {path} elsewhere"
            for name, routes in ingresses.items():
                expected = f"chaoshub-{service}" if "split" in name else "chaoshub"
                assert _ingress_backend(routes, path) == expected, f"{name} Ingress: {path}"


def test_the_router_sends_each_path_to_its_service_but_private_ones():
    assert service_for("/") == "dashboard"
    assert service_for("/static/hub.css") == "dashboard"
    assert service_for("/signing") == "dashboard"  # an org's page, not auth's
    assert service_for("/signin") == "auth"
    assert service_for("/settings") == "auth"
    assert service_for("/settings/tokens/abc/revoke") == "dashboard"  # it resolves workspaces
    assert service_for("/api/v1/tokens/abc") == "dashboard"
    assert service_for("/api/v1/experiments/abc") == "experiment"
    assert service_for("/-/runs") == "experiment"  # the runs overview: no org is named "-"
    assert service_for("/api/v1/orgs/o/workspaces/w") == "dashboard"
    assert service_for("/api/v1/orgs/o/workspaces/w/experiments") == "experiment"
    assert service_for("/api/v1/orgs/o/workspaces/w/environments/staging") == "experiment"
    assert service_for("/team/alpha/-/environments") == "experiment"
    assert service_for("/api/v1/orgs/o/workspaces/w/webhooks") == "experiment"
    assert service_for("/team/alpha/-/notifications/abc/deliveries/d/redeliver") == "experiment"
    assert service_for("/api/v1/orgs/o/workspaces/w/policy") == "dashboard"
    # The workspace page is experiment's: exactly two segments, the first no reserved name.
    assert service_for("/team/alpha") == "experiment"
    assert service_for("/team/-") == "experiment"
    for path in ("/team", "/team/alpha/", "/team/alpha/-/settings", "/team/alpha/-/members",
                 "/team/-/members", "/team/-/workspaces", "/invitations/abc",
                 "/invitations/pending", "/static/hub.css", "/settings/tokens"):
        assert service_for(path) == "dashboard", path
    for path in ("/settings/password", "/signout/everywhere"):
        assert service_for(path) == "auth", path
    assert service_for("/api/v1") == "experiment" and service_for("/status/live") is None
    for path in [*PRIVATE_PATHS, "/internal/", "/status", "/signin/../internal/rpc/auth/x",
                 "/api/v1/./me"]:
        assert service_for(path) is None, path


def test_no_org_can_be_named_like_a_path_routed_elsewhere():
    # Dashboard's pages live at /<org>: an org named "signin" would lose its pages to auth.
    from chaoshub.dashboard.service import RESERVED_NAMES

    # A pattern in first place (the experiment pages' /<org>/<ws>/experiment/) names no org.
    first_segments = {route.split("/")[1] for route, _, _ in ROUTES
                      if route != "/" and not route.startswith(("/[", "/("))}
    assert first_segments <= RESERVED_NAMES
    # The workspace page's pattern leaves out these first segments: none may name an org.
    assert set(NOT_ORGS) <= RESERVED_NAMES


def test_the_router_passes_cookies_headers_and_bodies_both_ways():
    def service(environ, start_response):
        seen = {name: environ.get(key) for name, key in [
            ("path", "PATH_INFO"), ("query", "QUERY_STRING"), ("cookie", "HTTP_COOKIE"),
            ("csrf", "HTTP_X_CSRF_TOKEN")]}
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        start_response("201 Created", [
            ("Content-Type", "application/json"), ("Location", "/api/v1/experiments/1"),
            # Two cookies, one with a comma in its date: they must stay two headers.
            ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"),
            ("Set-Cookie", "b=2; Path=/")])
        return [json.dumps(seen).encode()]

    server = make_server("127.0.0.1", 0, service, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        router = Router({name: f"http://127.0.0.1:{server.port}" for name in SERVICES})
        client = Client(router, use_cookies=False)  # the Cookie header as sent, untouched
        answer = client.post("/api/v1/orgs/o/workspaces/w/experiments?dry=1", data='{"x": 1}',
                             headers={"Cookie": "chaoshub_session=s; chaoshub_csrf=c",
                                      "X-CSRF-Token": "c", "Content-Type": "application/json"})
    finally:
        server.shutdown()
    assert answer.status_code == 201
    assert answer.headers["Location"] == "/api/v1/experiments/1"
    assert answer.headers.getlist("Set-Cookie") == [
        "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/", "b=2; Path=/"]
    assert answer.json == {"path": "/api/v1/orgs/o/workspaces/w/experiments", "query": "dry=1",
                           "cookie": "chaoshub_session=s; chaoshub_csrf=c", "csrf": "c",
                           "body": '{"x": 1}'}


def test_the_router_answers_502_when_a_service_is_down():
    client = Client(Router({name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}))
    answer = client.get("/signin")
    assert answer.status_code == 502 and answer.json["error"] == "bad_gateway"


def test_chaoshub_route_needs_the_service_urls(no_hub_settings, monkeypatch):
    monkeypatch.setenv("AUTH_SERVICE_URL", "http://127.0.0.1:8081")
    result = CliRunner().invoke(main, ["route", "--port", "0"])
    assert result.exit_code == 1
    assert "DASHBOARD_SERVICE_URL, EXPERIMENT_SERVICE_URL" in result.output


# skaffold.yaml --------------------------------------------------------------------------------


def test_skaffold_yaml_follows_its_schema():
    skaffold = _skaffold()
    schema = json.loads((FIXTURES / "skaffold-v4beta14.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert [e.message for e in validator.iter_errors(skaffold)] == []
    assert skaffold["apiVersion"] == "skaffold/v4beta14"  # the schema does not pin it
    assert list(validator.iter_errors({**skaffold, "deploy": {"kubectl": {"flag": {}}}}))


def test_skaffold_deploys_overlays_that_run_its_image(rendered):
    skaffold = _skaffold()
    (artifact,) = skaffold["build"]["artifacts"]
    assert skaffold["build"]["local"]["push"] is False
    assert {p["name"] for p in skaffold["profiles"]} == {"dev", "split"}
    for config in [skaffold, *skaffold["profiles"]]:
        (path,) = config["manifests"]["kustomize"]["paths"]
        assert (ROOT / path / "kustomization.yaml").is_file(), path
        images = {c["image"] for _, _, c in _hub_containers(rendered[Path(path).name])}
        assert images == {artifact["image"]}
        forwards = config.get("portForward", skaffold["portForward"])
        assert forwards and all(f["localPort"] == 8080 for f in forwards)
    # The dev loop forwards the hub's Service; split forwards the ingress controller's.
    (forward,) = skaffold["portForward"]
    ports = _named(rendered["dev"], "Service")[forward["resourceName"]]["spec"]["ports"]
    assert forward["port"] in {p["port"] for p in ports}


def test_skaffold_syncs_code_where_the_image_keeps_it():
    (artifact,) = _skaffold()["build"]["artifacts"]
    stage = _dockerfile_final_stage()
    for rule in artifact["sync"]["manual"]:
        assert rule["dest"] == stage["WORKDIR"][-1]
        assert list(ROOT.glob(rule["src"])), f"{rule['src']} matches no file"
    # The image lets the server's user own the code only when skaffold asks, for file sync.
    user = stage["USER"][-1].split(":")[0]
    assert artifact["docker"]["buildArgs"] == {"CODE_OWNER": user}
    assert "CODE_OWNER=root" in stage["ARG"]


def test_the_dev_loop_server_reloads_code_and_templates(rendered, no_hub_settings):
    command = _pod(_named(rendered["dev"], "Deployment")["chaoshub"])["containers"][0]["command"]
    assert command[0] == "gunicorn"
    assert _gunicorn_options(command).reload is True
    app = import_app(command[-1])  # the way gunicorn loads it
    assert app.jinja_env.auto_reload is True


# The image ------------------------------------------------------------------------------------


def test_the_image_serves_with_gunicorn_as_a_non_root_user(no_hub_settings):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM\s", dockerfile, re.MULTILINE)) >= 2, "build and runtime stages"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.12-slim", dockerfile, re.MULTILINE)
    stage = _dockerfile_final_stage()
    user = stage["USER"][-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    # What runs is the code and its venv, built in the first stage: nothing to compile with
    # here, and no package installed but the runtime's own (the next test).
    assert not any(re.search(r"\b(apk|pip|gcc|g\+\+|cc|make|build-essential|[\w.+-]+-dev)\b",
                             run) for run in stage.get("RUN", []))
    assert [" ".join(run.split()) for run in stage.get("RUN", []) if "apt-get" in run] == \
        [APT_RUN]
    assert "HEALTHCHECK" not in stage
    command = json.loads(stage["CMD"][-1])
    assert command[0] == "gunicorn"
    assert _gunicorn_options(command).bind == ["0.0.0.0:8080"]
    assert import_app(command[-1]).name == "chaoshub"


def test_the_image_has_git_and_ssh_for_the_workers_syncs():
    stage = _dockerfile_final_stage()
    (run,) = [r for r in stage["RUN"] if "apt-get" in r]
    commands = [c.strip() for c in run.split("&&")]
    # One layer: the package lists go in the layer that used them, never into the image.
    assert commands[0] == "apt-get update" and commands[-1] == "rm -rf /var/lib/apt/lists/*"
    (install,) = [c.split() for c in commands if c.startswith("apt-get install")]
    options = [word for word in install[2:] if word.startswith("-")]
    packages = [word for word in install[2:] if not word.startswith("-")]
    assert sorted(options) == ["--no-install-recommends", "--yes"]
    assert packages == RUNTIME_PACKAGES
    # The commands the syncs start (git_mirror.py) are these packages'.
    mirror = (ROOT / "chaoshub" / "experiment" / "git_mirror.py").read_text()
    assert '["git", ' in mirror and '["ssh", ' in mirror
    # Installed before the code is copied: a code change rebuilds no package layer.
    text = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert text.index("apt-get install") < text.index("COPY ")


def test_the_build_context_leaves_secrets_and_local_state_out():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "everything is left out unless listed"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "setup.py", "README.md", "chaoshub", "client",
                       "migrations"}


# Helpers --------------------------------------------------------------------------------------


def _identity(resource: dict) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _kind(resources: list[dict], kind: str):
    return (r for r in resources if r["kind"] == kind)


def _named(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in _kind(resources, kind)}


def _workloads(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["kind"] in WORKLOADS]


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def _selected(resources: list[dict], labels: dict) -> list[dict]:
    """The workloads whose pods carry all of `labels`."""
    return [w for w in _workloads(resources) if labels.items() <= _pod_labels(w).items()]


def _selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector selects these labels (In and NotIn expressions)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"]) in expression["values"]
        if present != (expression["operator"] == "In"):
            return False
    return True


def _is_hub(workload: dict) -> bool:
    return _pod_labels(workload)["app.kubernetes.io/name"] == "chaoshub"


def _is_worker(workload: dict) -> bool:
    return _is_hub(workload) and _pod_labels(workload)["app.kubernetes.io/component"] == "worker"


def _servers(resources: list[dict]) -> list[dict]:
    """The Deployments that serve HTTP: the hub, or its services."""
    return [w for w in _kind(resources, "Deployment") if _is_hub(w) and not _is_worker(w)]


def _containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def _hub_containers(resources: list[dict]):
    """(workload, pod spec, container) for every container of the hub's pods and Job."""
    for workload in filter(_is_hub, _workloads(resources)):
        pod = _pod(workload)
        for container in _containers(pod):
            yield workload, pod, container


def _container_env(container: dict, configmaps: dict) -> dict[str, str]:
    """The environment a container starts with; a Secret's values stand as placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            assert source["secretRef"]["name"] in OPTIONAL_SECRETS
            assert source["secretRef"]["optional"] is True
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "configMapKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["configMapKeyRef"]
            env[variable["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET
            env[variable["name"]] = f"<{ref['key']} from {SECRET}>"
    return env


def _mounted_secret_key(pod: dict, container: dict, path: str) -> bool:
    """True when `path` is a key of the Secret, mounted into the container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret and str(Path(path).parent) == mount["mountPath"]:
            return Path(path).name in {item["path"] for item in secret["items"]}
    return False


def _ingress_routes(ingress: dict) -> list[tuple[str, str, dict]]:
    return [(p["path"], p["pathType"], p["backend"]["service"])
            for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]


def _ingress_backend(routes: list, path: str) -> str | None:
    matches = [(len(route), backend["name"]) for route, kind, backend in routes
               if matches_route(route, kind, path)]
    return max(matches)[1] if matches else None


def _own_paths(apps: dict, service: str) -> list[str]:
    """A concrete path for each route only `service` serves (not /static, /status or RPC)."""
    def rules(app) -> set[str]:
        return {rule.rule for rule in app.url_map.iter_rules()}

    shared = set.intersection(*(rules(apps[(s,)]) for s in SERVICES))
    own = rules(apps[(service,)]) - shared
    assert own, f"{service} serves no route of its own"
    return [re.sub(r"<[^>]+>", "x", rule) for rule in sorted(own)]


def _gunicorn_options(command: list[str]):
    """gunicorn's reading of a command line; SystemExit on an option it does not know."""
    return GunicornConfig().parser().parse_args(command[1:])


def _skaffold() -> dict:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def _dockerfile_final_stage() -> dict[str, list[str]]:
    """The instructions of the Dockerfile's last stage, by name, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    last = text.rsplit("\nFROM ", 1)[1]
    stage: dict[str, list[str]] = {}
    for line in last.splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            stage.setdefault(instruction.upper(), []).append(rest.strip())
    return stage


def _clear_hub_environment(monkeypatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CHAOSHUB_", "AUTH_", "DASHBOARD_", "EXPERIMENT_")) or key in (
                "SECRET_KEY", "REDIS_URL", "PUBLIC_URL"):
            monkeypatch.delenv(key)
