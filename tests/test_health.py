"""Liveness and health."""

from __future__ import annotations

from chaoshub import create_app


def test_live(client):
    response = client.get("/status/live")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_health_reports_each_database_and_the_cache(client, backend):
    response = client.get("/status/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "auth_database": "ok",
        "dashboard_database": "ok",
        "experiment_database": "ok",
        "redis": "ok" if backend == "postgresql" else "absent",
        "runs_queue": "ok",
        "workers": "none",
    }
    # Each dependency with its latency; the queue counted where runs wait.
    dependencies = body["dependencies"]
    assert set(dependencies) == set(body["checks"])
    for name, dependency in dependencies.items():
        assert dependency["status"] == body["checks"][name]
        assert 0 <= dependency["latency_ms"] < 5000, name
    assert dependencies["runs_queue"]["depth"] == 0
    assert dependencies["runs_queue"]["source"] == ("redis" if backend == "postgresql"
                                                    else "database")
    assert dependencies["workers"]["live"] == 0


def test_health_is_degraded_when_redis_is_down(settings):
    app = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    body = client.get("/status/health").get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "degraded"
    assert body["checks"]["runs_queue"] == "degraded"  # the queue lives on Redis
    # Readiness asks the databases alone: the hub serves from them without Redis.
    assert client.get("/status/ready").status_code == 200


def test_health_is_down_when_a_database_fails(settings):
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
    app = create_app({**settings, "EXPERIMENT_DATABASE_URL": dead})
    client = app.test_client()
    response = client.get("/status/health")
    assert response.status_code == 503
    assert response.get_json()["checks"]["experiment_database"] == "down"
    # What lives in that database is not asked for again (each attempt may wait its timeout).
    assert response.get_json()["checks"]["workers"] == "unknown"
    ready = client.get("/status/ready")
    assert ready.status_code == 503
    assert ready.get_json()["status"] == "not ready"
    assert ready.get_json()["dependencies"]["experiment_database"]["status"] == "down"
    assert ready.get_json()["dependencies"]["auth_database"]["status"] == "ok"
    # Liveness does not depend on the databases: restarting the process would not help.
    assert client.get("/status/live").status_code == 200


def test_ready_answers_200_while_the_databases_answer(client):
    response = client.get("/status/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert set(body["dependencies"]) == {"auth_database", "dashboard_database",
                                         "experiment_database"}


def test_health_lists_a_worker_seen_in_the_last_minute(app):
    from chaoshub.experiment import workers

    with app.app_context():
        workers.announce("host-a:42")
    body = app.test_client().get("/status/health").get_json()
    assert body["checks"]["workers"] == "ok"
    assert body["dependencies"]["workers"]["live"] == 1
    assert body["dependencies"]["workers"]["names"] == ["host-a:42"]
