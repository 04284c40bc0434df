"""One refusal for a body whose content is wrong, whichever service and whichever check refuses
it: 422 validation_failed, each problem with the RFC 6901 pointer of the value at fault.

A body that is not JSON, or not an object, stays a 400; one sent as something else than JSON a
415. The services' own checks and a remote call's arguments answer in the same shape.
"""

from __future__ import annotations

import re

import pytest

from chaoshub.core.errors import ValidationFailed
from chaoshub.dashboard import service as dashboard
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, make_token

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

POINTER = re.compile(r"^(/([^~/]|~[01])*)*$")


@pytest.fixture
def hub(app):
    """alice, owner of team (workspace lab) with an experiment in her Personal workspace."""
    alice = signed_up_client(app, "alice")
    signed_up_client(app, "otto")
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "lab"}).status_code == 201
    return {"alice": alice, "experiment_id": create(alice)["id"]}


def send(client, method: str, url: str, body=None, **options):
    """A JSON request of the signed-in browser, with its CSRF header."""
    return client.open(url, method=method, json=body,
                       headers={"X-CSRF-Token": csrf(client)}, **options)


def refused_at(answer) -> list[str]:
    """The pointers of a 422 in the one shape; fails on any other answer or shape."""
    body = answer.get_json()
    assert answer.status_code == 422, body
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "validation_failed" and body["message"]
    for detail in body["details"]:
        assert set(detail) == {"pointer", "message"} and detail["message"], detail
        assert POINTER.match(detail["pointer"]), detail
    return [detail["pointer"] for detail in body["details"]]


BAD_BODIES = [
    # Unknown fields
    ("POST", "/api/v1/orgs", {"name": "ops", "colour": "red"}, ["/colour"]),
    ("POST", "/api/v1/experiments/{experiment_id}/move",
     {"org": "team", "workspace": "lab", "x": 1}, ["/x"]),
    ("POST", "/api/v1/tokens", {"name": "ci", "scopes": ["full"], "owner": "me"}, ["/owner"]),
    # Wrong types, nothing coerced
    ("POST", "/api/v1/orgs", {"name": 3}, ["/name"]),
    ("PATCH", "/api/v1/orgs/team", {"description": 5}, ["/description"]),
    ("POST", "/api/v1/orgs/team/workspaces/lab/members", {"username": ["otto"]}, ["/username"]),
    ("POST", "/api/v1/orgs/team/invitations", {"expires_in_days": True}, ["/expires_in_days"]),
    ("POST", "/api/v1/tokens", {"name": "ci", "scopes": ["full", 7]}, ["/scopes/1"]),
    ("POST", "/api/v1/tokens", {"name": "ci", "scopes": ["full"], "expires_in_days": "9"},
     ["/expires_in_days"]),
    # Values outside an enum
    ("POST", "/api/v1/orgs/team/workspaces", {"name": "ops", "visibility": "secret"},
     ["/visibility"]),
    ("PATCH", "/api/v1/orgs/team/workspaces/lab", {"outsider_executions": "all"},
     ["/outsider_executions"]),
    ("POST", "/api/v1/orgs/team/members", {"username": "otto", "role": "god"}, ["/role"]),
    ("PATCH", "/api/v1/orgs/team/members/alice", {"role": None}, ["/role"]),
    # Missing fields, and several problems at once
    ("POST", "/api/v1/orgs/team/members", {"role": "member"}, ["/username"]),
    ("POST", "/api/v1/orgs/team/workspaces", {"name": "x", "visibility": "y"},
     ["/name", "/visibility"]),
    # Refused by the services' own checks, after the edge let the body through
    ("POST", "/api/v1/orgs", {"name": "status"}, ["/name"]),
    ("POST", "/api/v1/tokens", {"name": "ci", "scopes": ["root"]}, ["/scopes"]),
    ("PATCH", "/api/v1/orgs/team", {"url": "ftp://example.org"}, ["/url"]),
]


@pytest.mark.parametrize("method,url,body,pointers", BAD_BODIES,
                         ids=[f"{m} {u} {sorted(b)}" for m, u, b, _ in BAD_BODIES])
def test_a_body_refused_for_its_content_is_a_422_with_pointers(hub, method, url, body, pointers):
    answer = send(hub["alice"], method, url.format(**hub), body)
    assert refused_at(answer) == pointers


def test_experiments_journals_and_runs_answer_in_the_same_shape(app, hub):
    alice = hub["alice"]
    invalid = send(alice, "POST", "/api/v1/orgs/alice/workspaces/Personal/experiments",
                   {"title": "t", "method": "nope"})
    assert set(refused_at(invalid)) == {"", "/method"}  # "": the whole document
    journal = send(alice, "POST", f"/api/v1/experiments/{hub['experiment_id']}/executions",
                   {"status": "bogus", "experiment": {}})
    assert refused_at(journal) == ["/status"]
    token = make_token(alice, ["executions:write"])
    runs = app.test_client()
    opening = {"org": "alice", "workspace": "Personal", "experiment": experiment()}
    for changed, pointer in (({"experiment": "title: x"}, "/experiment"),
                             ({"experiment_id": 5}, "/experiment_id"),
                             ({"workspace": " "}, "/workspace")):
        answer = runs.post("/api/v1/runs", json={**opening, **changed},
                           headers={"Authorization": f"Bearer {token}"})
        assert refused_at(answer) == [pointer]
    missing = runs.post("/api/v1/runs", json={"org": "alice", "experiment": experiment()},
                        headers={"Authorization": f"Bearer {token}"})
    assert refused_at(missing) == ["/workspace"]


@pytest.mark.parametrize("url", ["/api/v1/orgs", "/api/v1/tokens",
                                 "/api/v1/orgs/team/workspaces", "/api/v1/orgs/team/members"])
def test_a_body_that_is_not_a_json_object_is_a_400_and_not_json_a_415(hub, url):
    alice = hub["alice"]
    headers = {"X-CSRF-Token": csrf(alice), "Content-Type": "application/json"}
    for raw in ("{oops", "[1, 2]", '"name"', ""):
        answer = alice.post(url, data=raw, headers=headers)
        assert answer.status_code == 400, (raw, answer.get_json())
        assert answer.get_json()["error"] == "bad_request"
    text = alice.post(url, data="name: x", content_type="text/plain",
                      headers={"X-CSRF-Token": csrf(alice)})
    assert text.status_code == 415 and text.get_json()["error"] == "unsupported_media_type"


def test_a_body_with_a_nul_is_refused_before_its_model_checks_it(hub):
    answer = send(hub["alice"], "POST", "/api/v1/orgs", {"name": "te\x00am", "x": 1})
    assert answer.status_code == 400 and "NUL" in answer.get_json()["message"]


def test_a_bad_query_string_is_a_400_with_pointers(hub):
    alice = hub["alice"]
    for url, pointer in (("/api/v1/orgs/team/members?limit=many", "/limit"),
                         ("/api/v1/search?q=a&limit=0", "/limit"),
                         (f"/api/v1/experiments/{hub['experiment_id']}/diff?to=1", "/from"),
                         ("/api/v1/orgs/team/audit?format=xml", "/format")):
        answer = alice.get(url)
        assert answer.status_code == 400, url
        body = answer.get_json()
        assert body["error"] == "bad_request"
        assert [d["pointer"] for d in body["details"]] == [pointer], url


def test_a_remote_call_with_bad_arguments_is_refused_as_a_body_is(app):
    # What /internal/rpc runs once the calling service is proven: the arguments are checked
    # against the function's type hints before it runs.
    arguments = {"org": "team", "name": "ops", "visibility": 7, "colour": "red"}
    with app.test_request_context(json=arguments, headers={"Authorization": "Bearer x"}):
        with pytest.raises(ValidationFailed) as refused:
            dashboard.create_workspace.call_from_request()
    assert refused.value.status == 422
    payload = refused.value.to_payload()
    assert payload["error"] == "validation_failed"
    assert sorted(d["pointer"] for d in payload["details"]) == ["/colour", "/visibility"]
