"""Writing experiments in the browser: starters, the check as one types (with lines), creating,
saving a version with a message, deleting after confirmation, and who may do any of it."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import document_text, starters, validation
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import experiment
from tests.test_invitations import claim_for

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PLACE = "/team/alpha"
VALIDATE = f"{PLACE}/experiment/-/validate"
NEW = f"{PLACE}/experiment/-/new"


@pytest.fixture
def team(app):
    """Olga's org `team` with the private workspace alpha; vic is an org viewer, otto an
    outsider. Yields their signed-in browsers."""
    browsers = {name: signed_up_client(app, name) for name in ("olga", "vic", "otto")}
    with app.app_context():
        olga = claim_for("olga")
        dashboard.create_org(olga, "team")
        dashboard.create_workspace(olga, "team", "alpha", "private")
        dashboard.add_member(olga, "team", "vic", "viewer")
    return browsers


def form(browser, path: str, data: dict, **kwargs):
    """A form posted as a browser does: with the page's CSRF token."""
    return browser.post(path, data={"csrf_token": csrf(browser), **data}, headers=BROWSER,
                        **kwargs)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of `needle` in `text`."""
    return text[:text.index(needle)].count("\n") + 1


def created_from_starter(browser, key: str = "process-and-http-probes") -> str:
    answer = form(browser, NEW, {"starter": key})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"].endswith("/edit")
    return answer.headers["Location"].split("/")[-2]


# The starters --------------------------------------------------------------------------------


def test_every_starter_validates_with_the_hub_validator():
    found = starters.all_starters()
    assert [s.key for s in found] == list(starters.ORDER)
    for starter in found:
        assert validation.problems(starter.document) == [], starter.key
        for fmt in document_text.FORMATS:  # and so does the text the editor shows of it
            assert document_text.check(document_text.render(starter.document, fmt), fmt).valid
    modules = json.dumps([s.document for s in found])
    for needed in ('"type": "http"', '"type": "process"', "chaosk8s.pod.actions",
                   "chaosaddons.controls.safeguards"):
        assert needed in modules


def test_a_starter_is_handed_out_as_a_copy():
    first = starters.starter_document("kubernetes-pod-kill")
    first["title"] = "changed"
    assert starters.starter_document("kubernetes-pod-kill")["title"] != "changed"


# Lines of problems ---------------------------------------------------------------------------


def test_a_schema_problem_in_json_is_placed_at_its_line():
    text = document_text.render(experiment(), "json").replace('"path": "rm"', '"path": 7')
    checked = document_text.check(text)
    assert checked.format == "json" and not checked.valid
    assert [(p["pointer"], p["line"]) for p in checked.problems] == [
        ("/method/2/provider/path", line_of(text, '"path": 7'))]


def test_a_json_document_indented_with_tabs_still_gets_lines():
    text = json.dumps(experiment(), indent="\t").replace('"timeout": 5', '"timeout": "5"', 1)
    (found,) = document_text.check(text).problems
    assert found["line"] == line_of(text, '"timeout": "5"')


def test_a_missing_property_is_placed_at_the_object_that_lacks_it():
    document = experiment()
    del document["method"][0]["provider"]["path"]
    text = document_text.render(document, "yaml")
    (found,) = document_text.check(text, "yaml").problems
    assert found["pointer"] == "/method/0/provider" and "'path' is a required" in found["message"]
    # The `provider:` key of the first method activity.
    method = text.index("method:")
    assert found["line"] == line_of(text[method:], "provider:") + line_of(text, "method:") - 1


def test_syntax_errors_carry_the_parsers_line():
    text = document_text.render(experiment(), "json")
    broken = text.replace('"rollbacks": [', '"rollbacks" [')
    (found,) = document_text.check(broken).problems
    assert found["line"] == line_of(broken, '"rollbacks" [')
    assert found["message"].startswith("the document is not valid JSON")
    yaml_text = document_text.render(experiment(), "yaml").replace("title: ", "title: [", 1)
    (found,) = document_text.check(yaml_text, "yaml").problems
    assert found["message"].startswith("the document is not valid YAML") and found["line"]


def test_not_an_object_and_too_big_are_problems_not_errors():
    assert document_text.check("[1, 2]").problems[0]["message"].startswith("the document must")
    assert document_text.check("   ").problems[0]["message"] == "the document is empty"
    big = document_text.check('{"title": "' + "x" * 200 + '"}', max_bytes=100)
    assert "larger than 100 bytes" in big.problems[0]["message"]


# The check endpoint --------------------------------------------------------------------------


def test_the_check_answers_problems_with_lines_and_keeps_nothing(team):
    olga = team["olga"]
    text = document_text.render(experiment(), "yaml").replace("type: process", "type: proc", 1)
    answer = post_json(olga, VALIDATE, {"document": text, "format": "yaml"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["valid"] is False and body["format"] == "yaml"
    assert [p["line"] for p in body["problems"]] == [line_of(text, "type: proc")]
    good = post_json(olga, VALIDATE, {"document": json.dumps(experiment())}).get_json()
    assert good == {"valid": True, "format": "json", "problems": []}
    listed = olga.get("/api/v1/orgs/team/workspaces/alpha/experiments").get_json()
    assert listed["experiments"] == []


def test_the_check_refuses_bad_requests_clearly(team):
    olga = team["olga"]
    for body in ({"format": "json"}, {"document": 5}, {"document": "{}", "format": "toml"}):
        answer = post_json(olga, VALIDATE, body)
        assert answer.status_code == 400 and answer.get_json()["error"] == "bad_request"
    raw = olga.post(VALIDATE, data="not json", content_type="application/json",
                    headers={"X-CSRF-Token": csrf(olga)})
    assert raw.status_code == 400


def test_the_check_is_authorized_like_a_write(team, app):
    body = {"document": json.dumps(experiment())}
    assert post_json(team["vic"], VALIDATE, body).status_code == 403  # a reader
    assert post_json(team["otto"], VALIDATE, body).status_code == 404  # sees no workspace
    assert app.test_client().post(VALIDATE, json=body).status_code == 401
    no_csrf = team["olga"].post(VALIDATE, json=body)
    assert no_csrf.status_code == 403


# Creating ------------------------------------------------------------------------------------


def test_create_from_a_starter_lands_in_the_editor(team):
    olga = team["olga"]
    experiment_id = created_from_starter(olga, "kubernetes-pod-kill")
    stored = olga.get(f"/api/v1/experiments/{experiment_id}").get_json()
    assert stored["title"] == "The application survives losing one of its pods"
    versions = olga.get(f"/api/v1/experiments/{experiment_id}/versions").get_json()["versions"]
    assert [(v["number"], v["message"]) for v in versions] == [
        (1, "created from the starter “The application survives losing one of its pods”")]
    assert form(olga, NEW, {"starter": "no-such"}).status_code == 404


def test_create_from_pasted_yaml_and_from_an_uploaded_file(team):
    olga = team["olga"]
    pasted = form(olga, NEW, {"document": yaml.safe_dump(experiment()), "format": "yaml",
                              "message": "first  draft"})
    assert pasted.status_code == 303 and "/edit" not in pasted.headers["Location"]
    pasted_id = pasted.headers["Location"].rsplit("/", 1)[1]
    versions = olga.get(f"/api/v1/experiments/{pasted_id}/versions").get_json()["versions"]
    assert versions[0]["message"] == "first draft"

    document = experiment()
    document["title"] = "Uploaded"
    upload = (io.BytesIO(json.dumps(document).encode()), "mine.json")
    uploaded = form(olga, NEW, {"upload": upload, "document": ""},
                    content_type="multipart/form-data")
    assert uploaded.status_code == 303
    uploaded_id = uploaded.headers["Location"].rsplit("/", 1)[1]
    assert olga.get(f"/api/v1/experiments/{uploaded_id}").get_json()["title"] == "Uploaded"
    latin = (io.BytesIO("title: caf\xe9".encode("latin-1")), "bad.yaml")
    refused = form(olga, NEW, {"upload": latin}, content_type="multipart/form-data")
    assert refused.status_code == 400 and "UTF-8" in refused.get_data(as_text=True)


def test_an_invalid_paste_is_shown_again_with_its_lines(team):
    olga = team["olga"]
    text = document_text.render(experiment(), "json").replace('"type": "action"',
                                                              '"type": "acton"', 1)
    answer = form(olga, NEW, {"document": text, "format": "json"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert f"Line {line_of(text, 'acton')}</span>" in page
    assert "&#34;acton&#34;" in page or "&quot;acton&quot;" in page  # the text, kept, escaped
    listed = olga.get("/api/v1/orgs/team/workspaces/alpha/experiments").get_json()
    assert listed["experiments"] == []


# Editing -------------------------------------------------------------------------------------


def test_save_a_new_version_with_a_message_shown_on_the_experiment_page(team):
    olga = team["olga"]
    experiment_id = created_from_starter(olga)
    base = f"{PLACE}/experiment/{experiment_id}"
    editor = olga.get(f"{base}/edit", headers=BROWSER)
    assert editor.status_code == 200
    page = editor.get_data(as_text=True)
    assert 'name="base_version" value="1"' in page and "Save as version 2" in page
    document = starters.starter_document("process-and-http-probes")
    document["configuration"]["service_url"] = "http://shop.internal/health"
    saved = form(olga, f"{base}/edit", {"document": json.dumps(document, indent=2),
                                        "format": "json", "base_version": "1",
                                        "message": "point at the shop"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(base)
    shown = olga.get(base, headers=BROWSER).get_data(as_text=True)
    assert 'data-testid="version">version 2<' in shown and "point at the shop" in shown
    yaml_editor = olga.get(f"{base}/edit?format=yaml", headers=BROWSER).get_data(as_text=True)
    assert "service_url: http://shop.internal/health" in yaml_editor


def test_an_invalid_or_stale_save_keeps_the_text_and_makes_no_version(team):
    olga = team["olga"]
    experiment_id = created_from_starter(olga)
    base = f"{PLACE}/experiment/{experiment_id}"
    text = document_text.render(starters.starter_document("process-and-http-probes"), "yaml")
    broken = text.replace("type: http", "type: htp", 1)
    answer = form(olga, f"{base}/edit", {"document": broken, "format": "yaml",
                                         "base_version": "1", "message": "oops"})
    assert answer.status_code == 422
    assert f"Line {line_of(broken, 'type: htp')}</span>" in answer.get_data(as_text=True)
    stale = form(olga, f"{base}/edit", {"document": text.replace("my-helper", "other"),
                                        "format": "yaml", "base_version": "0"})
    assert stale.status_code == 409 and "was saved since you opened" in stale.get_data(
        as_text=True)
    assert olga.get(f"/api/v1/experiments/{experiment_id}").get_json()["version"] == 1


# Deleting ------------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(team):
    olga = team["olga"]
    experiment_id = created_from_starter(olga)
    base = f"{PLACE}/experiment/{experiment_id}"
    confirm = olga.get(f"{base}/delete", headers=BROWSER)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    # A bare POST (no confirmation from that page) deletes nothing.
    assert form(olga, f"{base}/delete", {}).status_code == 400
    assert olga.get(f"/api/v1/experiments/{experiment_id}").status_code == 200
    done = form(olga, f"{base}/delete", {"confirm": experiment_id})
    assert done.status_code == 303 and done.headers["Location"] == f"{PLACE}?deleted=1#experiments"
    assert olga.get(f"/api/v1/experiments/{experiment_id}").status_code == 404
    workspace = olga.get(f"{PLACE}?deleted=1", headers=BROWSER).get_data(as_text=True)
    assert "The experiment was deleted." in workspace


# Who may -------------------------------------------------------------------------------------


def test_a_reader_sees_no_editor_and_is_refused_everywhere(team):
    experiment_id = created_from_starter(team["olga"])
    base = f"{PLACE}/experiment/{experiment_id}"
    writer_page = team["olga"].get(base, headers=BROWSER).get_data(as_text=True)
    assert 'data-testid="edit-link"' in writer_page and 'data-testid="delete-link"' in writer_page
    assert 'data-testid="new-experiment"' in team["olga"].get(
        PLACE, headers=BROWSER).get_data(as_text=True)

    vic = team["vic"]
    reader_page = vic.get(base, headers=BROWSER)
    assert reader_page.status_code == 200
    assert 'data-testid="edit-link"' not in reader_page.get_data(as_text=True)
    assert 'data-testid="new-experiment"' not in vic.get(PLACE, headers=BROWSER).get_data(
        as_text=True)
    for path in (NEW, f"{base}/edit", f"{base}/delete"):
        assert vic.get(path, headers=BROWSER).status_code == 403, path
        assert team["otto"].get(path, headers=BROWSER).status_code == 404, path
    for path, data in ((NEW, {"starter": "kubernetes-pod-kill"}),
                       (f"{base}/edit", {"document": "{}", "base_version": "1"}),
                       (f"{base}/delete", {"confirm": experiment_id})):
        assert form(vic, path, data).status_code == 403, path
    assert team["olga"].get(f"/api/v1/experiments/{experiment_id}").status_code == 200


def test_visitors_are_sent_to_sign_in_and_forms_need_their_token(team, app):
    visitor = app.test_client()
    answer = visitor.get(NEW, headers=BROWSER)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin?next=")
    olga = team["olga"]
    no_token = olga.post(NEW, data={"starter": "kubernetes-pod-kill"}, headers=BROWSER)
    assert no_token.status_code == 403
    assert olga.get("/api/v1/orgs/team/workspaces/alpha/experiments").get_json()[
        "experiments"] == []
