"""Prometheus metrics at /metrics: every family after real traffic, route templates as labels,
the optional token and networks, and one scrape adding up gunicorn's workers."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from chaoshub import create_app
from chaoshub.core import metrics
from chaoshub.core.config import ConfigError
from chaoshub.experiment import hub_runs, worker, workers
from tests.conftest import signed_up_client
from tests.experiment_data import create, make_token
from tests.helpers import free_port
from tests.run_data import runnable, wait_for

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]
FAMILIES = ("chaoshub_http_requests", "chaoshub_http_request_duration_seconds",
            "chaoshub_cache_hits", "chaoshub_cache_misses", "chaoshub_db_pool_in_use",
            "chaoshub_db_pool_size", "chaoshub_service_calls",
            "chaoshub_service_call_duration_seconds", "chaoshub_webhook_deliveries",
            "chaoshub_runs_queue_depth", "chaoshub_runs", "chaoshub_worker_leases_held",
            "chaoshub_workers_live")
DASHBOARD = Path(__file__).resolve().parents[1] / "k8s" / "grafana" / "chaoshub-dashboard.json"


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    """Family name -> {(sample name, sorted labels): value}."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        samples = found.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    """The sum of a family's samples named `sample` (the family's own by default) whose labels
    include `labels`."""
    name = sample or family
    return sum(v for (n, found), v in families.get(family, {}).items()
               if n == name and set(labels.items()) <= set(found))


def test_a_scrape_after_traffic_shows_every_family(app, backend):
    client = app.test_client()
    before = scrape(client.get("/metrics").get_data(as_text=True))
    alice = signed_up_client(app, "alice")
    saved = create(alice, document=runnable())
    token = make_token(alice, RUNNER)
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert client.get(f"/api/v1/experiments/{saved['id']}", headers=bearer).status_code == 200
    runs = [client.post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                        headers=bearer).get_json()["id"]]
    with app.app_context():
        assert worker.poll(until_idle=True) == 1  # run to its end: an execution, an outcome
    for _ in range(2):
        runs.append(client.post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                headers=bearer).get_json()["id"])
    with app.app_context():
        assert hub_runs.claim(runs[-1], "metrics-test:1") is not None  # a lease held
        workers.announce("metrics-test:1")
    assert client.get("/no/such/page/here").status_code == 404

    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    after = scrape(answer.get_data(as_text=True))
    assert set(FAMILIES) - {"chaoshub_service_calls", "chaoshub_service_call_duration_seconds"
                            } <= set(after)

    def grew(family: str, sample: str | None = None, **labels) -> float:
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    route = "/api/v1/experiments/<experiment_id>"
    assert grew("chaoshub_http_requests", "chaoshub_http_requests_total", route=route,
                method="GET", status="200") == 3
    assert grew("chaoshub_http_request_duration_seconds",
                "chaoshub_http_request_duration_seconds_count", route=route, method="GET") == 3
    assert grew("chaoshub_http_requests", "chaoshub_http_requests_total",
                route=metrics.UNMATCHED, status="404") == 1
    # Route labels are the app's URL rules, never a raw path with an id in it (the process's
    # other apps, made by other tests, count into the same families: only what grew here).
    rules = {rule.rule for rule in app.url_map.iter_rules()} | {metrics.UNMATCHED}
    earlier = before.get("chaoshub_http_requests", {})
    labelled = {dict(labels)["route"] for (name, labels), count
                in after["chaoshub_http_requests"].items()
                if count > earlier.get((name, labels), 0)}
    assert route in labelled and labelled <= rules
    assert not any(saved["id"] in r for r in labelled)
    assert grew("chaoshub_cache_hits", "chaoshub_cache_hits_total") > 0
    assert grew("chaoshub_cache_misses", "chaoshub_cache_misses_total") > 0
    for service in ("auth", "dashboard", "experiment"):
        assert value(after, "chaoshub_db_pool_size", service=service) > 0
        assert (("chaoshub_db_pool_in_use", (("service", service),))
                in after["chaoshub_db_pool_in_use"])
    # Webhooks: the family is there, before the first delivery too (other tests of this
    # process may have delivered some: the counter is the process's).
    for outcome in ("delivered", "failed"):
        assert (("chaoshub_webhook_deliveries_total", (("outcome", outcome),))
                in after["chaoshub_webhook_deliveries"])
    # At scrape time, from the experiment database (and Redis's queue with PostgreSQL).
    assert value(after, "chaoshub_runs_queue_depth") >= 1
    assert value(after, "chaoshub_runs", status="finished", outcome="passed") == 1
    assert value(after, "chaoshub_runs", status="queued") == 1
    assert value(after, "chaoshub_runs", status="running") == 1
    assert value(after, "chaoshub_worker_leases_held") == 1
    assert value(after, "chaoshub_workers_live") >= 1


def test_calls_to_another_process_are_counted_with_their_latency(settings):
    nobody = f"http://127.0.0.1:{free_port()}"  # auth "lives" where nothing listens
    app = create_app({**settings, "CHAOSHUB_SERVICES": "dashboard,experiment",
                      "AUTH_SERVICE_URL": nobody, "PROXY_HOPS": 0, "SERVICE_TIMEOUT": 2})
    client = app.test_client()
    before = scrape(client.get("/metrics").get_data(as_text=True))
    answer = client.get("/api/v1/orgs", headers={"Authorization": "Bearer chub_" + "x" * 30})
    assert answer.status_code == 503 and answer.get_json()["error"] == "service_unavailable"
    after = scrape(client.get("/metrics").get_data(as_text=True))
    labels = {"service": "auth", "function": "resolve_credentials"}
    assert (value(after, "chaoshub_service_calls", "chaoshub_service_calls_total",
                  outcome="unreachable", **labels)
            - value(before, "chaoshub_service_calls", "chaoshub_service_calls_total",
                    outcome="unreachable", **labels)) == 1
    assert value(after, "chaoshub_service_call_duration_seconds",
                 "chaoshub_service_call_duration_seconds_count", **labels) >= 1


def test_the_metrics_token_is_asked_for_when_set(settings):
    client = create_app({**settings, "METRICS_TOKEN": "scrape-me-please"}).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me-please"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"] == "unauthorized"
        assert "scrape-me-please" not in refused.get_data(as_text=True)
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert allowed.status_code == 200 and b"chaoshub_http_requests_total" in allowed.data


def test_metrics_are_served_only_to_the_allowed_networks(settings):
    app = create_app({**settings, "METRICS_ALLOW": "10.0.0.0/8, fd00::/8",
                      "METRICS_TOKEN": "scrape-me-please"})
    client = app.test_client()
    token = {"Authorization": "Bearer scrape-me-please"}
    refused = client.get("/metrics", headers=token)  # from 127.0.0.1
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    for address in ("10.1.2.3", "fd00::7"):
        inside = client.get("/metrics", headers=token, environ_base={"REMOTE_ADDR": address})
        assert inside.status_code == 200, address
    # Inside the network, the token is still asked for.
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        create_app({**settings, "METRICS_ALLOW": "10.0.0.0/33"})


def test_the_grafana_dashboard_asks_for_families_the_hub_serves():
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    assert len(expressions) >= 8
    served = {f"{name}{suffix}" for name in FAMILIES
              for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    import re

    asked = set(re.findall(r"\bchaoshub_[a-z_]+", " ".join(expressions)))
    assert asked and asked <= served, asked - served
    # Everything the brief of the dashboard names is on it.
    for family in ("chaoshub_http_requests_total", "chaoshub_http_request_duration_seconds_bucket",
                   "chaoshub_cache_hits_total", "chaoshub_db_pool_in_use",
                   "chaoshub_service_call_duration_seconds_bucket", "chaoshub_runs_queue_depth",
                   "chaoshub_runs"):
        assert family in asked, family


# Under gunicorn ------------------------------------------------------------------------------


def test_a_worker_file_still_being_created_leaves_the_scrape_whole(tmp_path, monkeypatch):
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    written = MmapedDict(str(tmp_path / "counter_101.db"))
    written.write_value(json.dumps(["chaoshub_demo", "chaoshub_demo_total", {}, "Demo."]), 3.0, 0)
    written.close()
    # A worker that has opened its file but not yet sized it (or was killed just then).
    (tmp_path / "counter_102.db").touch()

    families = list(metrics._WorkerFiles(multiprocess.MultiProcessCollector).collect())
    assert [(s.name, s.value) for f in families for s in f.samples] == [
        ("chaoshub_demo_total", 3.0)]


@pytest.mark.workers
def test_one_scrape_adds_up_every_gunicorn_worker(tmp_path):
    from tests.fault_servers import hub, hub_env

    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")  # a previous run's: emptied at start
    env = hub_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder), LOG_LEVEL="INFO",
                  CHAOSHUB_LOG_FORMAT="json")
    with hub(tmp_path, env, workers=2) as server:
        assert not (folder / "counter_1.db").exists()
        session_count = 0

        def pids_that_served() -> set[int]:
            return {int(p.stem.rsplit("_", 1)[1]) for p in folder.glob("counter_*.db")
                    if int(p.stem.rsplit("_", 1)[1]) != server.pid}

        def burst() -> set[int]:
            # Fresh connections from several threads at once: the workers share the accepts.
            nonlocal session_count

            def one():
                requests.get(f"{server.url}/status/live", timeout=10,
                             headers={"Connection": "close"}).raise_for_status()

            threads = [threading.Thread(target=one) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            session_count += 16
            return pids_that_served() if len(pids_that_served()) >= 2 else set()

        served = wait_for(burst, 30, "both gunicorn workers serving")
        text = requests.get(f"{server.url}/metrics", timeout=10).text
        live = value(scrape(text), "chaoshub_http_requests", "chaoshub_http_requests_total",
                     route="/status/live", method="GET", status="200")
        # Both workers' counts in one scrape (the wait for the server counted its own).
        assert session_count <= live <= session_count + 60, (live, session_count)
        # One access line per request, from the hub: none of gunicorn's own.
        log = server.log.read_text()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert len([line for line in lines if line.get("logger") == "chaoshub.access"
                    and line["path"] == "/status/live"]) == live
        assert '"GET /status/live HTTP/1.1"' not in log

        # A worker killed: gunicorn's child_exit takes its live gauges out, its counts stay.
        victim = sorted(served)[0]
        assert (folder / f"gauge_livesum_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not (folder / f"gauge_livesum_{victim}.db").exists(), 15,
                 "the dead worker's live gauges removed")
        wait_for(lambda: requests.get(f"{server.url}/status/live", timeout=5).ok, 15,
                 "a worker serving again")
        again = scrape(requests.get(f"{server.url}/metrics", timeout=10).text)
        assert value(again, "chaoshub_http_requests", "chaoshub_http_requests_total",
                     route="/status/live", method="GET", status="200") >= live


def test_webhook_deliveries_count_once_webhooks_deliver(client):
    def failed() -> float:
        return value(scrape(client.get("/metrics").get_data(as_text=True)),
                     "chaoshub_webhook_deliveries", "chaoshub_webhook_deliveries_total",
                     outcome="failed")

    before = failed()
    metrics.webhook_delivery("failed")  # what issue 15's webhooks call after each attempt
    assert failed() == before + 1


def test_a_method_the_hub_does_not_know_is_counted_as_other(client):
    # A client picks the method: each made-up one must not become a series of its own.
    before = scrape(client.get("/metrics").get_data(as_text=True))
    for made_up in ("BREW", "WHEN1", "WHEN2"):
        assert client.open("/status/live", method=made_up).status_code == 405
    after = scrape(client.get("/metrics").get_data(as_text=True))
    methods = {dict(labels).get("method") for _, labels in after["chaoshub_http_requests"]}
    assert not methods & {"BREW", "WHEN1", "WHEN2"}
    assert value(after, "chaoshub_http_requests", "chaoshub_http_requests_total",
                 method="other", status="405") - value(
        before, "chaoshub_http_requests", "chaoshub_http_requests_total",
        method="other", status="405") == 3
