"""The API's OpenAPI document: complete, browsable, and true under generated requests."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from chaoshub.core.web import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, journal

SPEC = "/api/v1/openapi.json"
UNDOCUMENTED = {SPEC, "/api/v1/docs"}


def test_the_document_is_openapi_3_and_names_every_api_route(app, client):
    spec = client.get(SPEC).get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, methods in spec["paths"].items()
                  for method in methods}
    routes = {(re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule), method)
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1") and rule.rule not in UNDOCUMENTED
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - documented == set()
    assert documented - routes == set()


def test_operations_have_unique_ids_summaries_and_json_answers(client):
    spec = client.get(SPEC).get_json()
    operations = [op for methods in spec["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        assert op["summary"] and op["tags"], op["operationId"]
        for status, answer in op["responses"].items():
            if status != "204":
                assert "application/json" in answer["content"], (op["operationId"], status)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_document_describes_what_the_api_answers(client, sample_experiment):
    alice = signed_up_client(client.application, "alice")
    made = create(alice, document=sample_experiment)
    spec = client.get(SPEC).get_json()
    experiment = spec["components"]["schemas"]["Experiment"]
    assert set(experiment["required"]) <= set(made)
    assert "document" not in experiment["properties"]


def test_a_bad_query_string_is_a_400_with_the_parameters_path(client):
    alice = signed_up_client(client.application, "alice")
    made = create(alice)
    answer = alice.get(f"/api/v1/experiments/{made['id']}/diff?from=one&to=2")
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "bad_request"
    assert body["details"][0]["path"] == "/from"
    listing = alice.get("/api/v1/orgs/alice/workspaces/Personal/experiments?limit=0")
    assert listing.status_code == 400


def test_the_docs_page_lists_operations_and_schemas(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="publish_execution"' in html
    assert "/api/v1/experiments/{experiment_id}/executions" in html
    assert 'id="schema-ExecutionView"' in html


# Generated requests ------------------------------------------------------------------------

@pytest.fixture
def hub(app):
    """A hub where alice has an experiment with one execution, and a signed-in browser."""
    alice = signed_up_client(app, "alice")
    made = create(alice)
    execution = post_json(alice, f"/api/v1/experiments/{made['id']}/executions", journal())
    # A browser session may do everything alice may (a token only what its scopes allow).
    cookies = {name: alice.get_cookie(name).value for name in (SESSION_COOKIE, CSRF_COOKIE)}
    return {"app": app, "cookies": cookies, "headers": {CSRF_HEADER: csrf(alice)},
            "experiment_id": made["id"], "execution_id": execution.get_json()["id"]}


# The operations the issue names, and the ones that make them: each must succeed at least once.
MUST_SUCCEED = {
    "GET /api/v1/orgs/{org}/workspaces/{workspace}/experiments",
    "POST /api/v1/orgs/{org}/workspaces/{workspace}/experiments",
    "GET /api/v1/experiments/{experiment_id}",
    "PUT /api/v1/experiments/{experiment_id}",
    "GET /api/v1/experiments/{experiment_id}/versions",
    "GET /api/v1/experiments/{experiment_id}/executions",
    "GET /api/v1/executions/{execution_id}",
    "GET /api/v1/executions/{execution_id}/journal",
    "GET /api/v1/orgs/{org}",
    "POST /api/v1/orgs/{org}/workspaces",
    "GET /api/v1/search",
}


def test_no_generated_request_gets_a_server_error(hub):
    schema = schemathesis.openapi.from_wsgi(SPEC, hub["app"])
    answered: dict[str, set[int]] = {}
    for operation in schema.get_all_operations():
        check_operation(operation.ok(), hub, answered)
    # The generated requests reached the real thing, not only its 4xx answers.
    succeeded = {label for label, statuses in answered.items() if min(statuses) < 300}
    assert MUST_SUCCEED - succeeded == set(), answered


def check_operation(operation, hub: dict, answered: dict) -> None:
    """Send generated requests to one operation; each answer must be documented and not 5xx."""

    @given(case=operation.as_strategy())
    @settings(max_examples=10, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def send(case):
        # Most generated ids would only find 404s: aim at the real ones, but let deletes miss.
        if case.method != "DELETE":
            parameters = case.path_parameters or {}
            for name in ("experiment_id", "execution_id"):
                if name in parameters:
                    parameters[name] = hub[name]
            if "org" in parameters:
                parameters.update(org="alice", workspace="Personal")
        case.cookies = {**(case.cookies or {}), **hub["cookies"]}
        response = case.call_and_validate(
            headers=hub["headers"], checks=[not_a_server_error, response_schema_conformance])
        answered.setdefault(operation.label, set()).add(response.status_code)

    send()
