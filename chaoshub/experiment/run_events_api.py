"""A run's events for those watching it: server-sent events as they happen, or JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, stream_with_context
from pydantic import BaseModel, Field
from spectree import Response as Documented
from werkzeug.wrappers import Response as WerkzeugResponse

from chaoshub.core.errors import BadRequest, ServiceUnavailable
from chaoshub.core.openapi import ErrorBody, Query, docs, query
from chaoshub.core.web import current_claim, external_url
from chaoshub.experiment import live, service
from chaoshub.experiment.models import Run
from chaoshub.experiment.presenters import experiment_path
from chaoshub.experiment.runs import MAX_SEQ

run_events_api = Blueprint("experiment_run_events", __name__, url_prefix="/api/v1")

EVENT_STREAM = "text/event-stream"


class EventsQuery(Query):
    """From which event on: those with a greater `seq`."""

    after: int = Field(0, ge=0, le=MAX_SEQ,
                       description="Only the events past this seq (Last-Event-ID, when sent, "
                                   "takes precedence for event streams).")


class RunEvents(BaseModel):
    """A run's status and its events past `after` (none for those who may see its status
    only)."""

    status: str
    reason: str
    ended: bool
    execution_url: str | None
    last_seq: int
    events: list[dict[str, Any]]


class _WithEventStream(Documented):
    """The documented answers, the success also as `text/event-stream` (spectree knows JSON
    only)."""

    def generate_spec(self, *args, **kwargs) -> dict[str, Any]:
        spec = super().generate_spec(*args, **kwargs)
        spec["200"]["content"][EVENT_STREAM] = {"schema": {
            "type": "string",
            "description": "Server-sent events: `status` ({status, reason, ended, "
                           "execution_url}) first and on each change, then each run event "
                           "(id: its seq; event: its type; data: the event as JSON); the "
                           "stream ends after the status that says `ended`."}}
        return spec


@run_events_api.get("/runs/<run_id>/events")
@docs.validate(query=EventsQuery, tags=["runs"],
               resp=_WithEventStream(HTTP_200=RunEvents, HTTP_400=ErrorBody,
                                     HTTP_403=ErrorBody, HTTP_404=ErrorBody,
                                     HTTP_503=ErrorBody))
def run_events(run_id: str):
    """A run's events as they happen: `Accept: text/event-stream` for server-sent events
    (resumable with Last-Event-ID; the stream ends when the run does), else JSON."""
    run = service.watch_run(current_claim(), run_id)
    after = _after()
    if not _wants_stream():
        events = live.events_after(run.id, after) if run.detailed else []
        return jsonify({"status": run.status, "reason": run.reason,
                        "ended": run.status in live.ENDED,
                        "execution_url": _execution_url(run.org, run.workspace,
                                                        run.experiment_id, run.execution_id),
                        "last_seq": run.last_seq if run.detailed else 0, "events": events})

    def status_body(row: Run) -> dict[str, Any]:
        return {"status": row.status, "reason": row.reason,
                "execution_url": _execution_url(run.org, run.workspace, run.experiment_id,
                                                row.execution_id)}

    release = live.stream_slot()
    if release is None:
        raise ServiceUnavailable("too many people are watching runs on this server: refresh "
                                 "the page in a while")
    watch = live.Watch(run.id, run.detailed, after, status_body)
    # A werkzeug response, not Flask's: spectree then hands it on untouched instead of
    # reading the whole stream to check it.
    response = WerkzeugResponse(stream_with_context(watch.frames()), mimetype=EVENT_STREAM,
                                headers={"Cache-Control": "no-cache",
                                         "X-Accel-Buffering": "no"})
    response.call_on_close(release)
    return response


def _wants_stream() -> bool:
    return any(value == EVENT_STREAM and quality > 0
               for value, quality in request.accept_mimetypes)


def _after() -> int:
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return query(EventsQuery).after
    if not header.isascii() or not header.isdigit() or int(header) > MAX_SEQ:
        raise BadRequest("Last-Event-ID must be the seq of an event", [
            {"pointer": "", "message": f"a whole number from 0 to {MAX_SEQ}"}])
    return int(header)


def _execution_url(org: str, workspace: str, experiment_id: str,
                   execution_id: str | None) -> str | None:
    if not execution_id:
        return None
    return external_url(f"{experiment_path(org, workspace, experiment_id)}"
                        f"/execution/{execution_id}")
