"""The security review's findings 1 and 11 (issue 11): what a client sends is bounded and clean.

1. A YAML body pinned a core and ate gigabytes before any permission check: the caller's right
   to write is now checked before a body is read, YAML is parsed by libyaml with no aliases or
   merge keys and a smaller size cap, JSON and YAML nest at most 64 levels, journals are JSON.
11. Lone surrogates, NUL characters, deep nesting and a Kelvin sign made 500s (or no answer):
   one layer at the edge (chaoshub.core.inputs) refuses them with a 400.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import wsgiref.handlers
from urllib.parse import unquote

import pytest
import yaml
from werkzeug.test import EnvironBuilder

from chaoshub.core import inputs
from chaoshub.core.errors import BadRequest
from chaoshub.core.web import CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import csrf, post_json, sign_up, signed_up_client
from tests.experiment_data import create, experiment, journal, make_token

MEMORY_BYTES = 50 * 1024 * 1024
EXPERIMENTS = "/api/v1/orgs/alice/workspaces/Personal/experiments"
YAML = "application/x-yaml"


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def hub(app, alice):
    """alice's experiment with an execution and a run, and tokens to read or write."""
    made = create(alice)
    execution = post_json(alice, f"/api/v1/experiments/{made['id']}/executions", journal())
    run = post_json(alice, "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                            "experiment": experiment()})
    assert execution.status_code == 201 and run.status_code == 201, run.get_json()
    token = post_json(alice, "/api/v1/tokens", {"name": "ci", "scopes": ["experiments:read"]})
    return {
        "experiment_id": made["id"], "execution_id": execution.get_json()["id"],
        "run_id": run.get_json()["id"], "token_id": token.get_json()["id"],
        "reader": {"Authorization": f"Bearer {make_token(alice, ['read-only'])}"},
        "writer": {"Authorization": "Bearer " + make_token(
            alice, ["experiments:write", "executions:write", "experiments:read"])},
    }


def measured(send):
    """The answer to `send()` and its peak of traced memory. (CPU time depends on the machine's
    load: bench/inputs.py prints it beside its goal.)"""
    tracemalloc.start()
    try:
        response = send()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return response, peak


def assert_cheap_refusal(send, label: str):
    response, peak = measured(send)
    assert 400 <= response.status_code < 500, (label, response.status_code, response.text[:200])
    assert peak < MEMORY_BYTES, (label, peak)
    return response


def nested(depth: int, kind: str) -> str:
    """A document `depth` levels deep, written in one of the ways JSON and YAML nest."""
    return {
        "json-arrays": "[" * depth + "]" * depth,
        "json-objects": '{"a":' * depth + "1" + "}" * depth,
        "yaml-flow-sequences": "[" * depth + "]" * depth,
        "yaml-flow-mappings": "{a: " * depth + "1" + "}" * depth,
        "yaml-block-sequences": "- " * depth + "x\n",
    }[kind]


def laughs(levels: int, width: int) -> str:
    """The billion-laughs family: each level refers `width` times to the one below."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


YAML_BOMBS = {
    "billion-laughs-10^7": laughs(7, 10),
    "billion-laughs-10^8": laughs(8, 10),
    "billion-laughs-9^9": laughs(9, 9),
    "quadratic-blowup": f"a: &a {'x' * 100_000}\nb: [{', '.join(['*a'] * 30_000)}]\n",
    "recursive-alias": "a: &a [*a]\n",
    "merge-keys": "a: &a {x: 1}\nb: {<<: *a}\nc: {<<: {y: 2}, z: 3}\n",
    "50k-anchors": "".join(f"- &a{i} {i}\n" for i in range(50_000)),
    "50k-aliases": "a: &x lol\nb: [" + ", ".join(["*x"] * 50_000) + "]\n",
    # YAML 1.1 base-60 numbers: PyYAML multiplies them out digit by digit (quadratic).
    "base-60-int": "x: " + ":".join(["1"] * 80_000) + "\n",
    "base-60-float": "x: " + ":".join(["1"] * 80_000) + ".5\n",
    "1MiB-plain": "".join(f"key{i}: a plain value {i}\n" for i in range(40_000))[:1024 * 1024],
}


# Finding 1: bodies cost nothing before the right to write is known --------------------------


def test_yaml_billion_laughs_from_a_read_only_token_is_refused_before_parsing(app, hub):
    client = app.test_client()
    response, peak = measured(lambda: client.post(
        EXPERIMENTS, data=laughs(7, 10),
        headers={**hub["reader"], "Content-Type": YAML}))
    assert response.status_code == 403
    assert "experiments:write" in response.get_json()["message"]
    assert peak < MEMORY_BYTES, peak


def test_no_body_is_parsed_for_a_caller_who_may_not_write_there(app, hub, monkeypatch):
    bob = signed_up_client(app, "bob")
    bob_writer = {"Authorization": "Bearer " + make_token(
        bob, ["experiments:write", "executions:write"])}
    parsed = []
    monkeypatch.setattr(inputs, "parse_json", lambda data: parsed.append(data))
    monkeypatch.setattr(inputs, "parse_yaml", lambda data: parsed.append(data))
    client = app.test_client()
    experiment_id, run_id = hub["experiment_id"], hub["run_id"]
    for method, url, headers, status in (
        ("POST", EXPERIMENTS, hub["reader"], 403),
        ("POST", EXPERIMENTS, bob_writer, 404),  # alice's Personal workspace is private
        ("PUT", f"/api/v1/experiments/{experiment_id}", hub["reader"], 403),
        ("PUT", f"/api/v1/experiments/{experiment_id}", bob_writer, 404),
        ("POST", f"/api/v1/experiments/{experiment_id}/executions", hub["reader"], 403),
        ("POST", f"/api/v1/experiments/{experiment_id}/executions", bob_writer, 404),
        ("POST", "/api/alice/Personal/experiment", hub["reader"], 403),
        ("POST", "/api/alice/Personal/experiment", bob_writer, 404),
        ("POST", f"/api/alice/Personal/experiment/{experiment_id}/execution", bob_writer, 404),
        ("POST", "/api/v1/runs", hub["reader"], 403),
        ("POST", f"/api/v1/runs/{run_id}/events", hub["reader"], 403),
        ("POST", f"/api/v1/runs/{run_id}/events", bob_writer, 404),
        ("PUT", f"/api/v1/runs/{run_id}/journal", bob_writer, 404),
    ):
        for content_type in ("application/json", YAML):
            response = client.open(url, method=method, data=laughs(7, 10),
                                   headers={**headers, "Content-Type": content_type})
            assert response.status_code == status, (method, url, response.get_json())
    assert parsed == []


@pytest.mark.parametrize("name", list(YAML_BOMBS))
def test_yaml_billion_laughs_is_refused_quickly(app, hub, name):
    client = app.test_client()
    response = assert_cheap_refusal(lambda: client.post(
        EXPERIMENTS, data=YAML_BOMBS[name], headers={**hub["writer"], "Content-Type": YAML}),
        name)
    assert response.status_code in (400, 413, 422), response.get_json()


@pytest.mark.parametrize("kind", ["json-arrays", "json-objects", "yaml-flow-sequences",
                                  "yaml-flow-mappings", "yaml-block-sequences"])
def test_100k_deep_nesting_is_refused_quickly(app, hub, kind):
    client = app.test_client()
    content_type = YAML if kind.startswith("yaml") else "application/json"
    url = EXPERIMENTS if kind.startswith("yaml") else (
        f"/api/v1/experiments/{hub['experiment_id']}/executions")
    response = assert_cheap_refusal(lambda: client.post(
        url, data=nested(100_000, kind), headers={**hub["writer"], "Content-Type": content_type}),
        kind)
    # A 100k-deep YAML flow mapping is past the YAML size cap already: also try one under it.
    assert response.status_code in (400, 413)
    shallower = client.post(url, data=nested(50_000, kind),
                            headers={**hub["writer"], "Content-Type": content_type})
    assert shallower.status_code == 400
    assert "nests deeper than 64" in shallower.get_json()["message"]


def test_yaml_up_to_its_cap_is_parsed_within_bounds(app, hub):
    client = app.test_client()
    plain = "".join(f"key{i}: a plain value {i}\n" for i in range(40_000))
    under_cap = plain[:inputs.YAML_MAX_BYTES - 100].rsplit("\n", 1)[0] + "\n"
    response = assert_cheap_refusal(lambda: client.post(
        EXPERIMENTS, data=under_cap, headers={**hub["writer"], "Content-Type": YAML}),
        "plain YAML under the cap")
    assert response.status_code == 422  # parsed, and then not an experiment
    too_big = client.post(EXPERIMENTS, data=plain[:1024 * 1024],
                          headers={**hub["writer"], "Content-Type": YAML})
    assert too_big.status_code == 413 and "JSON" in too_big.get_json()["message"]


def test_bodies_other_than_experiments_and_journals_are_capped_small(app, alice, hub):
    # 8 MiB of "[]," took a third of a second and ~170 MB to parse on any JSON route.
    cap = app.config["BODY_MAX_BYTES"]
    flood = "[" + ",".join(["[]"] * (cap // 3 + 10)) + "]"
    client = app.test_client()
    for path in ("/api/v1/orgs", "/api/v1/tokens", "/api/v1/orgs/alice/invitations"):
        answer = assert_cheap_refusal(lambda p=path: alice.post(
            p, data=flood, content_type="application/json",
            headers={"X-CSRF-Token": csrf(alice)}), path)
        assert answer.status_code == 413, path
    form = client.post("/signin", data={"username": "x" * cap, "password": "p"})
    assert form.status_code == 413
    big = experiment()
    big["description"] = "x" * (cap * 4)
    assert client.post(EXPERIMENTS, json=big, headers=hub["writer"]).status_code == 201


def test_a_yaml_experiment_still_works_and_yaml_journals_are_refused(app, hub):
    client = app.test_client()
    sample = experiment()
    as_yaml = "\n".join(f"{key}: {json.dumps(value)}" for key, value in sample.items())
    created = client.post(EXPERIMENTS, data=as_yaml,
                          headers={**hub["writer"], "Content-Type": YAML})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["experiment"]["title"] == sample["title"]
    url = f"/api/v1/experiments/{hub['experiment_id']}/executions"
    refused = client.post(url, data=json.dumps(journal()),
                          headers={**hub["writer"], "Content-Type": YAML})
    assert refused.status_code == 400 and "JSON" in refused.get_json()["message"]


def test_yaml_is_read_by_libyaml():
    assert yaml.__with_libyaml__
    assert issubclass(inputs.UntrustedYamlLoader, yaml.CSafeLoader)


def test_the_largest_sample_documents_nest_well_within_the_cap(sample_experiment):
    for document in (sample_experiment, journal()):
        inputs.check_value(document)
    deepest = {"a": 1}
    for _ in range(inputs.MAX_DEPTH - 1):
        deepest = {"a": deepest}
    inputs.check_value(deepest)
    with pytest.raises(inputs.BadRequest):
        inputs.check_value([deepest])


# Finding 11: lone surrogates, NULs, deep nesting, a Kelvin sign -----------------------------


def body_routes(app) -> list[tuple[str, str]]:
    """Every route that takes a body, and its method."""
    return sorted((rule.rule, method) for rule in app.url_map.iter_rules()
                  for method in rule.methods & {"POST", "PUT", "PATCH"}
                  if not rule.rule.startswith("/static"))


def filled(rule: str, hub: dict) -> str:
    """The rule's path with real values (or plausible ones) for its parameters."""
    values = {"org": "alice", "workspace": "Personal", "username": "alice", "number": "1",
              "provider": "github", "invitation_id": "x", "token": "x", "identity_id": "x",
              "experiment_id": hub["experiment_id"], "execution_id": hub["execution_id"],
              "run_id": hub["run_id"], "token_id": hub["token_id"]}
    for name, value in values.items():
        rule = rule.replace(f"<{name}>", value).replace(f"<int:{name}>", value)
    return rule


FIELDS = ("name", "description", "url", "email", "username", "role", "org", "workspace",
          "title", "node", "display_name", "scopes", "visibility", "experiment", "status")
RAW_BODIES = {
    "lone-surrogate": json.dumps({field: "x\ud800" for field in FIELDS}),
    "nul": json.dumps({field: "x\x00" for field in FIELDS}),
    "deep-nesting": nested(100_000, "json-objects"),
    "nested-900": nested(900, "json-arrays"),
}
NO_BODY_READ = ("/accept", "/decline", "/revoke", "/remove", "/delete", "/unlink", "/signout",
                "/sync")
# Signed bodies: the signature is checked before the body is read (401 for these).
SIGNED_BODY = ("/api/v1/hooks/",)


@pytest.mark.parametrize("fuzz", list(RAW_BODIES))
def test_lone_surrogate_nul_and_deep_json_are_a_400_on_every_endpoint(app, alice, hub, fuzz):
    headers = {"X-CSRF-Token": csrf(alice), "Content-Type": "application/json"}
    answered = {}
    for rule, method in body_routes(app):
        response = alice.open(filled(rule, hub), method=method, data=RAW_BODIES[fuzz],
                              headers=headers)
        answered[(method, rule)] = response.status_code
        assert response.status_code < 500, (method, rule, response.text[:300])
        if rule.startswith("/api/") and not rule.endswith(NO_BODY_READ) \
                and not rule.startswith(SIGNED_BODY):
            # 413 where the 100k-deep body is over the route's cap before it is even parsed.
            expected = (400, 413) if len(RAW_BODIES[fuzz]) > app.config["BODY_MAX_BYTES"] else (
                400,)
            assert response.status_code in expected, (method, rule, response.get_json())
    assert len(answered) > 40


def test_nul_in_any_form_field_query_or_header_is_a_400(app, alice, hub):
    token = csrf(alice)
    for rule, method in body_routes(app):
        if rule.startswith("/api/"):
            continue
        form = {field: "x\x00" for field in FIELDS if field != "scopes"}
        response = alice.open(filled(rule, hub), method=method,
                              data={**form, "csrf_token": token})
        assert response.status_code == 400, (rule, response.status_code)
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.rule.startswith("/static"):
            response = alice.get(filled(rule.rule, hub) + "?q=%00&limit=1%00")
            assert response.status_code == 400, (rule.rule, response.status_code)
    answer = alice.get("/api/v1/me", headers={"X-Anything": "a\x00b"})
    assert answer.status_code == 400 and "NUL" in answer.get_json()["message"]


def test_nul_in_names_descriptions_tokens_journals_and_keys_is_a_400_not_a_500(app, alice, hub):
    # Each reached PostgreSQL, which keeps no NUL in text, and failed there with a 500.
    visitor = app.test_client()
    refused = sign_up(visitor, "nora", display_name="No\x00ra")
    assert refused.status_code == 400
    assert sign_up(visitor, "nora").status_code == 303  # nothing was half-made
    for field, value in (("description", "a\x00b"), ("url", "https://example.com/\x00")):
        answer = alice.patch("/api/v1/orgs/alice", json={field: value},
                             headers={"X-CSRF-Token": csrf(alice)})
        assert answer.status_code == 400, (field, answer.get_json())
        assert "NUL" in answer.get_json()["message"]
    assert alice.get("/api/v1/orgs/alice").get_json()["description"] in ("", None)
    token = post_json(alice, "/api/v1/tokens", {"name": "c\x00i", "scopes": ["read-only"]})
    assert token.status_code == 400
    assert len(alice.get("/api/v1/tokens").get_json()["tokens"]) == 3
    url = f"/api/v1/experiments/{hub['experiment_id']}/executions"
    with_nul = {**journal(), "node": "v\x00m", "start": "2026-11-23T09:30:00"}
    assert post_json(alice, url, with_nul).status_code == 400
    keyed = {**journal(), "start": "2026-11-23T09:31:00"}
    answer = alice.post(url, json=keyed, headers={"X-CSRF-Token": csrf(alice),
                                                  "Idempotency-Key": "k\x00ey"})
    assert answer.status_code == 400 and "Idempotency-Key" in answer.get_json()["message"]
    assert len(alice.get(url).get_json()["executions"]) == 1


def test_an_experiment_nested_900_deep_is_refused_at_upload(alice):
    document = experiment()
    deep = "x"
    for _ in range(900):
        deep = {"nested": deep}
    document["configuration"]["deep"] = deep
    answer = post_json(alice, EXPERIMENTS, document)
    assert answer.status_code == 400, answer.status_code
    assert "64" in answer.get_json()["message"]
    assert alice.get(EXPERIMENTS).get_json()["experiments"] == []


def served(app, path: str, cookies: dict) -> tuple[str, dict, bytes]:
    """The status line, headers and body a real WSGI server writes for a GET of `path`."""
    environ = EnvironBuilder(path=path, headers={
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}).get_environ()
    out = io.BytesIO()
    handler = wsgiref.handlers.SimpleHandler(io.BytesIO(), out, io.StringIO(), environ)
    handler.run(app)
    head, _, body = out.getvalue().partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:] if ": " in line), body


def test_an_audit_export_of_an_org_named_with_a_kelvin_sign_answers(app):
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "kteam"}).status_code == 201
    cookies = {name: olga.get_cookie(name).value for name in (SESSION_COOKIE, CSRF_COOKIE)}
    for path in ("/\u212ateam/-/audit.jsonl", "/api/v1/orgs/\u212ateam/audit?format=jsonl"):
        status, headers, body = served(app, path, cookies)
        # The server could not encode the header: a status line, then nothing a client reads.
        assert status.endswith("200 OK") and "Content-Disposition" in headers, (path, headers)
        assert json.loads(body.splitlines()[0])["event"] == "org.created"
        disposition = headers["Content-Disposition"]
        assert disposition.isascii()
        assert "filename=Kteam-audit.jsonl" in disposition
        encoded = disposition.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded) == "\u212ateam-audit.jsonl"


@pytest.mark.parametrize("body, problem", [
    (b'{"a": "x\\u0000"}', "NUL"),
    (b'{"a": "x\\ud800"}', "lone surrogate"),
    # A surrogate written as UTF-8 bytes: json decodes bodies with surrogatepass.
    ('{"a": "x\ud800"}'.encode("utf-8", "surrogatepass"), "lone surrogate"),
    ('{"a": "x\ud800"}', "lone surrogate"),
    # json reads UTF-16 and UTF-32 bytes too: an escape's bytes are apart there.
    ('{"a": "x\\u0000"}'.encode("utf-16"), "NUL"),
    ('{"a": "x\\u0000"}'.encode("utf-16-be"), "NUL"),
    ('{"a": "x\\ud800"}'.encode("utf-32-le"), "lone surrogate"),
    ('{"a": "x\ud800"}'.encode("utf-16-le", "surrogatepass"), "lone surrogate"),
    (b'{"a": [1e999]}', "NaN and Infinity"),
    (b"[" * 65 + b"]" * 65, "nests deeper"),
])
def test_a_body_without_escapes_is_checked_as_closely_as_one_with_them(body, problem):
    # Bodies with no \u escape and no surrogate bytes skip the walk over their strings.
    with pytest.raises(BadRequest, match=problem):
        inputs.parse_json(body)


@pytest.mark.parametrize("body", [
    b"[" * 64 + b"]" * 64,
    '{"a": "\ud7ff \u00e9", "b": 1.5e308}'.encode(),  # 0xED begins U+D7FF: not a surrogate
    b'{"k\\u0041": "\\u00e9\\ud83d\\ude00"}',  # escapes, a pair among them
])
def test_clean_bodies_pass_either_way(body):
    assert inputs.parse_json(body) is not None


def test_a_utf16_body_with_a_nul_escape_is_a_400_not_a_500(app, alice, hub):
    # json reads UTF-16 bytes: the NUL escape reached PostgreSQL, which keeps no NUL in text.
    url = f"/api/v1/experiments/{hub['experiment_id']}/executions"
    body = json.dumps({**journal(), "node": "v\x00m", "start": "2026-11-23T09:32:00"})
    answer = alice.post(url, data=body.encode("utf-16"), headers={
        "X-CSRF-Token": csrf(alice), "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    assert "NUL" in answer.get_json()["message"]
