"""A run watched live: GET /api/v1/runs/{id}/events as server-sent events (from Redis or the
database), resumable, as private as the run; and as JSON."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from chaoshub.experiment import live, run_stream
from tests.conftest import signed_up_client
from tests.experiment_data import journal, make_token
from tests.test_runs_api import FULL, bearer, lifecycle, open_run, put_journal, send

STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def token(alice):
    return make_token(alice, FULL)


def parse(text: str) -> list[dict]:
    """Server-sent events as {"id", "event", "data"} (comments and the retry hint left out)."""
    frames = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = value
        if "event" in fields:
            frames.append({**fields, "data": json.loads(fields["data"])})
    return frames


def whole_stream(app, run_id: str, headers: dict | None = None, query: str = "") -> list[dict]:
    answer = app.test_client().get(f"/api/v1/runs/{run_id}/events{query}",
                                   headers={**STREAM, **(headers or {})})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/event-stream"
    assert answer.headers["Cache-Control"] == "no-cache"
    return parse(answer.get_data(as_text=True))


class Reader:
    """Reads a run's event stream frame by frame, so that a test can act between reads (in
    the thread that opened it: the stream holds the request's context)."""

    def __init__(self, app, run_id: str, headers: dict):
        answer = app.test_client().get(f"/api/v1/runs/{run_id}/events",
                                       headers={**STREAM, **headers}, buffered=False)
        assert answer.status_code == 200
        self.answer = answer
        self.chunks = iter(answer.response)
        self.pending: list[dict] = []
        self.text = ""
        self.ended = False

    def next(self) -> dict | None:
        """The next frame; None once the stream ended."""
        while not self.pending:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.ended = True
                return None
            self.text += chunk.decode() if isinstance(chunk, bytes) else chunk
            *blocks, self.text = self.text.split("\n\n")
            self.pending.extend(parse("\n\n".join(blocks)))
        return self.pending.pop(0)

    def close(self) -> None:
        """Leave the stream before its end, as a viewer closing the page does."""
        self.answer.close()

    def until(self, done) -> list[dict]:
        """The frames up to the one `done` says is the last."""
        seen = []
        while True:
            frame = self.next()
            assert frame is not None, f"the stream ended early after {seen}"
            seen.append(frame)
            if done(frame):
                return seen


def elsewhere(action):
    """Run `action` in a thread of its own, as another request to a server would be: the
    open stream keeps its request's context (and its caller) in this one."""
    result = []
    thread = threading.Thread(target=lambda: result.append(action()))
    thread.start()
    thread.join(60)
    assert result, "the action failed"
    return result[0]


@pytest.fixture(autouse=True)
def bounded(monkeypatch):
    """A stream that waits for what never comes ends anyway, and the test fails, not hangs."""
    monkeypatch.setattr(live, "MAX_SECONDS", 30.0)


def test_an_ended_run_streams_its_events_then_its_end(app, token):
    run_id = open_run(app, token).get_json()["id"]
    events = lifecycle()
    assert send(app, token, run_id, events).status_code == 200
    assert put_journal(app, token, run_id, journal()).status_code == 201

    frames = whole_stream(app, run_id, bearer(token))
    assert [(f["id"], f["event"]) for f in frames[:-1]] == [
        (str(e["seq"]), e["type"]) for e in events]
    assert frames[3]["data"] == {
        "seq": 4, "type": "activity-completed", "timestamp": "2026-11-23T08:57:40.000004+00:00",
        "name": "marker-file-exists", "activity_type": "probe", "status": "succeeded",
        "duration": 0.001, "output": True}
    end = frames[-1]
    assert end["event"] == "status" and "id" not in end
    assert end["data"]["status"] == "finished" and end["data"]["ended"] is True
    assert end["data"]["execution_url"].startswith("http://localhost/alice/Personal/experiment/")


def test_a_viewer_resumes_after_the_last_event_it_had(app, token):
    run_id = open_run(app, token).get_json()["id"]
    send(app, token, run_id, lifecycle())
    put_journal(app, token, run_id, journal())
    resumed = whole_stream(app, run_id, {**bearer(token), "Last-Event-ID": "8"})
    assert [f["id"] for f in resumed if f["event"] != "status"] == ["9", "10", "11", "12"]
    # The first connection of a page that drew the events so far starts past them.
    drawn = whole_stream(app, run_id, bearer(token), "?after=11")
    assert [f["id"] for f in drawn if f["event"] != "status"] == ["12"]
    # Last-Event-ID is what the browser has seen last: it wins over the page's ?after.
    both = whole_stream(app, run_id, {**bearer(token), "Last-Event-ID": "10"}, "?after=2")
    assert [f["id"] for f in both if f["event"] != "status"] == ["11", "12"]

    client = app.test_client()
    bad = client.get(f"/api/v1/runs/{run_id}/events",
                     headers={**STREAM, **bearer(token), "Last-Event-ID": "ten"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_request"
    negative = client.get(f"/api/v1/runs/{run_id}/events?after=-1", headers=bearer(token))
    assert negative.status_code == 400
    assert negative.get_json()["details"][0]["pointer"] == "/after"


def test_events_reach_a_viewer_while_the_run_goes_on(app, token, monkeypatch):
    if app.config["REDIS_URL"]:
        # Only Redis can bring them: the database is read for the status once a minute.
        monkeypatch.setattr(live, "STATUS_SECONDS", 60.0)
    run_id = open_run(app, token).get_json()["id"]
    events = lifecycle()
    send(app, token, run_id, events[:2])
    reader = Reader(app, run_id, bearer(token))
    first = reader.until(lambda f: f.get("id") == "2")
    assert first[0]["event"] == "status" and first[0]["data"] == {
        "status": "running", "reason": "", "execution_url": None, "ended": False}

    elsewhere(lambda: send(app, token, run_id, events[2:4]))  # the activity starts, ends
    live_ones = reader.until(lambda f: f.get("id") == "4")
    assert [(f["event"], f["data"]["name"]) for f in live_ones] == [
        ("activity-started", "marker-file-exists"), ("activity-completed", "marker-file-exists")]

    elsewhere(lambda: send(app, token, run_id, events[4:]))
    assert elsewhere(lambda: put_journal(app, token, run_id, journal())).status_code == 201
    rest = reader.until(lambda f: f["event"] == "status" and f["data"]["ended"])
    assert [f["id"] for f in rest[:-1]] == [str(n) for n in range(5, len(events) + 1)]
    assert rest[-1]["data"]["status"] == "finished"
    assert reader.next() is None  # and the stream ends


def test_kept_events_are_published_on_the_runs_redis_stream(app, token):
    run_id = open_run(app, token).get_json()["id"]
    send(app, token, run_id, lifecycle()[:3])
    send(app, token, run_id, lifecycle()[:4])  # a resend: only the new one is published
    if not app.config["REDIS_URL"]:
        with app.app_context():
            assert run_stream.publish(run_id, lifecycle()) is False  # nothing to publish to
        return
    with app.app_context():
        name = run_stream.key(run_id)
    assert name == f"{app.config['CACHE_PREFIX']}:run:{run_id}:events"
    stream = redis.Redis.from_url(app.config["REDIS_URL"])
    entries = stream.xrange(name)
    assert [json.loads(fields[b"event"])["seq"] for _, fields in entries] == [1, 2, 3, 4]
    assert 0 < stream.ttl(name) <= app.config["RUN_MAX_SECONDS"] + 2 * 3600
    stream.delete(name)


def test_a_failing_redis_leaves_viewers_the_database(app, token, monkeypatch):
    monkeypatch.setattr(run_stream, "read", lambda *args, **kwargs: None)
    monkeypatch.setattr(run_stream, "publish", lambda *args, **kwargs: False)
    run_id = open_run(app, token).get_json()["id"]
    reader = Reader(app, run_id, bearer(token))
    reader.until(lambda f: f["event"] == "status")
    elsewhere(lambda: send(app, token, run_id, lifecycle()[:3]))
    arrived = reader.until(lambda f: f.get("id") == "3")
    assert [f["id"] for f in arrived] == ["1", "2", "3"]
    reader.close()


def test_the_stream_is_as_private_as_the_run(app, alice, token):
    bob = signed_up_client(app, "bob")
    bobs_token = make_token(bob, FULL)
    run_id = open_run(app, token).get_json()["id"]
    client = app.test_client()
    for headers in (STREAM, {}):
        hidden = client.get(f"/api/v1/runs/{run_id}/events", headers={
            **headers, **bearer(bobs_token)})
        assert hidden.status_code == 404
        assert client.get(f"/api/v1/runs/{run_id}/events", headers=headers).status_code == 404
    # A token that may not read executions reads no run's events.
    blind = make_token(alice, ["experiments:read"])
    assert client.get(f"/api/v1/runs/{run_id}/events",
                      headers={**STREAM, **bearer(blind)}).status_code == 403


def test_outsiders_who_see_statuses_get_status_events_only(app, alice, token):
    run_id = open_run(app, token, workspace="Public").get_json()["id"]
    send(app, token, run_id, lifecycle())
    client = app.test_client()
    url = f"/api/v1/runs/{run_id}/events"
    assert client.get(url, headers=STREAM).status_code == 404  # "none" by default
    changed = alice.patch("/api/v1/orgs/alice/workspaces/Public",
                          json={"outsider_executions": "status"},
                          headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert changed.status_code == 200
    as_json = client.get(url).get_json()
    assert (as_json["status"], as_json["events"], as_json["last_seq"]) == ("running", [], 0)

    reader = Reader(app, run_id, {})
    first = reader.until(lambda f: f["event"] == "status")
    assert first == [{"event": "status", "data": {
        "status": "running", "reason": "", "execution_url": None, "ended": False}}]
    finished = elsewhere(lambda: put_journal(app, token, run_id, journal()))
    assert finished.status_code == 201, finished.get_json()
    rest = reader.until(lambda f: f["event"] == "status" and f["data"]["ended"])
    assert [f["event"] for f in rest] == ["status"]  # no event of the run, only its end
    assert reader.next() is None
    # Members still see everything.
    assert len(whole_stream(app, run_id, bearer(token))) == len(lifecycle()) + 1


def test_without_an_event_stream_accept_the_events_come_as_json(app, token):
    run_id = open_run(app, token).get_json()["id"]
    send(app, token, run_id, lifecycle()[:5])
    answer = app.test_client().get(f"/api/v1/runs/{run_id}/events?after=3",
                                   headers=bearer(token))
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    body = answer.get_json()
    assert (body["status"], body["ended"], body["last_seq"]) == ("running", False, 5)
    assert [e["seq"] for e in body["events"]] == [4, 5]
    assert body["events"][1]["type"] == "hypothesis-completed"


def test_a_stream_closes_after_its_time_and_the_viewer_reconnects(app, token, monkeypatch):
    monkeypatch.setattr(live, "MAX_SECONDS", 0.5)
    run_id = open_run(app, token).get_json()["id"]
    send(app, token, run_id, lifecycle()[:2])
    frames = whole_stream(app, run_id, bearer(token))  # ends though the run goes on
    assert [f["event"] for f in frames] == ["status", "run-started", "hypothesis-started"]
    assert frames[0]["data"]["ended"] is False


def test_open_streams_are_bounded_per_process(app, token):
    app.config["RUN_STREAMS_PER_PROCESS"] = 1
    run_id = open_run(app, token).get_json()["id"]
    watching = Reader(app, run_id, bearer(token))
    watching.until(lambda f: f["event"] == "status")
    full = elsewhere(lambda: app.test_client().get(
        f"/api/v1/runs/{run_id}/events", headers={**STREAM, **bearer(token)}))
    assert full.status_code == 503 and full.get_json()["error"] == "service_unavailable"
    # JSON answers hold no thread: still served.
    assert elsewhere(lambda: app.test_client().get(
        f"/api/v1/runs/{run_id}/events", headers=bearer(token))).status_code == 200
    watching.close()  # the viewer leaves: its slot is free again
    put_journal(app, token, run_id, journal())
    assert whole_stream(app, run_id, bearer(token))[-1]["data"]["ended"] is True


def test_the_openapi_document_names_the_event_stream(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    answer = spec["paths"]["/api/v1/runs/{run_id}/events"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/json", "text/event-stream"}
