"""The dashboard service: profiles, orgs, workspaces, visibility, and the pages' home."""

from flask import Flask

NAME = "dashboard"


def init_app(app: Flask) -> None:
    """Serve the dashboard pages."""
    from chaoshub.dashboard.routes import pages

    app.register_blueprint(pages)
