"""The dashboard service: profiles, orgs, workspaces, visibility, and the pages' home."""

from flask import Blueprint, Flask

NAME = "dashboard"


def init_app(app: Flask) -> None:
    """Serve dashboard's pages and API, tokens' too; handle auth's account events."""
    from chaoshub.auth import service as auth
    from chaoshub.core import events, web
    from chaoshub.dashboard import (
        routes,  # noqa: F401  (adds its pages to `pages`)
        safety_pages,  # noqa: F401  (adds its pages to `pages`)
        service,
        team_routes,  # noqa: F401  (adds its pages to `pages`)
        tokens,  # noqa: F401  (adds its pages to `pages`)
    )
    from chaoshub.dashboard.models import HandledEvent
    from chaoshub.dashboard.page_views import pages

    app.register_blueprint(pages)
    web.show_kill_switch(app, service.get_kill_switch)  # the banner on every page of an org
    for blueprint in api_blueprints():
        app.register_blueprint(blueprint)
    events.subscribe(app, events.Subscription(
        subscriber=NAME, types=service.AUTH_EVENT_TYPES, handler=service.handle_account_event,
        handled=HandledEvent, pending=auth.pending_events, ack=auth.ack_events))


def api_blueprints() -> list[Blueprint]:
    """The blueprints of dashboard's part of /api/v1, which the OpenAPI document describes."""
    from chaoshub.dashboard import tokens
    from chaoshub.dashboard.api import api, hub_api
    from chaoshub.dashboard.safety_api import safety_api

    return [api, hub_api, tokens.api, safety_api]
