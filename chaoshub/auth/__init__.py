"""The auth service: accounts, sign-in, sessions and the signing keys of claims."""

from flask import Flask

NAME = "auth"


def init_app(app: Flask) -> None:
    """Serve the auth pages and the JWKS."""
    from chaoshub.auth.routes import auth

    app.register_blueprint(auth)
