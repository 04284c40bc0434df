"""Listing a workspace's experiments: filters by last run and author, the two orders, keyset
cursors that hold across pages and refuse tampering, and the last run kept on each row."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from chaoshub import create_app
from chaoshub.core import db, migrate
from chaoshub.core.db import transaction
from chaoshub.experiment.models import Experiment, ExperimentContribution
from tests.conftest import POSTGRES_URL, csrf, post_json, signed_up_client, unavailable
from tests.experiment_data import create, experiment, make_token, variant

URL = "/api/v1/orgs/team/workspaces/lab/experiments"


def titled(title: str, tags=("demo",)) -> dict:
    document = experiment()
    document["title"], document["tags"] = title, list(tags)
    return document


def publish(browser, experiment_id: str, outcome: str, node: str = "vm") -> str:
    journal = variant(outcome)
    journal["node"] = node  # another node, another journal: a repeat is kept once
    response = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=journal,
                            headers={"X-CSRF-Token": csrf(browser)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def listed(browser, query: str = "", status: int = 200) -> dict:
    response = browser.get(f"{URL}?{query}")
    assert response.status_code == status, response.get_json()
    return response.get_json()


def ids(browser, query: str = "") -> list[str]:
    return [e["id"] for e in listed(browser, query)["experiments"]]


def every_page(browser, query: str, limit: int) -> list[str]:
    """The ids of every page, following the cursors to the end."""
    seen, cursor = [], None
    for _ in range(50):
        page = listed(browser, f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["experiments"]) <= limit
        seen += [e["id"] for e in page["experiments"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursors never ended")


@pytest.fixture
def team(app):
    """olga's org `team` with a public workspace `lab` (its runs hidden from outsiders), mary
    a member of the org."""
    olga = signed_up_client(app, "olga")
    mary = signed_up_client(app, "mary")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/workspaces",
                     {"name": "lab", "visibility": "public"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/members",
                     {"username": "mary", "role": "member"}).status_code == 201
    return olga, mary


@pytest.fixture
def stocked(team):
    """Six experiments of two authors, run (or not) in a known order.

    Last runs, newest first: e3 passed, e2 deviated, e4 probe-error, e1 passed; never run: e5
    (mary), e0 (olga).
    """
    olga, mary = team
    authors = [olga, olga, mary, mary, olga, mary]
    made = [create(browser, "team", "lab", titled(f"Experiment {n}", tags=[f"t{n % 2}"]))["id"]
            for n, browser in enumerate(authors)]
    executions = {}
    for n, (index, outcome) in enumerate([(1, "passed"), (2, "passed"), (3, "deviated"),
                                          (4, "probe-error"), (2, "deviated"), (3, "passed")]):
        executions[index] = publish(olga, made[index], outcome, node=f"node-{n}")
    return olga, mary, made, executions


def test_listed_experiments_carry_their_last_run(stocked):
    olga, _, made, executions = stocked
    by_id = {e["id"]: e for e in listed(olga)["experiments"]}
    assert by_id[made[2]]["last_run_outcome"] == "deviated"
    assert by_id[made[2]]["last_execution_id"] == executions[2]
    assert by_id[made[3]]["last_run_outcome"] == "passed"
    assert by_id[made[0]]["last_run_outcome"] is None
    assert by_id[made[0]]["last_run_at"] is None and by_id[made[0]]["last_execution_id"] is None
    latest = olga.get(f"/api/v1/experiments/{made[3]}/executions").get_json()["executions"][0]
    assert by_id[made[3]]["last_run_at"] == latest["created_at"]


def test_each_filter_and_their_combinations(stocked):
    olga, mary, made, _ = stocked
    newest_first = list(reversed(made))  # by update: the last made first
    assert ids(olga) == newest_first
    assert ids(olga, "last_run=passed") == [made[3], made[1]]
    assert ids(olga, "last_run=deviated") == [made[2]]
    assert ids(olga, "last_run=probe-error") == [made[4]]
    assert ids(olga, "last_run=aborted") == []
    assert ids(olga, "last_run=none") == [made[5], made[0]]
    assert ids(olga, "author=mary") == [made[5], made[3], made[2]]
    assert ids(mary, "author=MARY") == [made[5], made[3], made[2]]  # usernames: any case
    assert ids(olga, "author=olga") == [made[4], made[1], made[0]]
    assert ids(olga, "author=nobody") == []
    assert ids(olga, "author=mary&last_run=passed") == [made[3]]
    assert ids(olga, "author=olga&last_run=none") == [made[0]]
    assert ids(olga, "author=olga&last_run=passed&tag=t1") == [made[1]]
    assert ids(olga, "last_run=passed&search=experiment%203") == [made[3]]
    assert ids(olga, "author=mary&sort=last_run") == [made[3], made[2], made[5]]


def test_sorting_by_last_run_puts_those_never_run_last(stocked):
    olga, _, made, _ = stocked
    assert ids(olga, "sort=last_run") == [made[3], made[2], made[4], made[1], made[5], made[0]]
    assert ids(olga, "sort=updated") == ids(olga)
    # A change to e0 makes it the most recently updated of those never run; a run of e1 its
    # first.
    changed = titled("Experiment 0, revised", tags=["t0"])
    assert olga.put(f"/api/v1/experiments/{made[0]}", json=changed,
                    headers={"X-CSRF-Token": csrf(olga)}).status_code == 200
    publish(olga, made[1], "aborted", node="again")
    assert ids(olga, "sort=last_run") == [made[1], made[3], made[2], made[4], made[0], made[5]]
    assert ids(olga, "sort=last_run&last_run=none") == [made[0], made[5]]
    assert ids(olga, "sort=last_run&last_run=passed") == [made[3]]
    assert ids(olga)[0] == made[0]


QUERIES = ["", "last_run=passed", "last_run=none", "author=olga", "author=mary&last_run=passed",
           "tag=t0", "author=mary&tag=t1&search=exp"]


@pytest.mark.parametrize("sort", ["updated", "last_run"])
def test_paging_returns_every_experiment_once_in_order(stocked, sort):
    olga = stocked[0]
    for query, limit in itertools.product(QUERIES, (1, 2, 4)):
        whole = ids(olga, f"{query}&sort={sort}&limit=100")
        assert every_page(olga, f"{query}&sort={sort}", limit) == whole, (query, limit)


def test_rows_with_the_same_keys_page_by_id(app, stocked):
    olga, _, made, _ = stocked
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with app.app_context(), transaction("experiment") as session:
        session.execute(sa.update(Experiment).values(updated_at=at))
        session.execute(sa.update(Experiment).where(Experiment.last_run_at.is_not(None))
                        .values(last_run_at=at - timedelta(days=1)))
    ran = sorted([made[1], made[2], made[3], made[4]], reverse=True)
    never = sorted([made[0], made[5]], reverse=True)
    assert ids(olga, "limit=100") == sorted(made, reverse=True)
    assert ids(olga, "sort=last_run&limit=100") == ran + never
    for sort, limit in itertools.product(("updated", "last_run"), (1, 3)):
        assert every_page(olga, f"sort={sort}", limit) == ids(olga, f"sort={sort}&limit=100")


def test_bad_cursors_orders_and_filters_are_400_in_the_one_error_shape(stocked):
    olga = stocked[0]
    first = listed(olga, "limit=2")
    cursor = first["next_cursor"]
    payload, signature = cursor.split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["p"][2] = "00000000-0000-0000-0000-000000000000"
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
    for query in ("sort=oldest", "sort=", "last_run=green", "last_run=PASSED",
                  "cursor=garbage", "cursor=a.b", f"cursor={forged}.{signature}",
                  f"cursor={cursor}x", f"cursor={'A' * 2000}", "cursor=%E2%82%AC.%E2%82%AC",
                  f"cursor={cursor}&sort=last_run", f"cursor={cursor}&last_run=passed",
                  f"cursor={cursor}&author=mary", f"search={'x' * 501}", "limit=ten"):
        if query == "sort=":
            assert listed(olga, query)["experiments"]  # empty means the default
            continue
        response = olga.get(f"{URL}?{query}")
        assert response.status_code == 400, (query, response.get_json())
        assert set(response.get_json()) == {"error", "message", "details"}
    # The cursor is refused in another workspace, too.
    assert olga.get(f"/api/v1/orgs/olga/workspaces/Personal/experiments?cursor={cursor}"
                    ).status_code == 400
    assert listed(olga, f"limit=2&cursor={cursor}")["experiments"]


def test_who_may_not_see_the_runs_sees_no_last_run(app, stocked):
    olga, _, made, _ = stocked
    outsider = signed_up_client(app, "otto")
    # `lab` is public, and its runs are shown to nobody outside the org.
    outside = {e["id"]: e for e in listed(outsider)["experiments"]}
    assert set(outside) == set(made)
    assert all(e["last_run_outcome"] is None and e["last_run_at"] is None
               for e in outside.values())
    for query in ("last_run=passed", "sort=last_run", "last_run=none"):
        assert outsider.get(f"{URL}?{query}").status_code == 403, query
    assert ids(outsider, "author=mary") == [made[5], made[3], made[2]]
    # Filtering by author looks a username up: visitors sign in first.
    assert app.test_client().get(f"{URL}?author=mary").status_code == 401
    assert app.test_client().get(URL).status_code == 200

    olga.patch("/api/v1/orgs/team/workspaces/lab", json={"outsider_executions": "status"},
               headers={"X-CSRF-Token": csrf(olga)})
    assert ids(outsider, "last_run=passed") == [made[3], made[1]]
    assert listed(outsider, "sort=last_run")["experiments"][0]["last_run_outcome"] == "passed"


def test_a_read_token_lists_with_every_filter(app, stocked):
    olga, _, made, _ = stocked
    reader = {"Authorization": "Bearer " + make_token(olga, ["experiments:read",
                                                             "executions:read"])}
    response = app.test_client().get(f"{URL}?author=mary&last_run=passed&sort=last_run",
                                     headers=reader)
    assert response.status_code == 200
    assert [e["id"] for e in response.get_json()["experiments"]] == [made[3]]


def test_a_token_without_executions_read_sees_no_last_runs(app, stocked):
    olga, _, made, _ = stocked
    client = app.test_client()
    reader = {"Authorization": f"Bearer {make_token(olga, ['experiments:read'])}"}
    for query in ("last_run=passed", "sort=last_run"):
        refused = client.get(f"{URL}?{query}", headers=reader)
        assert refused.status_code == 403, query
    listing = client.get(URL, headers=reader).get_json()["experiments"]
    assert sorted(e["id"] for e in listing) == sorted(made)
    assert {(e["last_run_outcome"], e["last_run_at"], e["last_execution_id"])
            for e in listing} == {(None, None, None)}


def test_runs_reported_through_the_runs_api_count_as_last_runs(app, team):
    olga, _ = team
    token = make_token(olga, ["full"])
    bearer = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    opened = client.post("/api/v1/runs", json={"org": "team", "workspace": "lab",
                                               "experiment": {**experiment(), "dry": None}},
                         headers=bearer).get_json()
    assert ids(olga, "last_run=none") == [opened["experiment_id"]]
    finished = client.put(f"/api/v1/runs/{opened['id']}/journal", json=variant("interrupted"),
                          headers=bearer)
    assert finished.status_code == 201, finished.get_json()
    assert ids(olga, "last_run=interrupted") == [opened["experiment_id"]]


# The migration that adds the last run, and fills it in ----------------------------------------


# The experiments table as the older revisions know it, for rows written before the upgrade.
EXPERIMENTS = sa.table(
    "experiments", *(sa.column(c) for c in (
        "id", "workspace_id", "org_id", "title", "description", "created_by", "version")),
    sa.column("tags", sa.JSON), sa.column("document", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)))


@pytest.fixture
def fresh_experiment_database(backend, tmp_path):
    """An empty experiment database of the backend under test, and its URL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'experiment.db'}"
        return
    name = f"chaoshub_test_backfill_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migration_fills_in_each_experiments_last_run(fresh_experiment_database, tmp_path,
                                                           signing_key_file):
    app = create_app({"CHAOSHUB_INSTANCE_PATH": str(tmp_path),
                      "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
                      "EXPERIMENT_DATABASE_URL": fresh_experiment_database})
    migrate.upgrade(app, ("experiment",), "experiment_0003")
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    executions = sa.table(
        "executions", *(sa.column(c) for c in (
            "id", "experiment_id", "workspace_id", "version", "status", "deviated", "outcome",
            "node", "published_by", "published_by_name", "content_hash")),
        sa.column("created_at", sa.DateTime(timezone=True)))
    with app.app_context(), db.database("experiment").engine.begin() as connection:
        for name in ("ran", "tied", "never"):
            connection.execute(EXPERIMENTS.insert().values(
                id=name, workspace_id="w", org_id="o", title=name, description="", tags=[],
                document={}, created_by="a", version=1, created_at=when, updated_at=when))
        for execution_id, experiment_id, outcome, minutes in (
                ("x1", "ran", "passed", 1), ("x3", "ran", "deviated", 3),
                ("x2", "ran", "aborted", 2), ("t1", "tied", "passed", 5),
                ("t2", "tied", "probe-error", 5)):
            connection.execute(executions.insert().values(
                id=execution_id, experiment_id=experiment_id, workspace_id="w", version=1,
                status="completed", deviated=False, outcome=outcome, node="",
                published_by="a", published_by_name="", content_hash=execution_id,
                created_at=when + timedelta(minutes=minutes)))
    migrate.upgrade(app, ("experiment",))
    with app.app_context(), transaction("experiment") as session:
        found = {row.id: (row.last_execution_id, row.last_run_outcome, row.last_run_at)
                 for row in session.scalars(sa.select(Experiment))}
    db.dispose(app)
    assert found == {
        "ran": ("x3", "deviated", when + timedelta(minutes=3)),
        "tied": ("t2", "probe-error", when + timedelta(minutes=5)),
        "never": (None, None, None),
    }


def test_the_migration_indexes_the_contributions_already_there(fresh_experiment_database,
                                                              tmp_path, signing_key_file):
    app = create_app({"CHAOSHUB_INSTANCE_PATH": str(tmp_path),
                      "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
                      "EXPERIMENT_DATABASE_URL": fresh_experiment_database})
    migrate.upgrade(app, ("experiment",), "experiment_0004")
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    documents = {"both": {"contributions": {"Availability": "high", "security": "none"}},
                 "odd": {"contributions": ["not", "a", "map"]}, "bare": {}}
    with app.app_context(), db.database("experiment").engine.begin() as connection:
        for name, document in documents.items():
            connection.execute(EXPERIMENTS.insert().values(
                id=name, workspace_id="w", org_id="o", title=name, description="", tags=[],
                document=document, created_by="a", version=1, created_at=when,
                updated_at=when))
    migrate.upgrade(app, ("experiment",))
    with app.app_context(), transaction("experiment") as session:
        found = {(row.experiment_id, row.name, row.level)
                 for row in session.scalars(sa.select(ExperimentContribution))}
    db.dispose(app)
    assert found == {("both", "availability", "high"), ("both", "security", "none")}


def test_search_finds_words_of_titles_and_descriptions(team):
    olga, _ = team
    made = {}
    for key, title, description in (
            ("pod", "Kill a pod", "Checks that the service survives losing a replica."),
            ("disk", "Fill the disk", "What happens when\nlogs pile up."),
            ("dns", "Break DNS", "Resolvers fail: 100% of lookups.")):
        document = titled(title)
        document["description"] = description
        made[key] = create(olga, "team", "lab", document)["id"]
    assert ids(olga, "search=kill") == [made["pod"]]          # the start of the title
    assert ids(olga, "search=POD") == [made["pod"]]           # a word of it, any case
    assert ids(olga, "search=replica") == [made["pod"]]       # a word of the description
    assert ids(olga, "search=logs%20pile") == [made["disk"]]  # after a line break, words on
    assert set(ids(olga, "search=the")) == {made["pod"], made["disk"]}
    assert ids(olga, "search=100%25") == [made["dns"]]        # % is a character, not a pattern
    assert ids(olga, "search=plica") == []                    # inside a word: no
    assert ids(olga, "search=_") == []


def test_contributions_filter_the_listing(team):
    olga, mary = team
    made = {}
    for key, contributions in (("both", {"Availability": "high", "security": "low"}),
                               ("none", {"availability": "none"}),
                               ("bare", None)):
        document = titled(f"Experiment {key}")
        document.pop("contributions", None)
        if contributions is not None:
            document["contributions"] = contributions
        made[key] = create(olga, "team", "lab", document)["id"]
    assert ids(olga, "contribution=availability") == [made["both"]]
    assert ids(mary, "contribution=SECURITY") == [made["both"]]
    assert ids(olga, "contribution=reliability") == []
    # A new version's contributions replace the old ones.
    changed = titled("Experiment none")
    changed["contributions"] = {"reliability": "medium"}
    assert olga.put(f"/api/v1/experiments/{made['none']}", json=changed,
                    headers={"X-CSRF-Token": csrf(olga)}).status_code == 200
    assert ids(olga, "contribution=reliability") == [made["none"]]
    # Pages of a contribution's listing follow on; a cursor does not cross to another filter.
    page = listed(olga, "contribution=availability&limit=1")
    assert page["next_cursor"] is None
    first = listed(olga, "limit=1")
    refused = olga.get(f"{URL}?limit=1&contribution=reliability&cursor={first['next_cursor']}")
    assert refused.status_code == 400
    assert listed(olga, f"contribution={'x' * 501}", status=400)["error"] == "bad_request"


def test_the_page_size_rule_and_cursors_of_other_listings(stocked):
    olga, _mary, made, _executions = stocked
    assert sorted(every_page(olga, "sort=updated", 4)) == sorted(made)
    assert listed(olga, "limit=101", status=400)
    assert listed(olga, "limit=0", status=400)
    feed = olga.get("/api/v1/activity?limit=1").get_json()["next_cursor"]
    assert feed and listed(olga, f"cursor={feed}", status=400)
