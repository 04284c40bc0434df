"""The experiment and execution pages, through the Flask test client."""

from __future__ import annotations

from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, experiment, variant

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def publish(browser, experiment_id: str, body) -> str:
    response = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=body,
                            headers={"X-CSRF-Token": csrf(browser)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_the_experiment_page_draws_the_plan_runs_and_how_to_use_it(app):
    alice = signed_up_client(app, "alice")
    document = experiment()
    document["secrets"] = {"aws": {"key": "s3cr3t-inline-value",
                                   "token": {"type": "env", "key": "AWS_TOKEN"}}}
    document["method"].append({"type": "probe", "name": "health",
                               "provider": {"type": "http", "url": "https://svc/health",
                                            "method": "post"}})
    created = create(alice, document=document)
    publish(alice, created["id"], variant("baseline-not-met"))
    page = alice.get(f"/alice/personal/experiment/{created['id']}", headers=BROWSER)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("Deleting the marker file breaks the steady state", "filesystem",
                 "The marker file is present", "os.path.exists", "must be true",
                 "-f ${marker_path}", "POST https://svc/health", "recreate-marker-file",
                 "Steady state not met before the method", "v1",
                 f"chaos run http://localhost/alice/Personal/experiment/{created['id']}",
                 "localhost:", "type: bearer"):
        assert text in html, text
    assert "s3cr3t-inline-value" not in html
    assert "AWS_TOKEN" in html
    assert 'data-testid="settings-snippet">auths:' in html


def test_the_execution_page_shows_the_run_at_a_glance_and_escapes_outputs(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    failing = variant("probe-error")
    failing["steady_states"]["before"]["probes"][0]["output"] = "<script>alert(1)</script>"
    execution_id = publish(alice, created["id"], failing)
    url = f"/alice/Personal/experiment/{created['id']}/execution/{execution_id}"
    html = alice.get(url, headers=BROWSER).get_data(as_text=True)
    assert "A probe failed" in html and "failed" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "ActivityFailed: &lt;boom &amp; co&gt;" in html
    assert f"/api/v1/executions/{execution_id}/journal" in html
    assert "Before the method" in html

    deviated = publish(alice, created["id"], variant("deviated"))
    html = alice.get(f"/alice/Personal/experiment/{created['id']}/execution/{deviated}",
                     headers=BROWSER).get_data(as_text=True)
    assert "tolerance not met" in html and "After the method" in html
    assert "recreate-marker-file" in html


def test_pages_hide_what_the_reader_may_not_see(app):
    alice = signed_up_client(app, "alice")
    private = create(alice)
    public = create(alice, workspace="Public")
    execution_id = publish(alice, public["id"], variant("passed"))
    bob = signed_up_client(app, "bob")
    assert bob.get(f"/alice/Personal/experiment/{private['id']}",
                   headers=BROWSER).status_code == 404
    # The experiment exists, but not in the workspace the URL names.
    assert alice.get(f"/alice/Public/experiment/{private['id']}",
                     headers=BROWSER).status_code == 404
    assert bob.get(f"/alice/Public/experiment/{public['id']}", headers=BROWSER).status_code == 200
    assert bob.get(f"/alice/Public/experiment/{public['id']}/execution/{execution_id}",
                   headers=BROWSER).status_code == 404
    assert alice.get(f"/alice/Personal/experiment/{private['id']}/execution/{execution_id}",
                     headers=BROWSER).status_code == 404
