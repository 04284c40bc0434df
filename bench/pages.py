"""The experiment page, an execution page and a workspace page with its trends as a signed-in
browser gets them, timed in process.

Usage: .venv/bin/python bench/pages.py [-n 200]

A hub on SQLite in a temporary folder (production rules, no Redis: the in-process cache), an
account signed in through the sign-in form, and an experiment with 200 versions and 50
executions published through the API with an API token (the real samples of tests/fixtures);
and a second workspace of 30 experiments with 5,000 runs of the last two days seeded straight
into its database (seed_executions.py), whose page draws their trends, and its trends API.
Each page is fetched with Flask's test client (Accept: text/html), warmed up, then timed n
times, one request after another. Goal: p50 under 30 ms for each page.
"""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from seed_executions import seed_through_app  # bench/seed_executions.py
from timing import median_p99, timed  # bench/timing.py, beside this script

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import db, heap, migrate
from chaoshub.core.claims import development_key_file
from chaoshub.core.web import CSRF_COOKIE

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
USERNAME = "bench"
WORKSPACE = "Personal"  # the private workspace of the account's personal org
SCOPES = ["experiments:read", "experiments:write", "executions:read", "executions:write"]
VERSIONS = 200
EXECUTIONS = 50
TREND_WORKSPACE = "trends"
TREND_EXPERIMENTS = 30
TREND_RUNS = 5000
WARMUP = 20
P50_TARGET_MS = 30.0
# What a browser sends when it follows a link.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="timed requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaoshub-pages-") as folder:
        app = _app(Path(folder))
        heap.freeze_loaded()  # as a serving process does once its app is loaded
        try:
            password = secrets.token_urlsafe(24)
            with app.app_context():
                auth.create_local_account(USERNAME, password)
                token = auth.create_token_for(USERNAME, "pages bench", SCOPES).secret
            print(f"publishing {VERSIONS} versions and {EXECUTIONS} executions ...")
            experiment_id, execution_id = _publish(app.test_client(), token)
            browser = _signed_in(app.test_client(), password)
            print(f"seeding {TREND_RUNS} runs of {TREND_EXPERIMENTS} experiments ...")
            _trend_workspace(app, browser, token)
            base = f"/{USERNAME}/{WORKSPACE}/experiment/{experiment_id}"
            trends = f"/{USERNAME}/{TREND_WORKSPACE}"
            pages = {
                f"experiment page ({VERSIONS} versions, {EXECUTIONS} runs)": base,
                "execution page": f"{base}/execution/{execution_id}",
                f"workspace page (trends of {TREND_RUNS} runs)": trends,
                "workspace trends API":
                    f"/api/v1/orgs/{USERNAME}/workspaces/{TREND_WORKSPACE}/trends",
            }
            timings = {name: _time_page(browser, path, args.n) for name, path in pages.items()}
        finally:
            db.dispose(app)
    print(f"in process, Flask's test client, one request at a time, {args.n} each after "
          f"{WARMUP} to warm up")
    for name, (took, size) in timings.items():
        median, p99 = median_p99(took)
        verdict = "PASS" if median < P50_TARGET_MS else "MISS"
        print(f"  {name:<44} p50 {median:7.2f} ms  p99 {p99:7.2f} ms  ({size // 1024} KB)  "
              f"goal p50 < {P50_TARGET_MS:.0f} ms  {verdict}")


def _app(folder: Path) -> Flask:
    """A hub on SQLite files in `folder`, with production rules, migrated."""
    app = create_app({
        "CHAOSHUB_ENV": "production",
        "PUBLIC_URL": "http://127.0.0.1",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "CHAOSHUB_SIGNING_KEY_FILE": str(development_key_file(str(folder))),
        "CHAOSHUB_INSTANCE_PATH": str(folder / "instance"),
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",  # the bench's own output stays short
    })
    migrate.upgrade(app)
    return app


def _publish(api: FlaskClient, token: str) -> tuple[str, str]:
    """The experiment in its versions, then its executions; their ids (the newest execution)."""
    headers = {"Authorization": f"Bearer {token}"}
    document = json.loads((FIXTURES / "experiment.json").read_text())
    made = _ok(api.post(f"/api/v1/orgs/{USERNAME}/workspaces/{WORKSPACE}/experiments",
                        json=document, headers=headers), 201)
    experiment_id = made["id"]
    for number in range(2, VERSIONS + 1):
        # Each edit changes the document a little, as edits do: a new version each time.
        document = {**document, "description": f"{made['description']} (revision {number})"}
        _ok(api.put(f"/api/v1/experiments/{experiment_id}", json=document, headers=headers))
    sample = json.loads((FIXTURES / "journal.json").read_text())
    began = datetime(2026, 1, 1, tzinfo=UTC)
    execution_id = ""
    for number in range(EXECUTIONS):
        journal = copy.deepcopy(sample)
        start = began + timedelta(hours=number)
        journal.update(experiment=document, start=start.isoformat(),
                       end=(start + timedelta(seconds=journal["duration"])).isoformat())
        if number % 7 == 3:
            journal["deviated"] = True  # a few deviations, so the runs chart has more than one
        execution_id = _ok(api.post(f"/api/v1/experiments/{experiment_id}/executions",
                                    json=journal, headers=headers), 201)["id"]
    saved = _ok(api.get(f"/api/v1/experiments/{experiment_id}", headers=headers))
    if saved["version"] != VERSIONS:
        raise RuntimeError(f"{saved['version']} versions instead of {VERSIONS}")
    return experiment_id, execution_id


def _trend_workspace(app: Flask, browser: FlaskClient, token: str) -> None:
    """A workspace of TREND_EXPERIMENTS experiments and TREND_RUNS runs, one every 30 s."""
    made = browser.post(f"/api/v1/orgs/{USERNAME}/workspaces", json={"name": TREND_WORKSPACE},
                        headers={"X-CSRF-Token": browser.get_cookie(CSRF_COOKIE).value})
    _ok(made, 201)
    document = json.loads((FIXTURES / "experiment.json").read_text())
    ids = [_ok(browser.post(f"/api/v1/orgs/{USERNAME}/workspaces/{TREND_WORKSPACE}/experiments",
                            json={**document, "title": f"Experiment {n:02d}"},
                            headers={"Authorization": f"Bearer {token}"}), 201)["id"]
           for n in range(TREND_EXPERIMENTS)]
    seed_through_app(app, ids[0], TREND_RUNS, progress=lambda _line: None)


def _signed_in(browser: FlaskClient, password: str) -> FlaskClient:
    """The browser, signed in through the sign-in form."""
    browser.get("/signin")  # sets the CSRF cookie the form is posted with
    answer = browser.post("/signin", data={
        "username": USERNAME, "password": password,
        "csrf_token": browser.get_cookie(CSRF_COOKIE).value})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return browser


def _time_page(browser: FlaskClient, path: str, n: int) -> tuple[list[float], int]:
    """Milliseconds each of `n` requests for the page took, and the page's size in bytes."""
    for _ in range(WARMUP):
        page = browser.get(path, headers=BROWSER)
    if page.status_code != 200 or page.mimetype not in ("text/html", "application/json"):
        raise RuntimeError(f"{path} answered {page.status_code} {page.mimetype}")
    statuses = set()
    took = timed(lambda: statuses.add(browser.get(path, headers=BROWSER).status_code), n)
    if statuses != {200}:
        raise RuntimeError(f"{path} answered {sorted(statuses)} while timed")
    return took, len(page.data)


def _ok(answer, status: int = 200) -> dict:
    if answer.status_code != status:
        raise RuntimeError(f"{answer.request.path} answered {answer.status_code}: "
                           f"{answer.get_data(as_text=True)[:300]}")
    return answer.get_json()


if __name__ == "__main__":
    main()
