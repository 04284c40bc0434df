"""The auth service: accounts, sign-in, sessions and the signing keys of claims."""

from flask import Blueprint, Flask

NAME = "auth"


def init_app(app: Flask) -> None:
    """Serve the auth pages, the JWKS, /api/v1/me, and sign-in through providers."""
    from chaoshub.auth import mail_links, oauth
    from chaoshub.auth.routes import auth
    from chaoshub.core import mail

    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    oauth.init_app(app)
    mail.register(app, mail_links.outbox)  # verification and reset links, after the answers
    app.register_blueprint(auth)
    for blueprint in api_blueprints():
        app.register_blueprint(blueprint)


def api_blueprints() -> list[Blueprint]:
    """The blueprints of auth's part of /api/v1, which the OpenAPI document describes."""
    from chaoshub.auth.api import api

    return [api]
