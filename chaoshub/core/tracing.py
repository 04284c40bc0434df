"""Traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: a span for each request a process
serves and each call it makes to another service, sent over OTLP/HTTP with OpenTelemetry, the
trace context passed on in `traceparent` so that one trace follows a request across services.

Spans carry the route's template, never its path or query (ids and tokens stay out), and the
request id, so that a trace and the log lines of the same request find each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app, g, request

from chaoshub.core import request_ids
from chaoshub.core.config import ConfigError
from chaoshub.core.metrics import METHODS

EXTENSION = "chaoshub.tracing"
_providers: dict[tuple[str, str], Any] = {}  # one per endpoint and name: apps share it
_lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Trace the app's requests when an OTLP endpoint is configured."""
    endpoint = str(app.config["OTEL_EXPORTER_OTLP_ENDPOINT"]).rstrip("/")
    app.extensions[EXTENSION] = None
    if not endpoint:
        return
    name = app.config["OTEL_SERVICE_NAME"] or "chaoshub-" + "-".join(
        app.config["CHAOSHUB_SERVICES"])
    app.extensions[EXTENSION] = _provider(endpoint, name).get_tracer("chaoshub")
    # Second, after the request id: a request refused by a later check has its span too.
    app.before_request_funcs.setdefault(None, []).insert(1, _start)
    app.after_request(_status)
    app.teardown_request(_end)


def _provider(endpoint: str, name: str):
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not "
                          "installed: pip install 'chaoshub[tracing]'") from exc
    with _lock:
        if (endpoint, name) not in _providers:
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            # Batched, in a thread of its own: a slow collector never slows a request.
            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=5)))
            _providers[endpoint, name] = provider
        return _providers[endpoint, name]


def flush() -> None:
    """Send the spans ended so far (tests, and a process about to exit)."""
    for provider in list(_providers.values()):
        provider.force_flush()


def _start() -> None:
    from opentelemetry import context, propagate, trace

    route = request.url_rule.rule if request.url_rule else "(no route)"
    # A client picks the method: one it made up is "_OTHER" (OpenTelemetry's word), so that
    # span names stay as few as the routes.
    method = request.method if request.method in METHODS else "_OTHER"
    span = current_app.extensions[EXTENSION].start_span(
        f"{method} {route}", context=propagate.extract(request.headers),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route,
                    "chaoshub.request_id": request_ids.current() or ""})
    g.chaoshub_trace = (span, context.attach(trace.set_span_in_context(span)))


def _status(response: Response) -> Response:
    if "chaoshub_trace" in g:
        g.chaoshub_trace[0].set_attribute("http.response.status_code", response.status_code)
    return response


def _end(error: BaseException | None = None) -> None:
    from opentelemetry import context, trace

    traced = g.pop("chaoshub_trace", None)
    if traced is None:
        return
    span, token = traced
    if error is not None:  # its class only: a message may quote what was sent
        span.set_status(trace.Status(trace.StatusCode.ERROR, error.__class__.__name__))
    span.end()
    context.detach(token)


@contextmanager
def call_span(service: str, function: str, headers: dict[str, str]) -> Iterator[None]:
    """A span for a call to `service`'s `function`, its context put into `headers`."""
    tracer = current_app.extensions.get(EXTENSION)
    if tracer is None:
        yield
        return
    from opentelemetry import propagate, trace

    # Exceptions are not recorded as they are: a message may quote what was sent.
    with tracer.start_as_current_span(f"call {service}.{function}", kind=trace.SpanKind.CLIENT,
                                      attributes={"rpc.service": service, "rpc.method": function},
                                      record_exception=False,
                                      set_status_on_exception=False) as span:
        propagate.inject(headers)
        try:
            yield
        except Exception as exc:
            span.set_status(trace.Status(trace.StatusCode.ERROR, exc.__class__.__name__))
            raise
