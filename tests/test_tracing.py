"""Traces: off by default; with an OTLP endpoint, a span per request (its route's template,
status and request id) sent to a real OTLP/HTTP receiver, joined to the caller's trace."""

from __future__ import annotations

import pytest

from chaoshub import create_app
from chaoshub.core import db, tracing
from chaoshub.core.config import ConfigError, load_settings
from tests.conftest import signed_up_client
from tests.otlp_receiver import Receiver

SERVER = 2  # SpanKind.SERVER in OTLP's numbering


@pytest.fixture(scope="module")
def receiver():
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def traced(settings, receiver):
    app = create_app({**settings, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                      "OTEL_SERVICE_NAME": "hub-under-test"})
    yield app
    db.dispose(app)


def test_no_endpoint_no_tracing(app):
    assert app.extensions[tracing.EXTENSION] is None
    assert "traceparent" not in app.test_client().get("/status/live").headers


def test_the_endpoint_must_be_a_url():
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})


def test_each_request_is_a_span_named_by_its_route_joined_to_the_callers_trace(traced,
                                                                                receiver):
    alice = signed_up_client(traced, "alice")
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = alice.get("/api/v1/experiments/no-such-id", headers={
        "X-Request-Id": "traced-1", "traceparent": f"00-{caller_trace}-{caller_span}-01"})
    assert answer.status_code == 404
    tracing.flush()
    spans = receiver.wait_for(lambda spans: any(
        s["attributes"].get("chaoshub.request_id") == "traced-1" for s in spans))
    span = next(s for s in spans if s["attributes"].get("chaoshub.request_id") == "traced-1")
    assert receiver.paths[-1] == "/v1/traces"
    assert span["name"] == "GET /api/v1/experiments/<experiment_id>"
    assert (span["service"], span["kind"]) == ("hub-under-test", SERVER)
    assert span["attributes"]["http.route"] == "/api/v1/experiments/<experiment_id>"
    assert span["attributes"]["http.response.status_code"] == 404
    assert (span["trace_id"], span["parent_id"]) == (caller_trace, caller_span)
    # The path itself (its ids) is in no span.
    assert not any("no-such-id" in str(s) for s in spans)


def test_a_made_up_method_names_no_span_of_its_own(traced, receiver):
    answer = traced.test_client().open("/status/live", method="BREW",
                                       headers={"X-Request-Id": "traced-brew"})
    assert answer.status_code == 405
    tracing.flush()
    spans = receiver.wait_for(lambda spans: any(
        s["attributes"].get("chaoshub.request_id") == "traced-brew" for s in spans))
    span = next(s for s in spans if s["attributes"].get("chaoshub.request_id") == "traced-brew")
    assert span["name"] == "_OTHER (no route)"
    assert span["attributes"]["http.request.method"] == "_OTHER"
