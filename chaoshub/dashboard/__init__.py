"""The dashboard service: profiles, orgs, workspaces, visibility, and the pages' home."""

from flask import Flask

NAME = "dashboard"


def init_app(app: Flask) -> None:
    """Serve the dashboard pages and its API."""
    from chaoshub.dashboard import team_routes  # noqa: F401  (adds its pages to `pages`)
    from chaoshub.dashboard.api import api, hub_api
    from chaoshub.dashboard.routes import pages

    app.register_blueprint(pages)
    app.register_blueprint(api)
    app.register_blueprint(hub_api)
