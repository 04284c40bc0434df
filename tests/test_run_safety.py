"""What keeps runs safe: a workspace's run policy (at request time and at the worker) and an
org's kill switch."""

from __future__ import annotations

import json

import pytest

from chaoshub.dashboard.schemas import RunPolicy
from chaoshub.experiment import policy, runs, worker
from tests.conftest import FIXTURES, csrf, post_json, signed_up_client
from tests.experiment_data import create, make_token

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]
POLICY = "/api/v1/orgs/{org}/workspaces/{ws}/policy"


def process(name: str, path: str = "/bin/true", arguments=None, kind: str = "action") -> dict:
    return {"type": kind, "name": name, "provider": {
        "type": "process", "path": path, "arguments": arguments or [], "timeout": 30}}


def runnable(method=None, **extra) -> dict:
    return {"title": "Safe", "description": "d",
            "steady-state-hypothesis": {"title": "ok", "probes": [
                {**process("alive", kind="probe"), "tolerance": 0}]},
            "method": method or [process("act")], **extra}


def put(client, url: str, body):
    return client.put(url, json=body, headers={"X-CSRF-Token": csrf(client)})


def start(app, token: str, experiment_id: str, body=None):
    return app.test_client().post(f"/api/v1/experiments/{experiment_id}/runs",
                                  json=body or {}, headers={"Authorization": f"Bearer {token}"})


# The policy itself ----------------------------------------------------------------------------


def test_the_default_policy_allows_processes_http_and_extensions_and_nothing_that_runs_a_shell():
    allowed = runnable([
        process("act"),
        {"type": "probe", "name": "k8s", "provider": {
            "type": "python", "module": "chaosk8s.pod.probes", "func": "pods_in_phase"}},
        {"type": "probe", "name": "web", "provider": {
            "type": "http", "url": "https://example.com/health", "timeout": 3}},
    ])
    assert policy.violations(allowed, RunPolicy()) == []
    refused = runnable(
        [{"type": "action", "name": "shell", "provider": {
            "type": "python", "module": "os", "func": "system",
            "arguments": {"command": "id"}}},
         process("string", "/bin/echo", "hi; id"),
         process("sh", "/bin/sh", ["-c", "id"]),
         process("python", "/usr/bin/python3.12", ["-c", "print(1)"]),
         process("relative", "curl"),
         process("downloaded", "/tmp/run/evil.sh"),
         process("awk", "/usr/bin/awk", ["BEGIN { system(\"id\") }"]),
         process("dotted", "/bin/../bin/sh", ["-c", "id"]),
         {"type": "probe", "name": "metadata", "provider": {
             "type": "http", "url": "http://169.254.169.254/latest/meta-data/"}},
         {"type": "probe", "name": "hub", "provider": {
             "type": "python", "module": "chaoshub.core.claims", "func": "sign"}},
         {"type": "probe", "name": "unlisted", "provider": {
             "type": "python", "module": "requests", "func": "get"}},
         # Allowed modules, but what they hold under these names runs a shell or loads code.
         {"type": "probe", "name": "reexported", "provider": {
             "type": "python", "module": "chaosk8s.pod.probes", "func": "system"}},
         {"type": "probe", "name": "dotted", "provider": {
             "type": "python", "module": "chaosk8s", "func": "os.system"}},
         {"type": "probe", "name": "private", "provider": {
             "type": "python", "module": "chaosk8s", "func": "__builtins__"}}],
        runtime={"python": {"dependencies": ["x"]}},
        secrets={"db": {"password": {"type": "vault", "path": "secret/db"}}},
        configuration={"dynamic": {"type": "probe", "name": "p", "provider": {
            "type": "python", "module": "subprocess", "func": "run"}},
            "controls": {"type": "probe", "name": "q", "provider": {
                "type": "python", "module": "chaosaws.ec2.actions", "func": "system"}}},
        controls=[{"name": "c", "provider": {"type": "python", "module": "pickle"}}],
    )
    assert sorted(p["pointer"] for p in policy.violations(refused, RunPolicy())) == sorted([
        "/method/0/provider/module", "/method/1/provider/arguments",
        "/method/2/provider/path", "/method/3/provider/path", "/method/4/provider/path",
        "/method/5/provider/path", "/method/6/provider/path", "/method/7/provider/path",
        "/method/8/provider/url", "/method/9/provider/module", "/method/10/provider/module",
        "/method/11/provider/func", "/method/12/provider/func", "/method/13/provider/func",
        "/runtime/python", "/secrets/db/password", "/configuration/dynamic/provider/module",
        "/configuration/controls/provider/func",
        "/controls/0/provider/module",
    ])


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/", "http://[fe80::1]/", "http://metadata.google.internal./",
    "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/latest/"])
def test_cloud_metadata_is_refused_however_its_address_is_written(url):
    document = runnable([{"type": "probe", "name": "m", "provider": {"type": "http", "url": url}}])
    assert [p["pointer"] for p in policy.violations(document, RunPolicy())] == [
        "/method/0/provider/url"]


def test_a_policy_narrows_programs_hosts_and_provider_types():
    narrow = RunPolicy(provider_types=["process", "http"], process_paths=["/bin/true"],
                       http_hosts=["status.example.com"])
    document = runnable([
        process("ok"), process("sleep", "/bin/sleep", ["1"]),
        {"type": "probe", "name": "web", "provider": {"type": "http",
                                                      "url": "https://other.example.com/"}},
        {"type": "probe", "name": "py", "provider": {"type": "python",
                                                     "module": "chaosk8s.pod.probes"}},
    ])
    assert [p["pointer"] for p in policy.violations(document, narrow)] == [
        "/method/1/provider/path", "/method/2/provider/url", "/method/3/provider/type"]


# The policy's API -----------------------------------------------------------------------------


def test_maintainers_change_the_policy_members_read_it_outsiders_do_not_see_it(app):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    signed_up_client(app, "eve")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    post_json(alice, "/api/v1/orgs/team/members", {"username": "bob", "role": "member"})
    url = POLICY.format(org="team", ws="ops")
    assert alice.get(url).get_json() == RunPolicy().model_dump(mode="json")
    changed = put(alice, url, {"max_concurrent_runs": 1, "dry_run_first": True})
    assert changed.status_code == 200, changed.get_json()
    assert bob.get(url).get_json()["max_concurrent_runs"] == 1
    assert put(bob, url, {"max_concurrent_runs": 9}).status_code == 403
    eve = app.test_client()
    signed_up = signed_up_client(app, "eve2")
    assert signed_up.get(url).status_code == 404 and eve.get(url).status_code == 401
    token = make_token(alice, ["experiments:read"])
    assert app.test_client().put(url, json={}, headers={
        "Authorization": f"Bearer {token}"}).status_code == 403  # a session only
    bad = put(alice, url, {"provider_types": ["shell"], "max_concurrent_runs": 0, "x": 1})
    assert bad.status_code == 422
    assert sorted(p["pointer"] for p in bad.get_json()["details"]) == [
        "/max_concurrent_runs", "/provider_types/0", "/x"]
    log = alice.get("/api/v1/orgs/team/audit").get_json()
    assert "workspace.run_policy_changed" in [e["event"] for e in log["entries"]]


# Runs under the policy ------------------------------------------------------------------------


def test_a_violation_is_refused_at_request_time_and_again_at_the_worker(app):
    alice = signed_up_client(app, "alice")
    token = make_token(alice, RUNNER)
    unsafe = create(alice, document=runnable([
        {"type": "action", "name": "shell", "provider": {
            "type": "python", "module": "os", "func": "system", "arguments": {"command": "id"}}},
        process("string", "/bin/echo", "hi; id")]))
    refused = start(app, token, unsafe["id"])
    assert refused.status_code == 403
    assert [p["pointer"] for p in refused.get_json()["details"]] == [
        "/method/0/provider/module", "/method/1/provider/arguments"]

    safe = create(alice, document=runnable([process("sleep", "/bin/sleep", ["1"])]))
    queued = start(app, token, safe["id"]).get_json()
    # The policy tightens while the run waits: the worker refuses it.
    assert put(alice, POLICY.format(org="alice", ws="Personal"),
               {"process_paths": ["/bin/true"]}).status_code == 200
    with app.app_context():
        assert worker.execute(queued["id"], "test-worker") == "refused"
        row = runs.load_run(queued["id"])
    assert row.status == "refused" and row.execution_id is None
    assert "/method/0/provider/path" in row.reason
    log = alice.get("/api/v1/orgs/alice/audit").get_json()["entries"]
    assert [e["event"] for e in log if e["event"].startswith("run.")] == [
        "run.started", "run.refused"]
    feed = [e["kind"] for e in alice.get("/api/v1/orgs/alice/activity").get_json()["entries"]]
    assert "run.refused" in feed


def test_concurrency_and_dry_run_first_are_enforced(app):
    alice = signed_up_client(app, "alice")
    token = make_token(alice, RUNNER)
    saved = create(alice, document=runnable())
    url = POLICY.format(org="alice", ws="Personal")
    assert put(alice, url, {"max_concurrent_runs": 1}).status_code == 200
    assert start(app, token, saved["id"]).status_code == 202
    second = start(app, token, saved["id"])
    assert second.status_code == 409 and "at once" in second.get_json()["message"]

    other = create(alice, document=runnable([process("other")]))
    assert put(alice, url, {"max_concurrent_runs": 5, "dry_run_first": True}).status_code == 200
    real = start(app, token, other["id"])
    assert real.status_code == 403
    assert real.get_json()["details"] == [
        {"pointer": "/dry", "message": "run version 1 with \"dry\": \"activities\" first"}]
    assert start(app, token, other["id"], {"dry": "activities"}).status_code == 202


def test_a_dry_run_that_passed_opens_the_way_to_the_real_one(app):
    alice = signed_up_client(app, "alice")
    token = make_token(alice, RUNNER)
    saved = create(alice, document=runnable())
    assert put(alice, POLICY.format(org="alice", ws="Personal"),
               {"dry_run_first": True}).status_code == 200
    start(app, token, saved["id"], {"dry": "activities"})
    with app.app_context():
        assert worker.poll(until_idle=True) == 1
    assert start(app, token, saved["id"]).status_code == 202


# The kill switch ------------------------------------------------------------------------------


def test_the_kill_switch_aborts_the_orgs_runs_and_refuses_new_ones_until_released(app):
    alice = signed_up_client(app, "alice")
    viewer = signed_up_client(app, "victor")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    post_json(alice, "/api/v1/orgs/team/members", {"username": "victor", "role": "viewer"})
    token = make_token(alice, [*RUNNER, "experiments:write"])
    saved = create(alice, "team", "ops", runnable())
    queued = start(app, token, saved["id"]).get_json()
    laptop = app.test_client().post("/api/v1/runs", json={
        "org": "team", "workspace": "ops", "experiment": runnable(), "experiment_id": saved["id"]},
        headers={"Authorization": f"Bearer {token}"}).get_json()

    switch = "/api/v1/orgs/team/kill-switch"
    assert post_json(viewer, switch, {"engaged": True}).status_code == 422  # say why
    engaged = post_json(viewer, switch, {"engaged": True, "reason": "prod is on fire"})
    assert engaged.status_code == 200, engaged.get_json()
    assert engaged.get_json()["engaged"] and engaged.get_json()["changed_by_name"] == "victor"

    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get(f"/api/v1/runs/{queued['id']}", headers=bearer).get_json()[
        "status"] == "aborted"
    assert app.test_client().get(f"/api/v1/runs/{laptop['id']}/state", headers=bearer
                                 ).get_json() == {"desired": "abort"}
    refused = start(app, token, saved["id"])
    assert refused.status_code == 409 and "prod is on fire" in refused.get_json()["message"]

    assert post_json(viewer, switch, {"engaged": False}).status_code == 403
    released = post_json(alice, switch, {"engaged": False})
    assert released.status_code == 200 and not released.get_json()["engaged"]
    assert start(app, token, saved["id"]).status_code == 202
    log = [e["event"] for e in alice.get("/api/v1/orgs/team/audit").get_json()["entries"]]
    assert {"org.kill_switch_engaged", "org.kill_switch_released"} <= set(log)
    assert viewer.get(switch).get_json()["engaged"] is False


def test_a_journal_sent_for_a_run_that_never_ran_is_refused_and_opens_no_way(app):
    alice = signed_up_client(app, "alice")
    token = make_token(alice, RUNNER)
    saved = create(alice, document=runnable())
    assert put(alice, POLICY.format(org="alice", ws="Personal"),
               {"dry_run_first": True}).status_code == 200
    dry = start(app, token, saved["id"], {"dry": "activities"}).get_json()
    journal = {**json.loads((FIXTURES / "journal.json").read_text())}
    forged = app.test_client().put(f"/api/v1/runs/{dry['id']}/journal", json=journal,
                                   headers={"Authorization": f"Bearer {token}"})
    assert forged.status_code == 403  # only its worker reports a run on the hub
    assert start(app, token, saved["id"]).status_code == 403  # still a dry run first


def test_a_host_written_by_substitution_passes_only_where_no_host_list_is_kept():
    document = runnable([{"type": "probe", "name": "web", "provider": {
        "type": "http", "url": "${base_url}/health"}}])
    assert policy.violations(document, RunPolicy()) == []
    listed = RunPolicy(http_hosts=["status.example.com"])
    assert [p["pointer"] for p in policy.violations(document, listed)] == [
        "/method/0/provider/url"]
    written = runnable([{"type": "probe", "name": "web", "provider": {
        "type": "http", "url": "https://status.example.com/${path}"}}])
    assert policy.violations(written, listed) == []


def test_every_kind_of_shell_and_program_runner_is_refused_by_default():
    for path in ("/usr/bin/rbash", "/usr/bin/ld.so", "/usr/bin/prlimit", "/usr/bin/setpriv",
                 "/usr/bin/perl5.36-x86_64-linux-gnu", "/usr/local/bin/pip3.12",
                 "/usr/bin/pydoc3", "/usr/bin/python3.12", "/usr/bin/timeout"):
        document = runnable([process("x", path, ["-c", "id"])])
        assert [p["pointer"] for p in policy.violations(document, RunPolicy())] == [
            "/method/0/provider/path"], path
