"""Workers say which Chaos Toolkit extensions they have; a run needing one no worker has is
refused when it is asked for."""

from __future__ import annotations

from chaoshub.experiment import workers
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, make_token

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]


def fake_extension(folder, name: str, version: str, module: str) -> None:
    """An installed distribution, as pip leaves its metadata (nothing to import)."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{module}\n")


def needing(module: str) -> dict:
    return {"title": f"Needs {module}", "description": "d",
            "steady-state-hypothesis": {"title": "ok", "probes": [{
                "type": "probe", "name": "p", "tolerance": True, "provider": {
                    "type": "python", "module": f"{module}.probes", "func": "ok"}}]},
            "method": []}


def test_a_worker_announces_its_extensions_and_runs_needing_others_are_refused(
        app, tmp_path, monkeypatch):
    fake_extension(tmp_path, "chaostoolkit-fake", "1.2.3", "chaosfake")
    monkeypatch.syspath_prepend(str(tmp_path))
    alice = signed_up_client(app, "alice")
    token = make_token(alice, RUNNER)
    headers = {"Authorization": f"Bearer {token}"}
    has, lacks = create(alice, document=needing("chaosfake")), create(
        alice, document=needing("chaosk8s"))

    def start(experiment):
        return app.test_client().post(f"/api/v1/experiments/{experiment['id']}/runs",
                                      json={}, headers=headers)

    # No worker heard of yet: the run waits for one rather than being refused.
    assert start(lacks).status_code == 202
    with app.app_context():
        workers.announce("host-a:100")
    listed = alice.get("/api/v1/workers").get_json()["workers"]
    assert [(w["name"], w["extensions"]) for w in listed] == [
        ("host-a:100", [{"name": "chaostoolkit-fake", "version": "1.2.3",
                         "modules": ["chaosfake"]}])]
    assert start(has).status_code == 202
    # The default policy allows the extensions the workers have, and no other.
    refused = start(lacks)
    assert refused.status_code == 403
    assert [p["pointer"] for p in refused.get_json()["details"]] == [
        "/steady-state-hypothesis/probes/0/provider/module"]
    # A policy that names the module lets it through to a check of the workers.
    assert alice.put("/api/v1/orgs/alice/workspaces/Personal/policy",
                     json={"python_modules": ["chaosk8s", "chaosfake"]},
                     headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    missing = start(lacks)
    assert missing.status_code == 409
    assert missing.get_json()["details"] == [{
        "pointer": "/steady-state-hypothesis/probes/0/provider/module",
        "message": "no worker has the module chaosk8s: install the Chaos Toolkit extension "
                   "that provides it on a worker"}]
    assert app.test_client().get("/api/v1/workers").status_code == 401


def test_the_hubs_own_packages_are_not_extensions():
    names = {e.name.lower() for e in workers.installed_extensions()}
    assert not names & {"chaostoolkit", "chaostoolkit-lib", "chaoshub", "chaoshub-client"}
