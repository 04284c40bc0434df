"""The API's OpenAPI document: complete, browsable, and true under generated requests."""

from __future__ import annotations

import copy
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import response_schema_conformance

from chaoshub import create_app
from chaoshub.core import db
from chaoshub.core.web import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, journal

SPEC = "/api/v1/openapi.json"
# The operations that rename the org or workspace the generated requests aim at.
RENAMES = ("/api/v1/orgs/{org}", "/api/v1/orgs/{org}/workspaces/{workspace}")
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


@pytest.mark.parametrize("service", ["auth", "dashboard", "experiment"])
def test_a_process_hosting_one_service_documents_the_whole_api(client, settings, service):
    # Split, the public address sends the document's path to one process: it must be whole.
    urls = {f"{s.upper()}_SERVICE_URL": "http://127.0.0.1:9" for s in
            ("auth", "dashboard", "experiment")}
    one = create_app({**settings, **urls, "CHAOSHUB_SERVICES": service, "PROXY_HOPS": 0})
    try:
        assert one.test_client().get(SPEC).get_json() == client.get(SPEC).get_json()
        page = one.test_client().get("/api/v1/docs").get_data(as_text=True)
        assert 'id="create_token"' in page and 'id="publish_execution"' in page
    finally:
        db.dispose(one)


# The downloads that are documents of their own, not JSON: their success alone says so.
DOCUMENTS = {"get_execution_junit": "application/xml", "get_execution_report": "text/html"}


def test_operations_have_unique_ids_summaries_and_json_answers(client):
    spec = client.get(SPEC).get_json()
    operations = [op for methods in spec["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        assert op["summary"] and op["tags"], op["operationId"]
        for status, answer in op["responses"].items():
            if status == "200" and op["operationId"] in DOCUMENTS:
                assert list(answer["content"]) == [DOCUMENTS[op["operationId"]]]
            elif status != "204":
                assert "application/json" in answer["content"], (op["operationId"], status)
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_document_describes_what_the_api_answers(client, sample_experiment):
    alice = signed_up_client(client.application, "alice")
    made = create(alice, document=sample_experiment)
    spec = client.get(SPEC).get_json()
    experiment = spec["components"]["schemas"]["Experiment"]
    assert set(experiment["required"]) <= set(made)
    assert "document" not in experiment["properties"]


def test_a_bad_query_string_is_a_400_with_the_parameters_pointer(client):
    alice = signed_up_client(client.application, "alice")
    made = create(alice)
    answer = alice.get(f"/api/v1/experiments/{made['id']}/diff?from=one&to=2")
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "bad_request"
    assert body["details"][0]["pointer"] == "/from"
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
    # No worker here: a generated ?wait= on a queued run would only hold the test up.
    app.config["RUN_WAIT_MAX_SECONDS"] = 0
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
    "GET /api/v1/executions/{execution_id}/junit",
    "GET /api/v1/executions/{execution_id}/report",
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


# The security review's fuzz classes (issue 11, finding 11): each generated request is sent
# again with its strings poisoned, and its body nested past any reasonable depth.
FUZZ = ("lone-surrogate", "nul", "deep-nesting")


def poisoned(value, text: str):
    """`value` with `text` appended to each of its strings, keys included."""
    if isinstance(value, str):
        return value + text
    if isinstance(value, list):
        return [poisoned(item, text) for item in value]
    if isinstance(value, dict):
        return {poisoned(key, text): poisoned(item, text) for key, item in value.items()}
    return value


def poisoned_body(body, text: str):
    """`body` poisoned, with one string more in case it held none."""
    if isinstance(body, dict):
        return {**poisoned(body, text), "fuzz": text}
    if isinstance(body, list):
        return [*poisoned(body, text), text]
    return poisoned(body, text) if isinstance(body, str) else text


def fuzzed(case, fuzz: str) -> dict[str, str] | None:
    """Turn `case` into its `fuzz` variant; the extra headers to send, None if none applies."""
    has_body = not isinstance(case.body, NotSet) and case.body is not None
    if fuzz == "lone-surrogate" and has_body:
        # Sent as the escape "\ud800": a JSON string may hold it, UTF-8 cannot.
        case.body = poisoned_body(case.body, "\ud800")
        return {}
    if fuzz == "deep-nesting" and has_body:
        deep = []
        for _ in range(900):  # as deep as a JSON encoder writes; the hub takes 64
            deep = [deep]
        case.body = {**case.body, "deep": deep} if isinstance(case.body, dict) else deep
        return {}
    if fuzz == "nul":
        case.path_parameters = {k: poisoned(v, "\x00") for k, v in
                                (case.path_parameters or {}).items()}
        case.query = {**{k: poisoned(v, "\x00") for k, v in (case.query or {}).items()},
                      "fuzz": "\x00"}
        if has_body:
            case.body = poisoned_body(case.body, "\x00")
        return {"Idempotency-Key": "key\x00"}
    return None


def check_operation(operation, hub: dict, answered: dict) -> None:
    """Send generated requests to one operation, and their fuzzed variants; each answer must be
    documented and not 5xx, each fuzzed one a 4xx."""

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
            if case.method == "PATCH" and isinstance(case.body, dict) and \
                    case.operation.path in RENAMES:
                # A generated rename would move alice/Personal away from every operation
                # after it (the names come from strings Hypothesis finds in the code).
                case.body.pop("name", None)
        case.cookies = {**(case.cookies or {}), **hub["cookies"]}
        response = case.call_and_validate(
            headers=hub["headers"], checks=[not_a_server_error, response_schema_conformance])
        answered.setdefault(operation.label, set()).add(response.status_code)
        for fuzz in FUZZ:
            # A case of its own: schemathesis would check a changed generated one against the
            # schema, and its validator cannot encode a lone surrogate.
            variant = operation.Case(
                method=case.method, path_parameters=copy.deepcopy(case.path_parameters),
                query=copy.deepcopy(case.query), cookies=case.cookies,
                body=case.body if isinstance(case.body, NotSet) else copy.deepcopy(case.body),
                media_type=case.media_type)
            extra = fuzzed(variant, fuzz)
            if extra is not None:
                response = variant.call_and_validate(headers={**hub["headers"], **extra},
                                                     checks=[not_a_server_error])
                assert 400 <= response.status_code < 500, (fuzz, case.method, case.path)

    send()
