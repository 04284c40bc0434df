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
    }


def test_health_is_degraded_when_redis_is_down(settings):
    app = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0"})
    body = app.test_client().get("/status/health").get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "degraded"


def test_health_is_down_when_a_database_fails(settings):
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
    app = create_app({**settings, "EXPERIMENT_DATABASE_URL": dead})
    response = app.test_client().get("/status/health")
    assert response.status_code == 503
    assert response.get_json()["checks"]["experiment_database"] == "down"
