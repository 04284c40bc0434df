"""The experiment service: experiments, their versions, executions and runs."""

from flask import Blueprint, Flask

NAME = "experiment"


def init_app(app: Flask) -> None:
    """Serve the experiment API, the legacy CLI API, the runs API and the experiment pages;
    deliver its feed entries to dashboard; delete the experiments of the workspaces dashboard
    deletes."""
    from chaoshub.core import events, web
    from chaoshub.dashboard import service as dashboard
    from chaoshub.experiment import feed_outbox, grants, operations, service
    from chaoshub.experiment.editor import editor
    from chaoshub.experiment.environment_pages import environment_pages
    from chaoshub.experiment.guide_pages import guide_pages
    from chaoshub.experiment.legacy import legacy
    from chaoshub.experiment.models import HandledEvent
    from chaoshub.experiment.overview_pages import overview_pages
    from chaoshub.experiment.pages import pages
    from chaoshub.experiment.repository_pages import repository_pages
    from chaoshub.experiment.run_pages import run_pages
    from chaoshub.experiment.schedule_pages import schedule_pages
    from chaoshub.experiment.search_pages import search_pages
    from chaoshub.experiment.trend_pages import trend_pages
    from chaoshub.experiment.webhook_pages import webhook_pages

    (api, runs_api, moves, hub_runs_api, run_events_api, environments_api,
     webhooks_api, schedules_api, repositories_api, git_hooks) = api_blueprints()
    for blueprint in (api, legacy, pages, runs_api, moves, hub_runs_api, run_events_api,
                      run_pages, environments_api, environment_pages, overview_pages,
                      search_pages, guide_pages, webhooks_api, webhook_pages, trend_pages,
                      schedules_api, schedule_pages, repositories_api, git_hooks):
        app.register_blueprint(blueprint)
    app.register_blueprint(editor)  # the pages that write experiments: new, edit, delete
    app.register_blueprint(repository_pages)  # the workspace's git repository and its syncs
    operations.init_app(app)  # runs in /metrics, the queue and the workers in /status/health
    feed_outbox.init_app(app)  # feed entries to dashboard, after the answers
    # The org's kill switch, for the banner on the org's pages: one call to dashboard a page.
    web.show_kill_switch(app, grants.kill_switch_of)
    events.subscribe(app, events.Subscription(
        subscriber=NAME, types=service.DASHBOARD_EVENTS,
        handler=service.handle_dashboard_event, handled=HandledEvent,
        pending=dashboard.pending_events, ack=dashboard.ack_events))


def api_blueprints() -> list[Blueprint]:
    """The blueprints of experiment's part of /api/v1, which the OpenAPI document describes."""
    from chaoshub.experiment.environments_api import environments_api
    from chaoshub.experiment.hub_runs_api import hub_runs_api
    from chaoshub.experiment.move_routes import moves
    from chaoshub.experiment.repositories_api import git_hooks, repositories_api
    from chaoshub.experiment.routes import api
    from chaoshub.experiment.run_events_api import run_events_api
    from chaoshub.experiment.runs_api import runs_api
    from chaoshub.experiment.schedules_api import schedules_api
    from chaoshub.experiment.webhooks_api import webhooks_api

    return [api, runs_api, moves, hub_runs_api, run_events_api, environments_api, webhooks_api,
            schedules_api, repositories_api, git_hooks]
