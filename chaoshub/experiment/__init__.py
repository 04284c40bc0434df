"""The experiment service: experiments, their versions, executions and runs."""

from flask import Flask

NAME = "experiment"


def init_app(app: Flask) -> None:
    """Serve the experiment API, the legacy CLI API, the runs API and the experiment pages."""
    from chaoshub.experiment.legacy import legacy
    from chaoshub.experiment.move_routes import moves
    from chaoshub.experiment.pages import pages
    from chaoshub.experiment.routes import api
    from chaoshub.experiment.runs_api import runs_api

    app.register_blueprint(api)
    app.register_blueprint(legacy)
    app.register_blueprint(pages)
    app.register_blueprint(runs_api)
    app.register_blueprint(moves)
