"""Calls between services, and claim verifications, per request on the hub's busiest paths.

Usage: .venv/bin/python bench/service_calls.py
Serves one process (SQLite, in-process cache) through Flask's test client and counts, for each
request: the calls to each service's public functions made by another service or by the routes
(in split mode each is an HTTP round trip) and the claim verifications that decode or look up a
claim. Targets: at most one call to dashboard and one verification per request, warm.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from chaoshub import create_app
from chaoshub.core import claims, migrate, transport

PASSWORD = "a long enough passphrase"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


@contextmanager
def counting():
    """Count public-function calls by service and claim verifications while inside."""
    counts: Counter[str] = Counter()
    originals = {}
    for interface in transport.INTERFACES.values():
        for function in interface.functions.values():
            originals[function] = function.fn

            def counted(*args, _fn=function.fn, _service=function.service, **kwargs):
                counts[_service] += 1
                return _fn(*args, **kwargs)

            function.fn = counted
    verify = claims.Verifier.verify

    def counted_verify(self, *args, **kwargs):
        counts["claim verifications"] += 1
        return verify(self, *args, **kwargs)

    claims.Verifier.verify = counted_verify
    try:
        yield counts
    finally:
        claims.Verifier.verify = verify
        for function, fn in originals.items():
            function.fn = fn


def measure(app) -> dict[str, Counter[str]]:
    """The counts of each request on `app` (migrated, empty), warm: the second of two."""
    browser = app.test_client()
    browser.get("/signin")
    csrf = browser.get_cookie("chaoshub_csrf").value
    form = {"username": "alice", "password": PASSWORD, "csrf_token": csrf}
    browser.post("/signup", data=form)
    browser.post("/signin", data=form)
    headers = {"X-CSRF-Token": csrf}
    token = browser.post("/api/v1/tokens", headers=headers, json={
        "name": "bench", "scopes": ["experiments:read", "experiments:write",
                                    "executions:read", "executions:write"]}).get_json()["secret"]
    bearer = {"Authorization": f"Bearer {token}"}
    document = json.loads((FIXTURES / "experiment.json").read_text())
    experiment = browser.post("/api/v1/orgs/alice/workspaces/Personal/experiments",
                              headers=headers, json=document).get_json()
    journal = {"experiment": document, "status": "completed", "deviated": False,
               "start": "2026-12-01T10:00:00", "end": "2026-12-01T10:00:05", "duration": 5,
               "steady_states": {"before": None, "after": None, "during": []}, "run": [],
               "rollbacks": [], "node": "bench"}
    page = f"/alice/Personal/experiment/{experiment['id']}"
    published = iter(range(60))

    def publish():
        # A new journal each time: a repeat would be answered without a feed entry.
        body = {**journal, "start": f"2026-12-01T10:{next(published):02d}:00"}
        return app.test_client().post(f"/api/v1/experiments/{experiment['id']}/executions",
                                      headers=bearer, json=body)

    execution = publish().get_json()
    requests = {
        "experiment page": lambda: browser.get(page, headers={"Accept": "text/html"}),
        "execution page": lambda: browser.get(f"{page}/execution/{execution['id']}",
                                              headers={"Accept": "text/html"}),
        "read as chaos run does": lambda: app.test_client().get(
            page, headers={**bearer, "Accept": "application/json"}),
        "publish a journal": publish,
    }
    measured = {}
    for name, send in requests.items():
        send()  # warm the caches
        with counting() as counts:
            response = send()
        assert response.status_code < 300, (name, response.status_code, response.get_data()[:300])
        measured[name] = counts
    return measured


def main() -> None:
    folder = tempfile.mkdtemp(prefix="chaoshub-bench-")
    app = create_app({"CHAOSHUB_INSTANCE_PATH": folder, "PASSWORD_HASHING": "fast",
                      "CACHE_PREFIX": f"chaoshub-bench-{os.getpid()}-{time.time_ns()}",
                      "LOG_LEVEL": "WARNING"})
    migrate.upgrade(app)
    print("per request, warm (second of two):")
    columns = ("auth", 5), ("dashboard", 10), ("experiment", 11), ("verifications", 14)
    print(f"  {'request':26}" + "".join(f" {name:>{width}}" for name, width in columns))
    for name, counts in measure(app).items():
        print(f"  {name:26} {counts['auth']:5} {counts['dashboard']:10} "
              f"{counts['experiment']:11} {counts['claim verifications']:14}")
    print("targets: dashboard <= 1 (publish: 2, the grant and its feed entry), "
          "verifications <= 1 per request")


if __name__ == "__main__":
    main()
