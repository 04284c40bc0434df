"""An execution's two downloads: JUnit XML for CI (valid against the Ant format's schema, every
text escaped) and a self-contained HTML report; both shown only as far as its JSON is."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from chaoshub.experiment import journals, reports
from chaoshub.experiment.schemas import ExecutionView
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import FIXTURES, create, experiment, journal, make_token, variant
from tests.test_execution_page_odd_journals import ODDITIES

SCHEMA = etree.XMLSchema(etree.parse(str(FIXTURES / "junit.xsd")))
SAMPLES = Path(__file__).parents[2] / "shared" / "samples"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def sample_journal() -> dict:
    """The shared sample journal (the fixture's twin, where the workplace has it)."""
    found = SAMPLES / "journal.json"
    return json.loads(found.read_text()) if found.exists() else journal()


def failing_journal() -> dict:
    """Two method activities failed (a timeout, a raised exception), the steady state missed."""
    return json.loads((FIXTURES / "failing-journal.json").read_text())


def passing_journal() -> dict:
    """The sample as a run that held: the whole hypothesis checked and met after the method."""
    ran = variant("passed")
    ran["steady_states"]["after"]["probes"] = copy.deepcopy(
        ran["steady_states"]["before"]["probes"])
    return ran


def report_of(ran: dict, title: str | None = None) -> reports.ExecutionReport:
    """The report of a journal as the service makes it, without a hub."""
    view = ExecutionView(id="e-1", experiment_id="x-1", workspace_id="w-1", version=1,
                         published_by="a-1", published_by_name="Alice", content_hash="h",
                         created_at=datetime(2026, 12, 1, tzinfo=UTC), **journals.index(ran))
    return reports.ExecutionReport(
        experiment_title=ran["experiment"]["title"] if title is None else title, org="alice",
        workspace="Personal", execution=view, sections=reports.sections(ran),
        interruption=reports.interruption(ran))


def parsed(xml: str) -> etree._Element:
    """The JUnit document, parsed and checked against the schema."""
    root = etree.fromstring(xml.encode("utf-8"))
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def counts(suite) -> tuple[int, int, int, int]:
    return tuple(int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped"))


def cases(suite) -> list[tuple[str, str, str]]:
    """Each test case as (classname, name, what it says: passed, failure, error, skipped)."""
    return [(c.get("classname"), c.get("name"),
             next((child.tag for child in c if child.tag != "system-out"), "passed"))
            for c in suite.iter("testcase")]


# JUnit XML ----------------------------------------------------------------------------------


def test_a_passing_run_is_a_suite_without_failures():
    suite = parsed(reports.junit_xml(report_of(passing_journal()), "http://hub/x"))
    assert suite.tag == "testsuite"
    assert suite.get("name") == "Deleting the marker file breaks the steady state"
    assert counts(suite) == (8, 0, 0, 0)
    assert suite.get("timestamp") == "2026-11-23T09:01:40"
    assert float(suite.get("time")) == pytest.approx(0.011234, abs=1e-6)
    assert [c[0] for c in cases(suite)] == ["steady-state-before"] * 2 + ["method"] * 3 + [
        "steady-state-after"] * 2 + ["rollbacks"]
    run_true = next(c for c in suite.iter("testcase") if c.get("name") == "run-true")
    assert run_true.get("time") == "0.001361"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"experiment_id": "x-1", "execution_id": "e-1",
                          "status": "completed", "deviated": "false", "outcome": "passed",
                          "url": "http://hub/x"}


def test_a_probe_outside_its_tolerance_is_a_failure():
    suite = parsed(reports.junit_xml(report_of(sample_journal())))
    # chaoslib checks no further probe of a hypothesis once one missed: that one did not run.
    assert counts(suite) == (8, 1, 0, 1)
    assert ("steady-state-after", "marker-file-exists", "failure") in cases(suite)
    assert ("steady-state-after", "marker-file-test-succeeds", "skipped") in cases(suite)
    assert ("steady-state-before", "marker-file-exists", "passed") in cases(suite)
    [failure] = suite.iter("failure")
    assert failure.get("message") == (
        "tolerance not met (must be true): the probe returned false")
    assert failure.text == "false"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (properties["deviated"], properties["status"]) == ("true", "completed")


def test_a_failed_activity_is_an_error_with_its_traceback():
    suite = parsed(reports.junit_xml(report_of(failing_journal())))
    assert counts(suite) == (5, 1, 2, 0)
    slow, raised = suite.iter("error")
    assert slow.getparent().get("name") == "slow-sleep"
    assert slow.get("type") == "Timeout"
    assert slow.get("message") == ("Timed out: process activity took too long to complete "
                                   "(its timeout is 1 s)")
    assert raised.get("type") == "FileNotFoundError"
    assert "\n" not in raised.get("message")
    assert raised.text.startswith("Traceback (most recent call last):")
    assert 'File "<frozen genericpath>"' in raised.text  # escaped on the wire, whole here
    assert float(slow.getparent().get("time")) == pytest.approx(1.012725)


def test_activities_that_never_ran_are_skipped():
    suite = parsed(reports.junit_xml(report_of(variant("baseline-not-met"))))
    said = cases(suite)
    assert ("steady-state-before", "marker-file-exists", "failure") in said
    assert [c for c in said if c[0] == "method"] == [
        ("method", "run-true", "skipped"), ("method", "read-marker-size", "skipped"),
        ("method", "delete-marker-file", "skipped")]
    assert {c[2] for c in said if c[0] == "steady-state-after"} == {"skipped"}
    assert counts(suite) == (8, 1, 0, 5)
    assert {s.get("message") for s in suite.iter("skipped")} == {"not run"}
    cut = variant("interrupted")  # an activity cut off mid-run has no status
    suite = parsed(reports.junit_xml(report_of(cut)))
    assert ("method", "delete-marker-file", "skipped") in cases(suite)
    assert {s.get("message") for s in suite.iter("skipped")} >= {"did not finish"}


def test_every_text_is_escaped_and_what_xml_cannot_hold_is_replaced():
    odd = '<b>"Chaos" & \'co\'</b> ünïcödé ☃ \x01\x0b\x1f\ufffe\ud800 ]]>'
    ran = failing_journal()
    ran["node"] = "node\x07<1>"
    ran["run"][1]["activity"]["name"] = odd
    # A vertical tab ends a line (str.splitlines): the message is the exception's last line.
    ran["run"][1]["exception"] = ["Traceback (most recent call last):\n",
                                  f"ValueError: {odd.replace(chr(11), '')}\n"]
    ran["steady_states"]["after"]["probes"][0]["output"] = odd
    xml = reports.junit_xml(report_of(ran, title=odd), "http://hub/?a=1&b=<2>")
    assert "<b>" not in xml and "\x01" not in xml and "\ud800" not in xml
    suite = parsed(xml)
    kept = '<b>"Chaos" & \'co\'</b> ünïcödé ☃ ' + "\ufffd" * 5 + " ]]>"
    assert suite.get("name") == kept
    assert suite.get("hostname") == "node\ufffd<1>"
    assert ("method", kept, "error") in cases(suite)
    error = next(e for e in suite.iter("error") if e.getparent().get("name") == kept)
    one_line = kept.replace("\ufffd" * 5, "\ufffd" * 4)
    assert error.get("message") == f"ValueError: {one_line}"
    assert error.text.endswith(f"ValueError: {one_line}")
    [failure] = suite.iter("failure")
    assert kept in failure.get("message")
    url = next(p for p in suite.iter("property") if p.get("name") == "url")
    assert url.get("value") == "http://hub/?a=1&b=<2>"


@pytest.mark.parametrize("oddity", sorted(ODDITIES))
def test_an_odd_journal_still_makes_a_valid_document(oddity):
    ran = journal()
    ODDITIES[oddity](ran["run"][0])
    ran["experiment"]["method"][1] = "not an activity"
    ran["start"] = "0005-01-02T03:04:05"
    suite = parsed(reports.junit_xml(report_of(ran)))
    assert suite.get("timestamp") == "0005-01-02T03:04:05"
    assert int(suite.get("tests")) >= 8


def test_a_report_file_name_is_the_title_and_day_in_plain_letters():
    assert reports.filename(report_of(journal()), "html") == (
        "deleting-the-marker-file-breaks-the-steady-state-2026-11-23.html")
    assert reports.filename(report_of(journal(), "Ünïcode / ../../etc <x>\"'"), "html") == (
        "unicode-etc-x-2026-11-23.html")
    assert reports.filename(report_of(journal(), "☃☃"), "xml") == "execution-2026-11-23.xml"
    long = reports.filename(report_of(journal(), "a" * 300), "html")
    assert len(long) < 80 and re.fullmatch(r"[a-z0-9-]+\.html", long)


# Over the API --------------------------------------------------------------------------------


def published(browser, document: dict, ran: dict, workspace: str = "Personal") -> tuple[str, str]:
    """An experiment created from `document` and run once: its id and the execution's."""
    made = create(browser, workspace=workspace, document=document)
    answer = browser.post(f"/api/v1/experiments/{made['id']}/executions", json=ran,
                          headers={"X-CSRF-Token": csrf(browser)})
    assert answer.status_code == 201, answer.get_json()
    return made["id"], answer.get_json()["id"]


def test_both_reports_download_from_the_api_and_the_execution_page(app):
    alice = signed_up_client(app, "alice")
    document = experiment()
    document["title"] = 'Marker <b>"gone"</b> & ünï'
    experiment_id, execution_id = published(alice, document, journal())
    page_path = f"/alice/Personal/experiment/{experiment_id}/execution/{execution_id}"

    junit = alice.get(f"/api/v1/executions/{execution_id}/junit")
    assert junit.status_code == 200
    assert junit.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert junit.headers["Content-Disposition"] == (
        f'attachment; filename="execution-{execution_id}-junit.xml"')
    suite = etree.fromstring(junit.data)
    assert SCHEMA.validate(suite), SCHEMA.error_log
    assert suite.get("name") == document["title"]
    assert counts(suite) == (8, 1, 0, 1)
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["execution_id"] == execution_id
    assert properties["url"] == f"http://localhost{page_path}"

    report = alice.get(f"/api/v1/executions/{execution_id}/report")
    assert report.status_code == 200
    assert report.headers["Content-Type"] == "text/html; charset=utf-8"
    assert report.headers["Content-Disposition"] == (
        'attachment; filename="marker-b-gone-b-uni-2026-11-23.html"')
    assert "default-src 'none'" in report.headers["Content-Security-Policy"]
    html = report.get_data(as_text=True)
    assert "Marker &lt;b&gt;&#34;gone&#34;&lt;/b&gt; &amp; ünï" in html and "<b>" not in html
    assert ">Deviated<" in html and "marker-file-exists" in html and ">alice<" in html
    assert "tolerance not met" in html
    # Self-contained: nothing to fetch, and its only links lead back to the hub.
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b|\bsrc=|url\(|@import",
                         html, re.IGNORECASE)
    links = re.findall(r'href="([^"]*)"', html)
    assert links and all(link.startswith("http://localhost/") for link in links)
    assert f"http://localhost{page_path}" in links

    page = alice.get(page_path, headers=BROWSER).get_data(as_text=True)
    assert f'href="/api/v1/executions/{execution_id}/junit"' in page
    assert f'href="/api/v1/executions/{execution_id}/report"' in page
    assert ">JUnit XML<" in page and ">HTML report<" in page


def test_reports_are_shown_as_far_as_the_execution_is(app):
    alice = signed_up_client(app, "alice")
    _, private = published(alice, experiment(), failing_journal())
    _, public = published(alice, experiment(), journal(), workspace="Public")
    kinds = ("junit", "report")

    def answers(client, execution_id, **headers):
        return [client.get(f"/api/v1/executions/{execution_id}{suffix}", headers=headers)
                for suffix in ("", *(f"/{k}" for k in kinds))]

    # Unknown, or another's: the JSON's very 404.
    for client, execution_id in ((alice, "no-such-execution"),
                                 (signed_up_client(app, "bob"), private),
                                 (app.test_client(), public)):  # Public shows no runs yet
        found = answers(client, execution_id)
        assert [a.status_code for a in found] == [404, 404, 404]
        assert found[1].get_json() == found[2].get_json() == found[0].get_json()

    # A token reads them with executions:read, as it reads the JSON.
    reader = make_token(alice, ["executions:read"])
    other = make_token(alice, ["experiments:read"])
    visitor = app.test_client()
    assert [a.status_code for a in answers(
        visitor, private, Authorization=f"Bearer {reader}")] == [200, 200, 200]
    refused = answers(visitor, private, Authorization=f"Bearer {other}")
    assert [a.status_code for a in refused] == [403, 403, 403]
    assert "executions:read" in refused[1].get_json()["message"]

    # Outsiders allowed the status only: the report says no more than the status, and JUnit
    # (made of the activities, as the journal is) is not theirs.
    alice.patch("/api/v1/orgs/alice/workspaces/Public", json={"outsider_executions": "status"},
                headers={"X-CSRF-Token": csrf(alice)})
    status, junit, report = answers(app.test_client(), public)
    assert status.status_code == 200 and status.get_json()["detailed"] is False
    assert junit.status_code == 404
    assert "only this execution's status" in junit.get_json()["message"]
    assert report.status_code == 200
    html = report.get_data(as_text=True)
    assert ">Deviated<" in html and "Only the status" in html
    assert "marker-file-exists" not in html and "Published by" not in html
    assert 'data-testid="activity"' not in html
