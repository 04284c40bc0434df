"""Experiment versions, diffs, updates, deletes, YAML, size limits, and workspace listings."""

from __future__ import annotations

import json

import yaml

from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, journal, make_token


def put(browser, experiment_id: str, document, **kwargs):
    return browser.put(f"/api/v1/experiments/{experiment_id}", json=document,
                       headers={"X-CSRF-Token": csrf(browser)}, **kwargs)


def test_every_change_makes_a_version_and_identical_documents_do_not(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    assert created["version"] == 1
    same = put(alice, created["id"], experiment())
    assert same.status_code == 200
    assert (same.get_json()["version"], same.get_json()["changed"]) == (1, False)

    changed = experiment()
    changed["title"] = "A better title"
    changed["method"][0]["provider"]["timeout"] = 10
    del changed["method"][1]
    changed["rollbacks"].append({"type": "action", "name": "say-done",
                                 "provider": {"type": "process", "path": "echo"}})
    updated = alice.put(f"/api/v1/experiments/{created['id']}?message=tighter+timeout",
                        json=changed, headers={"X-CSRF-Token": csrf(alice)})
    assert updated.status_code == 200
    assert (updated.get_json()["version"], updated.get_json()["changed"]) == (2, True)
    assert alice.get(f"/api/v1/experiments/{created['id']}").get_json()["title"] == \
        "A better title"

    listed = alice.get(f"/api/v1/experiments/{created['id']}/versions").get_json()["versions"]
    assert [v["number"] for v in listed] == [2, 1]
    assert listed[0]["message"] == "tighter timeout" and listed[0]["author_name"] == "alice"
    assert listed[0]["content_hash"] != listed[1]["content_hash"]
    first = alice.get(f"/api/v1/experiments/{created['id']}/versions/1").get_json()
    assert first["document"] == experiment()
    assert alice.get(f"/api/v1/experiments/{created['id']}/versions/3").status_code == 404

    diff = alice.get(f"/api/v1/experiments/{created['id']}/diff?from=1&to=2").get_json()
    assert diff["method"]["removed"] == ["read-marker-size"]
    assert diff["method"]["changed"] == [{"name": "run-true", "fields": ["provider"]}]
    assert diff["rollbacks"]["added"] == ["say-done"]
    assert diff["hypothesis"] == {"added": [], "removed": [], "changed": [], "reordered": False}
    assert [f["field"] for f in diff["fields"]] == ["title"]
    assert alice.get(f"/api/v1/experiments/{created['id']}/diff?from=1").status_code == 400


def test_yaml_in_and_out_and_safe_loading_only(app):
    alice = signed_up_client(app, "alice")
    body = yaml.safe_dump(experiment())
    created = alice.post("/api/v1/orgs/alice/workspaces/Personal/experiments", data=body,
                         headers={"Content-Type": "application/x-yaml",
                                  "X-CSRF-Token": csrf(alice)})
    assert created.status_code == 201, created.get_json()
    experiment_id = created.get_json()["id"]
    download = alice.get(f"/api/v1/experiments/{experiment_id}?format=yaml")
    assert download.mimetype == "application/x-yaml"
    assert yaml.safe_load(download.data) == experiment()
    by_accept = alice.get(f"/api/v1/experiments/{experiment_id}",
                          headers={"Accept": "application/x-yaml"})
    assert yaml.safe_load(by_accept.data) == experiment()

    unsafe = "!!python/object/apply:os.system ['true']\n"
    refused = alice.put(f"/api/v1/experiments/{experiment_id}", data=unsafe,
                        headers={"Content-Type": "text/yaml", "X-CSRF-Token": csrf(alice)})
    assert refused.status_code == 400 and "YAML" in refused.get_json()["message"]


def test_bad_bodies_get_400_413_and_422(app):
    app.config["EXPERIMENT_MAX_BYTES"] = 4096
    alice = signed_up_client(app, "alice")
    created = create(alice)
    url = f"/api/v1/experiments/{created['id']}"
    headers = {"X-CSRF-Token": csrf(alice), "Content-Type": "application/json"}
    assert alice.put(url, data="{not json", headers=headers).status_code == 400
    assert alice.put(url, data="[1, 2]", headers=headers).status_code == 400
    assert alice.put(url, data='{"title": NaN}', headers=headers).status_code == 400
    big = experiment()
    big["description"] = "x" * 5000
    too_large = alice.put(url, data=json.dumps(big), headers=headers)
    assert too_large.status_code == 413
    assert too_large.get_json()["error"] == "payload_too_large"
    invalid = put(alice, created["id"], {"title": "t", "method": "nope"})
    assert invalid.status_code == 422
    assert {p["pointer"] for p in invalid.get_json()["details"]} == {"", "/method"}
    assert len(alice.get(f"{url}/versions").get_json()["versions"]) == 1


def test_only_writers_change_or_delete_and_delete_takes_the_executions(app):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    private = create(alice)
    public = create(alice, workspace="Public")
    assert put(bob, private["id"], experiment()).status_code == 404
    assert put(bob, public["id"], experiment()).status_code == 403
    assert bob.delete(f"/api/v1/experiments/{public['id']}",
                      headers={"X-CSRF-Token": csrf(bob)}).status_code == 403

    published = post_json(alice, f"/api/v1/experiments/{public['id']}/executions", journal())
    assert published.status_code == 201
    execution_id = published.get_json()["id"]
    deleted = alice.delete(f"/api/v1/experiments/{public['id']}",
                           headers={"X-CSRF-Token": csrf(alice)})
    assert deleted.status_code == 204
    assert alice.get(f"/api/v1/experiments/{public['id']}").status_code == 404
    assert alice.get(f"/api/v1/executions/{execution_id}").status_code == 404
    assert alice.get(f"/api/v1/experiments/{private['id']}").status_code == 200


def test_scopes_guard_reads_and_writes(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    reader = {"Authorization": f"Bearer {make_token(alice, ['experiments:read'])}"}
    assert app.test_client().get(f"/api/v1/experiments/{created['id']}",
                                 headers=reader).status_code == 200
    refused = app.test_client().put(f"/api/v1/experiments/{created['id']}", json=experiment(),
                                    headers=reader)
    assert refused.status_code == 403 and "experiments:write" in refused.get_json()["message"]


def test_listing_pages_by_cursor_filters_by_tag_and_searches_titles(app):
    alice = signed_up_client(app, "alice")
    ids = []
    for n in range(5):
        document = experiment()
        document["title"] = f"{'Network' if n % 2 else 'Disk'} experiment {n}"
        document["tags"] = ["net"] if n % 2 else ["disk", "demo"]
        ids.append(create(alice, document=document)["id"])
    # Touching the first makes it the most recently updated.
    touched = experiment()
    touched["title"] = "Disk experiment 0, revised"
    touched["tags"] = ["disk"]
    put(alice, ids[0], touched)

    url = "/api/v1/orgs/alice/workspaces/personal/experiments"
    first = alice.get(f"{url}?limit=2").get_json()
    assert [e["id"] for e in first["experiments"]] == [ids[0], ids[4]]
    assert "experiment" not in first["experiments"][0]
    second = alice.get(f"{url}?limit=2&cursor={first['next_cursor']}").get_json()
    third = alice.get(f"{url}?limit=2&cursor={second['next_cursor']}").get_json()
    assert [e["id"] for e in second["experiments"] + third["experiments"]] == \
        [ids[3], ids[2], ids[1]]
    assert third["next_cursor"] is None

    tagged = alice.get(f"{url}?tag=net").get_json()["experiments"]
    assert [e["id"] for e in tagged] == [ids[3], ids[1]]
    found = alice.get(f"{url}?search=disk%20exp").get_json()["experiments"]
    assert [e["id"] for e in found] == [ids[0], ids[4], ids[2]]
    assert alice.get(f"{url}?search=100%25").get_json()["experiments"] == []
    assert alice.get(f"{url}?cursor=garbage").status_code == 400
    bob = signed_up_client(app, "bob")
    assert bob.get(url).status_code == 404


def test_versions_page_by_signed_cursor(app):
    alice = signed_up_client(app, "alice")
    created, other = create(alice)["id"], create(alice)["id"]
    for n in range(4):
        changed = experiment()
        changed["title"] = f"Title {n}"
        assert put(alice, created, changed).status_code == 200
    url = f"/api/v1/experiments/{created}/versions"
    seen, cursor = [], None
    while True:
        page = alice.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        assert len(page["versions"]) <= 2
        seen += [v["number"] for v in page["versions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    cursor = alice.get(f"{url}?limit=1").get_json()["next_cursor"]
    assert alice.get(f"/api/v1/experiments/{other}/versions?cursor={cursor}").status_code == 400
    executions = alice.get(f"/api/v1/experiments/{created}/executions?cursor={cursor}")
    assert executions.status_code == 400
    assert alice.get(f"{url}?limit=101").status_code == 400
