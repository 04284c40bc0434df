"""The page of changes between two versions of an experiment, through the Flask test client."""

from __future__ import annotations

import html
from unittest.mock import patch

from chaoshub.experiment import diff
from chaoshub.experiment.diff import UNSET, PathChange
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, experiment

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def put(browser, experiment_id: str, document, message: str = "") -> int:
    """Save a new document; the version it made."""
    answer = browser.put(f"/api/v1/experiments/{experiment_id}", json=document,
                         query_string={"message": message},
                         headers={"X-CSRF-Token": csrf(browser)})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["version"]


def second_version() -> dict:
    """The sample with a new title, `run-true` slower, `read-marker-size` gone and a new
    rollback."""
    changed = experiment()
    changed["title"] = "A better title"
    changed["method"][0]["provider"]["timeout"] = 10
    del changed["method"][1]
    changed["rollbacks"].append({"type": "action", "name": "say-done",
                                 "provider": {"type": "process", "path": "echo"}})
    return changed


def page(browser, path: str, **query):
    return browser.get(path, query_string=query, headers=BROWSER)


def section(text: str, key: str) -> str:
    """The HTML of the page's section whose test id is `key` ("" when absent)."""
    start = text.find(f'data-testid="{key}"')
    return "" if start < 0 else text[start:text.find("</section>", start)]


def test_the_page_shows_what_was_added_removed_and_changed(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    base = f"/alice/Personal/experiment/{created['id']}"
    assert put(alice, created["id"], second_version(), "tighter <timeout>") == 2

    answer = page(alice, f"{base}/versions/diff", **{"from": 1, "to": 2})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "Changes from v1 to v2" in text
    assert "tighter &lt;timeout&gt;" in text and "<timeout>" not in text  # escaped
    assert "alice" in section(text, "to-version")
    assert ">created</p>" in section(text, "from-version")

    method = html.unescape(section(text, "section-method"))
    assert 'data-testid="removed"' in method and "read-marker-size" in method
    assert 'data-testid="changed"' in method and "run-true" in method
    # The one key that changed, not the whole provider twice.
    assert '<span data-testid="changed-fields">provider.timeout</span>' in method
    assert ('<th scope="row"><code>provider.timeout</code></th>'
            '<td><pre class="output before" data-testid="before">5</pre></td>'
            '<td><pre class="output after" data-testid="after">10</pre></td>') in method
    assert '"timeout": 5' in method and '"timeout": 10' in method  # the whole, folded
    assert 'data-testid="reordered"' not in method
    rollbacks = html.unescape(section(text, "section-rollbacks"))
    assert 'data-testid="added"' in rollbacks and "say-done" in rollbacks
    assert 'data-testid="section-hypothesis"' not in text
    fields = html.unescape(section(text, "fields"))
    assert "<code>title</code>" in fields and '"A better title"' in fields
    assert "Unchanged: Steady-state hypothesis." in text
    # The form picks another pair; the swap link reverses this one.
    assert f'action="{base}/versions/diff"' in text
    assert '<option value="2" selected>v2: tighter &lt;timeout&gt;</option>' in text
    assert f'href="{base}/versions/diff?from=2&amp;to=1"' in text

    swapped = html.unescape(page(alice, f"{base}/versions/diff", **{"from": 2, "to": 1})
                            .get_data(as_text=True))
    assert 'data-testid="added"' in section(swapped, "section-method")
    assert 'data-testid="removed"' in section(swapped, "section-rollbacks")


def test_a_new_order_and_the_hypothesis_fields_show(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    base = f"/alice/Personal/experiment/{created['id']}"
    moved = experiment()
    hypothesis = moved["steady-state-hypothesis"]
    hypothesis["probes"].reverse()
    hypothesis["title"] = "The marker is there"
    put(alice, created["id"], moved)
    text = html.unescape(page(alice, f"{base}/versions/diff", **{"from": 1, "to": 2})
                         .get_data(as_text=True))
    shown = section(text, "section-hypothesis")
    assert "order changed" in shown
    assert "marker-file-exists → marker-file-test-succeeds; " in shown
    assert "marker-file-test-succeeds → marker-file-exists" in shown
    fields = section(text, "fields")
    assert "<code>steady-state-hypothesis.title</code>" in fields
    assert '"The marker is there"' in fields and '"title":' not in fields


def test_identical_versions_say_there_is_no_difference(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    base = f"/alice/Personal/experiment/{created['id']}"
    put(alice, created["id"], second_version())
    assert put(alice, created["id"], experiment(), "back to the first") == 3
    text = page(alice, f"{base}/versions/diff", **{"from": 1, "to": 3}).get_data(as_text=True)
    assert "No differences" in text and "v1 and v3 have the same document." in text
    assert 'data-testid="section-' not in text
    same = page(alice, f"{base}/versions/diff", **{"from": 2, "to": 2})
    assert same.status_code == 200
    assert "This is the same version twice." in same.get_data(as_text=True)


def test_unknown_versions_are_not_found(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    path = f"/alice/Personal/experiment/{created['id']}/versions/diff"
    missing = page(alice, path, **{"from": 1, "to": 9})
    assert missing.status_code == 404
    assert "this experiment has no version 9" in missing.get_data(as_text=True)
    for number in ("0", str(2**31 - 1), str(2**31), str(2**63), "9" * 5000):
        answer = page(alice, path, **{"from": number, "to": 1})
        assert answer.status_code == 404, number
        assert answer.mimetype == "text/html"
    assert page(alice, path, **{"from": "0" * 5000 + "1", "to": 1}).status_code == 200
    assert page(alice, "/alice/Personal/experiment/nope/versions/diff",
                **{"from": 1, "to": 1}).status_code == 404


def test_bad_or_missing_versions_are_a_bad_request(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    path = f"/alice/Personal/experiment/{created['id']}/versions/diff"
    for query in ({}, {"from": 1}, {"to": 1}, {"from": "", "to": 1}, {"from": "one", "to": 1},
                  {"from": "-1", "to": 1}, {"from": "1.5", "to": 1}, {"from": " 1", "to": 1},
                  {"from": "²", "to": 1}, {"from": 1, "to": "1e3"}):
        answer = page(alice, path, **query)
        assert answer.status_code == 400, query
        assert "That did not work" in answer.get_data(as_text=True)


def test_outsiders_and_other_workspaces_find_nothing(app):
    alice = signed_up_client(app, "alice")
    private = create(alice)
    public = create(alice, workspace="Public")
    put(alice, public["id"], second_version())
    bob = signed_up_client(app, "bob")
    versions = {"from": 1, "to": 1}
    private_path = f"/alice/Personal/experiment/{private['id']}/versions/diff"
    assert page(bob, private_path, **versions).status_code == 404
    assert page(bob, private_path, **{"from": "x"}).status_code == 404  # not a 400 either
    assert page(app.test_client(), private_path, **versions).status_code == 404
    # The experiment exists, but not in the workspace the URL names.
    assert page(alice, f"/alice/Public/experiment/{private['id']}/versions/diff",
                **versions).status_code == 404
    assert page(alice, f"/bob/Personal/experiment/{private['id']}/versions/diff",
                **versions).status_code == 404
    # A public workspace's versions are anyone's to read.
    shown = page(bob, f"/alice/Public/experiment/{public['id']}/versions/diff",
                 **{"from": 1, "to": 2})
    assert shown.status_code == 200 and "read-marker-size" in shown.get_data(as_text=True)


def test_the_experiment_page_links_each_version_to_its_changes(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    put(alice, created["id"], second_version())
    text = page(alice, f"/alice/Personal/experiment/{created['id']}").get_data(as_text=True)
    assert (f'href="/alice/Personal/experiment/{created["id"]}/versions/diff?from=1&amp;to=2"'
            in text)
    assert "changes since v1" in text
    assert f'href="/api/v1/experiments/{created["id"]}/diff?from=1&amp;to=2"' in text


# The values that changed, by path -------------------------------------------------------


def test_one_changed_key_of_a_provider_is_one_change():
    before = {"type": "action", "name": "run-true",
              "provider": {"type": "process", "path": "true", "timeout": 5}}
    after = {**before, "provider": {**before["provider"], "timeout": 10}}
    assert diff.changes(before, after) == [PathChange("provider.timeout", 5, 10)]
    assert diff.changes(before, before) == []


def test_nested_dicts_and_lists_name_the_innermost_value():
    before = {"provider": {"arguments": {"headers": {"x-team": "sre"}, "ports": [80, 443],
                                          "checks": [{"path": "/", "code": 200}]}}}
    after = {"provider": {"arguments": {"headers": {"x-team": "ops"}, "ports": [80, 8443],
                                         "checks": [{"path": "/", "code": 204}]}}}
    assert diff.changes(before, after) == [
        PathChange("provider.arguments.headers.x-team", "sre", "ops"),
        PathChange("provider.arguments.ports[1]", 443, 8443),
        PathChange("provider.arguments.checks[0].code", 200, 204),
    ]


def test_added_and_removed_keys_and_items():
    before = {"provider": {"arguments": ["-f", "/tmp/marker"], "timeout": 5}}
    after = {"provider": {"arguments": ["-v", "-f", "/tmp/marker"], "secrets": ["k8s"]}}
    # One inserted argument is one addition: the others did not change.
    assert diff.changes(before, after) == [
        PathChange("provider.arguments[0]", UNSET, "-v"),
        PathChange("provider.timeout", 5, UNSET),
        PathChange("provider.secrets", UNSET, ["k8s"]),
    ]
    assert diff.changes([1, 2, 3], [1, 3]) == [PathChange("[1]", 2, UNSET)]


def test_a_value_of_another_type_changes_as_a_whole():
    assert diff.changes({"tolerance": True}, {"tolerance": 1}) == [
        PathChange("tolerance", True, 1)]
    assert diff.changes({"a": {"b": 1}}, {"a": [1]}) == [PathChange("a", {"b": 1}, [1])]
    assert diff.changes({"a": None}, {}) == [PathChange("a", None, UNSET)]


def test_odd_keys_are_quoted():
    assert [c.path for c in diff.changes({"a b": 1, "x": {"é.": 1}}, {"a b": 2, "x": {"é.": 2}})
            ] == ['["a b"]', 'x["é."]']


def test_the_page_shows_paths_in_nested_arguments(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    base = f"/alice/Personal/experiment/{created['id']}"
    changed = experiment()
    changed["method"][2]["provider"]["arguments"][1] = "/tmp/other-marker"
    changed["configuration"] = {"marker_path": "/tmp/a"}
    put(alice, created["id"], changed)
    text = html.unescape(page(alice, f"{base}/versions/diff", **{"from": 1, "to": 2})
                         .get_data(as_text=True))
    method = section(text, "section-method")
    assert 'data-testid="changed-fields">provider.arguments[1]<' in method
    assert '"/tmp/other-marker"</pre>' in method
    fields = section(text, "fields")
    assert "<code>configuration.marker_path</code>" in fields
    assert '"/tmp/chaoshub-demo/marker.txt"</pre>' in fields and '"/tmp/a"</pre>' in fields


def test_long_lists_are_compared_index_by_index_in_linear_time():
    # Aligning [0, 1, 0, 1, ...] with [1, 0, 1, 0, ...] took seconds at this length (quadratic),
    # minutes for the longest list a document may hold.
    before, after = {"data": [0, 1] * 6000}, {"data": [1, 0] * 6000}
    # No alignment at this length: counted, not timed (a busy machine makes any time lie).
    with patch.object(diff, "SequenceMatcher", side_effect=AssertionError("aligned")):
        found = diff.changes(before, after)
    assert len(found) == 12000 and found[0] == PathChange("data[0]", 0, 1)
    # Index by index, one changed item of a long list is still one change.
    edited = {"data": [*before["data"][:-1], 7]}
    assert diff.changes(before, edited) == [PathChange("data[11999]", 1, 7)]
    assert diff.changes(before, {"data": [*before["data"], 5]}) == [
        PathChange("data[12000]", UNSET, 5)]
