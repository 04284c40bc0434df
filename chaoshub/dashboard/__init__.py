"""The dashboard service: profiles, orgs, workspaces, visibility, and the pages' home."""

from flask import Flask

NAME = "dashboard"


def init_app(app: Flask) -> None:
    """Serve the dashboard pages and its API; write auth's account events into audit logs."""
    from chaoshub.auth import service as auth
    from chaoshub.core import events
    from chaoshub.dashboard import (
        service,
        team_routes,  # noqa: F401  (adds its pages to `pages`)
    )
    from chaoshub.dashboard.api import api, hub_api
    from chaoshub.dashboard.models import HandledEvent
    from chaoshub.dashboard.routes import pages

    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(hub_api)
    events.subscribe(app, events.Subscription(
        subscriber=NAME, types=service.ACCOUNT_EVENT_TYPES, handler=service.audit_account_event,
        handled=HandledEvent, pending=auth.pending_events, ack=auth.ack_events))
