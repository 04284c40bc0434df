"""The WSGI apps the load bench serves with gunicorn besides the hub itself."""

from __future__ import annotations

from flask import Flask

from chaoshub import create_app
from chaoshub.core import cache


def hello() -> Flask:
    """A bare Flask app answering "hello": the ceiling every hub figure is compared with."""
    app = Flask("ceiling")

    @app.get("/")
    def index():
        return "hello"

    return app


def hub_without_listing_cache() -> Flask:
    """The hub, configured as usual, except that listing executions never hits the cache.

    So every listing runs its query: the part that may grow with the executions table.
    """
    app = create_app()
    hub_cache = app.extensions[cache.EXTENSION]
    # The key service.list_executions keeps a listing under (any experiment).
    listings = hub_cache.key("experiment", "executions", "")
    read = hub_cache.backend.get
    hub_cache.backend.get = lambda key: None if key.startswith(listings) else read(key)
    return app
