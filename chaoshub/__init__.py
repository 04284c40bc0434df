"""ChaosHub: where chaos engineering teams keep, run and read their Chaos Toolkit experiments."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from chaoshub.core import (
    cache,
    claims,
    db,
    errors,
    health,
    inputs,
    logs,
    metrics,
    openapi,
    request_ids,
    tracing,
    transport,
    web,
)
from chaoshub.core.config import instance_secret, load_settings


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the hub, hosting the services that configuration names."""
    settings = load_settings(overrides)
    app = web.Hub(__name__, instance_path=settings["CHAOSHUB_INSTANCE_PATH"])
    app.url_rule_class = web.LazyBuilderRule
    app.jinja_options = {**app.jinja_options, "bytecode_cache": web.TEMPLATE_CODE}
    app.config.update(settings)
    app.config["SECRET_KEY"] = settings.get("SECRET_KEY") or instance_secret(
        settings, "secret-key"
    )
    app.config["SESSION_COOKIE_SECURE"] = settings["PUBLIC_URL"].startswith("https://")
    logs.configure(settings["LOG_LEVEL"], settings["CHAOSHUB_LOG_FORMAT"])
    request_ids.init_app(app)  # first: every answer carries its request's id, a refusal too
    tracing.init_app(app)
    if settings["PROXY_HOPS"]:
        # Behind N trusted proxies: take the client's address and scheme from their headers.
        hops = settings["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    errors.init_app(app)
    inputs.init_app(app)
    from chaoshub.auth import service as auth_service

    # Auth's public function: run here, or called over HTTP when auth is hosted elsewhere.
    web.init_app(app, resolve_credentials=auth_service.resolve_credentials)
    db.init_app(app)
    cache.init_app(app)
    claims.init_app(app)
    transport.init_app(app)
    metrics.init_app(app)
    health.init_app(app)

    from chaoshub import auth, dashboard, experiment

    services = (auth, dashboard, experiment)
    # Every process documents the whole API, hosted here or not: split, the public address
    # serves one process's document.
    openapi.init_app(app, [blueprint for service in services
                           for blueprint in service.api_blueprints()])
    for service in services:
        if service.NAME in app.config["CHAOSHUB_SERVICES"]:
            service.init_app(app)
    return app
