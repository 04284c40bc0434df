"""The auth service: accounts, sign-in, sessions and the signing keys of claims."""

from flask import Flask

NAME = "auth"


def init_app(app: Flask) -> None:
    """Serve the auth pages, the JWKS, the tokens API, and sign-in through providers."""
    from chaoshub.auth import oauth
    from chaoshub.auth.api import api
    from chaoshub.auth.routes import auth

    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    oauth.init_app(app)
    app.register_blueprint(auth)
    app.register_blueprint(api)
