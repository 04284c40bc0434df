"""Sign-in through OAuth 2 and OpenID Connect providers, with Authlib's Flask client.

Providers come from configuration: GitHub, GitLab, Google and Bitbucket by their usual settings,
and any number of OpenID Connect issuers named in OIDC_PROVIDERS. Every flow uses `state` and
PKCE; OpenID Connect flows also a `nonce` checked in the ID token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from chaoshub.auth.schemas import ProviderProfile
from chaoshub.core.errors import BadRequest, ServiceUnavailable

log = logging.getLogger(__name__)
EXTENSION = "chaoshub.oauth"


@dataclass(frozen=True)
class Provider:
    """A configured provider: its name in URLs, its button label and how to read a profile."""

    name: str
    label: str
    kind: str  # oidc, github, gitlab or bitbucket


def _settings(config, prefix: str) -> tuple[str, str] | None:
    client_id, secret = config.get(f"{prefix}_CLIENT_ID"), config.get(f"{prefix}_CLIENT_SECRET")
    return (client_id, secret) if client_id and secret else None


def init_app(app: Flask) -> None:
    """Register every provider the configuration names."""
    config = app.config
    oauth = OAuth(app)
    providers: dict[str, Provider] = {}
    # Every call to a provider (discovery, token, keys, profile) gives up after the timeout: a
    # provider that hangs gets the person a clear 503 page, not a request that never ends.
    pkce = {"code_challenge_method": "S256", "default_timeout": config["OAUTH_TIMEOUT_SECONDS"]}
    origins: set[str] = set()  # where sign-in forms may lead (the providers' authorize pages)

    if creds := _settings(config, "GITHUB"):
        base = (config.get("GITHUB_BASE_URL") or "https://github.com").rstrip("/")
        api = (config.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
        oauth.register("github", client_id=creds[0], client_secret=creds[1],
                       authorize_url=f"{base}/login/oauth/authorize",
                       access_token_url=f"{base}/login/oauth/access_token",
                       api_base_url=f"{api}/",
                       client_kwargs={"scope": "read:user user:email",
                                      "token_endpoint_auth_method": "client_secret_post", **pkce})
        providers["github"] = Provider("github", "GitHub", "github")
        origins.add(_origin(base))
    if creds := _settings(config, "GITLAB"):
        base = (config.get("GITLAB_BASE_URL") or "https://gitlab.com").rstrip("/")
        oauth.register("gitlab", client_id=creds[0], client_secret=creds[1],
                       authorize_url=f"{base}/oauth/authorize",
                       access_token_url=f"{base}/oauth/token", api_base_url=f"{base}/",
                       client_kwargs={"scope": "read_user",
                                      "token_endpoint_auth_method": "client_secret_post", **pkce})
        providers["gitlab"] = Provider("gitlab", "GitLab", "gitlab")
        origins.add(_origin(base))
    if creds := _settings(config, "BITBUCKET"):
        base = (config.get("BITBUCKET_BASE_URL") or "https://bitbucket.org").rstrip("/")
        api = (config.get("BITBUCKET_API_URL") or "https://api.bitbucket.org").rstrip("/")
        oauth.register("bitbucket", client_id=creds[0], client_secret=creds[1],
                       authorize_url=f"{base}/site/oauth2/authorize",
                       access_token_url=f"{base}/site/oauth2/access_token",
                       api_base_url=f"{api}/",
                       client_kwargs={"scope": "account email", **pkce})
        providers["bitbucket"] = Provider("bitbucket", "Bitbucket", "bitbucket")
        origins.add(_origin(base))
    oidc = [("google", "GOOGLE", "Google")] if _settings(config, "GOOGLE") else []
    for name in str(config.get("OIDC_PROVIDERS") or "").split(","):
        name = name.strip().lower()
        if name:
            prefix = f"OIDC_{name.upper()}"
            oidc.append((name, prefix, config.get(f"{prefix}_NAME") or name.title()))
    for name, prefix, label in oidc:
        creds = _settings(config, prefix)
        issuer = config.get(f"{prefix}_ISSUER") or (
            "https://accounts.google.com" if name == "google" else "")
        if not creds or not issuer:
            raise RuntimeError(f"{prefix}_ISSUER, _CLIENT_ID and _CLIENT_SECRET are all needed")
        oauth.register(name, client_id=creds[0], client_secret=creds[1],
                       server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
                       client_kwargs={"scope": "openid email profile", **pkce})
        providers[name] = Provider(name, label, "oidc")
        # The authorization endpoint lives on the issuer's origin for the usual providers.
        origins.add(_origin(issuer))
    app.extensions[EXTENSION] = (oauth, providers)
    app.config["FORM_ACTION_ORIGINS"] = sorted(origins)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def providers() -> dict[str, Provider]:
    """The configured providers, by name."""
    return current_app.extensions[EXTENSION][1]


def client(name: str):
    """Authlib's client for a configured provider."""
    return current_app.extensions[EXTENSION][0].create_client(name)


def start(name: str, redirect_uri: str):
    """The redirect to the provider's authorization page (state, PKCE and nonce kept in session)."""
    try:
        return client(name).authorize_redirect(redirect_uri)
    except (requests.RequestException, AuthlibBaseError) as exc:
        log.warning("cannot start sign-in with %s: %s", name, exc.__class__.__name__)
        raise ServiceUnavailable(f"{providers()[name].label} cannot be reached right now") from exc


def finish(name: str) -> ProviderProfile:
    """Exchange the callback's code and read who signed in; errors are clear, never a 500."""
    provider = providers()[name]
    oauth_client = client(name)
    try:
        token = oauth_client.authorize_access_token()
        return _profile(provider, oauth_client, token)
    except requests.RequestException as exc:
        log.warning("%s unreachable during sign-in: %s", name, exc.__class__.__name__)
        raise ServiceUnavailable(f"{provider.label} cannot be reached right now") from exc
    except (AuthlibBaseError, KeyError, ValueError, TypeError) as exc:
        log.info("sign-in with %s refused: %s", name, exc)
        raise BadRequest(f"the sign-in with {provider.label} did not complete: "
                         f"{getattr(exc, 'description', None) or exc.__class__.__name__}") from exc


def _profile(provider: Provider, oauth_client, token: dict) -> ProviderProfile:
    if provider.kind == "oidc":
        info = token.get("userinfo") or oauth_client.userinfo(token=token)
        return ProviderProfile(
            provider=provider.name, subject=str(info["sub"]),
            username_hint=info.get("preferred_username") or (info.get("email") or "").split("@")[0]
            or info.get("name") or "user",
            display_name=info.get("name") or "", email=info.get("email"),
            email_verified=bool(info.get("email_verified")), avatar_url=info.get("picture"))
    if provider.kind == "github":
        user = _json(oauth_client.get("user", token=token))
        email, verified = user.get("email"), False
        emails = _json(oauth_client.get("user/emails", token=token))
        primary = next((e for e in emails if e.get("primary") and e.get("verified")), None)
        if primary:
            email, verified = primary["email"], True
        return ProviderProfile(
            provider=provider.name, subject=str(user["id"]), username_hint=user["login"],
            display_name=user.get("name") or "", email=email, email_verified=verified,
            avatar_url=user.get("avatar_url"))
    if provider.kind == "gitlab":
        user = _json(oauth_client.get("api/v4/user", token=token))
        return ProviderProfile(
            provider=provider.name, subject=str(user["id"]), username_hint=user["username"],
            display_name=user.get("name") or "", email=user.get("email"),
            # GitLab only reports a confirmed address as the user's email.
            email_verified=bool(user.get("email")), avatar_url=user.get("avatar_url"))
    user = _json(oauth_client.get("2.0/user", token=token))
    emails = _json(oauth_client.get("2.0/user/emails", token=token)).get("values", [])
    primary = next((e for e in emails if e.get("is_primary")), None)
    return ProviderProfile(
        provider=provider.name, subject=str(user["uuid"]), username_hint=user["username"],
        display_name=user.get("display_name") or "",
        email=primary["email"] if primary else None,
        email_verified=bool(primary and primary.get("is_confirmed")),
        avatar_url=user.get("links", {}).get("avatar", {}).get("href"))


def _json(response):
    response.raise_for_status()
    return response.json()
