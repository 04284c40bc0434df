"""The WSGI apps the load bench serves with gunicorn besides the hub itself."""

from __future__ import annotations

from flask import Flask


def hello() -> Flask:
    """A bare Flask app answering "hello": the ceiling every hub figure is compared with."""
    app = Flask("ceiling")

    @app.get("/")
    def index():
        return "hello"

    return app

