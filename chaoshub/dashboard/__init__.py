"""The dashboard service: profiles, orgs, workspaces, visibility, and the pages' home."""

from flask import Flask

NAME = "dashboard"


def init_app(app: Flask) -> None:
    """Serve the dashboard pages and the orgs API."""
    from chaoshub.dashboard.api import api
    from chaoshub.dashboard.routes import pages

    app.register_blueprint(pages)
    app.register_blueprint(api)
