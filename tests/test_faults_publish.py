"""A publish whose answer is lost (the connection drops after the hub did the work) and that the
client sends again makes one execution, one run: never two."""

from __future__ import annotations

import pytest
import requests
from chaoshub_client.control import HubReporter, HubSettings

from tests.experiment_data import experiment, journal
from tests.fault_servers import bearer_session, cutting_proxy, hub, hub_env

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-publish")
    with hub(root, hub_env(root), workers=1) as running:
        _, secret = bearer_session(running.url, "alice")
        with cutting_proxy(running.url) as proxy:
            yield running.url, proxy, secret


def executions(url: str, secret: str, experiment_id: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/experiments/{experiment_id}/executions",
                          headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["executions"]


def test_a_journal_published_again_after_a_lost_answer_is_one_execution(served, tmp_path):
    url, proxy, secret = served
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {secret}"
    saved = http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                      json=experiment()).json()
    publish = f"{proxy.url}/api/alice/Personal/experiment/{saved['id']}/execution"

    proxy.cut = 1
    with pytest.raises(requests.ConnectionError):
        http.post(publish, json=journal(), headers={"Idempotency-Key": "run-1"}, timeout=10)
    again = http.post(publish, json=journal(), headers={"Idempotency-Key": "run-1"}, timeout=10)
    assert again.status_code == 201, again.text
    first = executions(url, secret, saved["id"])
    print(f"\nlegacy publish: {proxy.cuts} answer cut, sent twice, "
          f"{len(first)} execution(s) kept")
    assert [e["id"] for e in first] == [again.json()["id"]]

    # The hub's Chaos Toolkit control: its run opened, then its journal sent, each answer
    # lost once; it retries by itself.
    reporter = HubReporter(HubSettings(proxy.url, secret, "alice", "Personal"), tmp_path)
    proxy.cut = 1
    run_id = reporter._open({**experiment(), "title": "Reported by the control"})
    assert run_id is not None
    proxy.cut = 1
    outcome, said = reporter._put_journal(run_id, {**journal(), "start": "2026-02-02T10:00:00Z"})
    assert outcome == "sent", said
    reported = reporter.experiment_id
    runs = http.get(f"{url}/api/v1/experiments/{reported}/runs").json()["runs"]
    kept = executions(url, secret, reported)
    print(f"control: {proxy.cuts} answers cut in all; {len(runs)} run(s) opened, "
          f"{len(kept)} execution(s) kept")
    assert len(kept) == 1
    assert [r["id"] for r in runs] == [run_id]
