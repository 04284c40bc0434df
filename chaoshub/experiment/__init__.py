"""The experiment service: experiments, their versions, executions and runs."""

from flask import Flask

NAME = "experiment"


def init_app(app: Flask) -> None:
    """Serve the experiment API."""
    from chaoshub.experiment.routes import api

    app.register_blueprint(api)
