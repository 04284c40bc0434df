"""Sign-in providers served over HTTP on 127.0.0.1, for testing the hub's OAuth 2 sign-in.

`OIDCProvider` is a real OpenID Connect provider built on Authlib's authorization server.
`OAuthStandIn` serves the documented OAuth endpoints and user API of GitHub, GitLab or
Bitbucket. Both show an HTML sign-in form that a person, a browser or `complete_sign_in`
can submit.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import flask
import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

SCOPE_CLAIMS = {
    "email": {"email", "email_verified"},
    "profile": {"name", "given_name", "family_name", "nickname", "preferred_username",
                "picture", "profile", "website", "locale", "zoneinfo", "updated_at"},
}
STANDARD_CLAIMS = set().union(*SCOPE_CLAIMS.values())
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class ServedApp:
    """A Flask app served on 127.0.0.1 from a daemon thread until `stop()`."""

    def __init__(self, app: flask.Flask):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval makes stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering: later requests to `url` fail to connect."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# OpenID Connect provider


@dataclass
class _Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return _same(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    sub: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class _CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def save_authorization_code(self, code, request):
        data = request.payload.data
        self.server.provider._codes[code] = _Code(
            code=code, client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri"), scope=request.scope, sub=request.user,
            nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=int(time.time()))
        if data.get("nonce"):
            self.server.provider._nonces.add(data["nonce"])

    def query_authorization_code(self, code, client):
        found = self.server.provider._codes.get(code)
        return found if found and found.client_id == client.get_client_id() else None

    def delete_authorization_code(self, authorization_code):
        self.server.provider._codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.sub


class _RequiredS256(CodeChallenge):
    """PKCE on every authorization request, with S256 only."""

    def validate_code_challenge(self, grant, redirect_uri):
        # The hub always sends S256: a request without it, or with "plain", is a regression.
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)


class _IDToken(OpenIDCode):
    def __init__(self, provider: OIDCProvider):
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        return nonce in self.provider._nonces

    def resolve_client_private_key(self, client):
        return self.provider._key

    def get_client_claims(self, client):
        return {"iss": self.provider.issuer, "aud": client.get_client_id()}

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": self.provider._key.kid, "typ": "JWT"}

    def generate_user_info(self, user, scope):
        return UserInfo(self.provider.claims(user, scope))


class OIDCProvider(ServedApp):
    """An OpenID Connect provider: code flow with PKCE (S256) and nonce required, RS256 ID tokens.

    The issuer is `{url}{issuer_path}`; discovery, JWKS, token and userinfo endpoints live under
    it. Register the hub's callback in `redirect_uris` (a list that may be extended later).
    """

    def __init__(self, client_id: str = "chaoshub", client_secret: str | None = None,
                 redirect_uris: list[str] | None = None, *, issuer_path: str = ""):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = list(redirect_uris or [])
        self._users: dict[str, dict] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, tuple[str, str]] = {}
        self._nonces: set[str] = set()
        self._deny_next = False
        # A key per provider, so a hub that checks a token against another provider's keys fails.
        self._key = RSAKey.generate_key(
            2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        super().__init__(self._app(issuer_path))
        self.issuer = self.url + issuer_path

    def add_user(self, sub: str, *, email: str | None = None, name: str | None = None,
                 picture: str | None = None, **claims) -> None:
        """Preset the claims of whoever signs in as `sub`, such as email_verified=False."""
        given = {"email": email, "name": name, "picture": picture, **claims}
        user = self._users.setdefault(sub, _default_claims(sub))
        user.update({k: v for k, v in given.items() if v is not None})

    def claims(self, sub: str, scope: str) -> dict:
        """The claims of `sub` that `scope` grants, as in the ID token and userinfo."""
        granted = set().union(*(SCOPE_CLAIMS.get(s, set()) for s in scope.split()))
        user = self._users.get(sub) or _default_claims(sub)
        return {"sub": sub, **{k: v for k, v in user.items()
                               if k in granted or k not in STANDARD_CLAIMS}}

    def deny_next(self) -> None:
        """Answer the next submitted sign-in with `error=access_denied`."""
        self._deny_next = True

    def hub_settings(self, name: str = "corp", display_name: str | None = None) -> dict[str, str]:
        """The hub's settings for this provider as `name` ("google" or a generic OIDC name)."""
        if name == "google":
            return {"GOOGLE_ISSUER": self.issuer, "GOOGLE_CLIENT_ID": self.client_id,
                    "GOOGLE_CLIENT_SECRET": self.client_secret}
        prefix = f"OIDC_{name.upper()}_"
        return {"OIDC_PROVIDERS": name, prefix + "ISSUER": self.issuer,
                prefix + "CLIENT_ID": self.client_id, prefix + "CLIENT_SECRET": self.client_secret,
                prefix + "NAME": display_name or name.title()}

    def _app(self, issuer_path: str) -> flask.Flask:
        app = flask.Flask(__name__)
        app.config["OAUTH2_SCOPES_SUPPORTED"] = ["openid", "email", "profile"]
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 3600}
        server = AuthorizationServer(
            app, query_client=self._query_client, save_token=self._save_token)
        server.provider = self
        server.register_grant(_CodeGrant, [_RequiredS256(), _IDToken(self)])
        routes = flask.Blueprint("oidc", __name__)

        @routes.get("/.well-known/openid-configuration")
        def discovery():
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce",
                                     *sorted(STANDARD_CLAIMS)],
            }

        @routes.get("/jwks")
        def jwks():
            return KeySet([self._key]).as_dict(private=False)

        @routes.route("/authorize", methods=["GET", "POST"])
        def authorize():
            try:
                grant = server.get_consent_grant()
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            if flask.request.method == "GET":
                return _sign_in_page("Sign in", [("username", "Username (sub)"),
                                                 ("email", "Email"), ("name", "Name")], "Sign in")
            form = flask.request.form
            sub = form.get("username", "").strip()
            denied = form.get("action") == "deny" or self._deny_next
            self._deny_next = False
            if not denied and not sub:
                return _html("Sign in", "<p>A username is required.</p>"), 400
            if not denied:
                self.add_user(sub, email=form.get("email") or None, name=form.get("name") or None)
            return server.create_authorization_response(
                grant_user=None if denied else sub, grant=grant)

        @routes.post("/token")
        def token():
            return server.create_token_response()

        @routes.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            found = self._tokens.get(_bearer_token() or "")
            if found is None:
                challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                return {"error": "invalid_token"}, 401, challenge
            return self.claims(*found)

        app.register_blueprint(routes, url_prefix=issuer_path or None)
        return app

    def _query_client(self, client_id: str) -> _Client | None:
        if client_id != self.client_id:
            return None
        return _Client(self.client_id, self.client_secret, self.redirect_uris)

    def _save_token(self, token: dict, request) -> None:
        self._tokens[token["access_token"]] = (request.user, token.get("scope", ""))


def _default_claims(sub: str) -> dict:
    return {"email": f"{sub}@example.com", "email_verified": True, "name": sub}


# OAuth stand-ins for GitHub, GitLab and Bitbucket


@dataclass(frozen=True)
class _Kind:
    authorize_path: str
    token_path: str
    api_path: str  # where `api_url` points on the stand-in's server
    # (error, description) for a refused client, code, redirect_uri or grant_type.
    token_errors: dict[str, tuple[str, str]]
    deny_description: str


_RFC_TOKEN_ERRORS = {
    "client": ("invalid_client", "Client authentication failed due to unknown client, no client "
               "authentication included, or unsupported authentication method."),
    "code": ("invalid_grant", "The provided authorization grant is invalid, expired, revoked, does "
             "not match the redirection URI used in the authorization request, or was issued to "
             "another client."),
    "grant_type": ("unsupported_grant_type",
                   "The authorization grant type is not supported by the authorization server."),
}
_RFC_DENIED = "The resource owner or authorization server denied the request."
KINDS = {
    "github": _Kind(
        "/login/oauth/authorize", "/login/oauth/access_token", "/api",
        {"client": ("incorrect_client_credentials",
                    "The client_id and/or client_secret passed are incorrect."),
         "code": ("bad_verification_code", "The code passed is incorrect or expired."),
         "redirect_uri": ("redirect_uri_mismatch",
                          "The redirect_uri MUST match the registered callback URL for this "
                          "application."),
         "grant_type": _RFC_TOKEN_ERRORS["grant_type"]},
        "The user has denied your application access."),
    "gitlab": _Kind("/oauth/authorize", "/oauth/token", "", _RFC_TOKEN_ERRORS, _RFC_DENIED),
    "bitbucket": _Kind("/site/oauth2/authorize", "/site/oauth2/access_token", "/api",
                       _RFC_TOKEN_ERRORS, _RFC_DENIED),
}


@dataclass
class _User:
    username: str
    id: int | str
    name: str | None
    email: str | None
    emails: list[dict]
    avatar_url: str


@dataclass
class _Grant:
    client_id: str
    username: str
    redirect_uri: str
    redirect_uri_sent: bool
    scope: str
    code_challenge: str | None


class OAuthStandIn(ServedApp):
    """GitHub, GitLab or Bitbucket's OAuth 2 endpoints and user API, with an authorize page.

    Users who sign in without being added first get `{username}@example.com` as their email.
    Register the hub's callback in `redirect_uris` (a list that may be extended later).
    """

    def __init__(self, kind: str, client_id: str | None = None, client_secret: str | None = None,
                 redirect_uris: list[str] | None = None):
        self.kind = kind
        self._spec = KINDS[kind]
        self.client_id = client_id or f"{kind}-client"
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = list(redirect_uris or [])
        self._users: dict[str, _User] = {}
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, _Grant] = {}
        self._ids = itertools.count(1001)
        self._deny_next = False
        super().__init__(self._app())
        self.base_url = self.url
        self.api_url = self.url + self._spec.api_path

    def add_user(self, username: str, *, id: int | str | None = None, name: str | None = None,
                 email: str | None = None, emails: list[str | dict] | None = None,
                 avatar_url: str | None = None) -> None:
        """Add a user; `email` is the public profile email (None: null), `emails` all addresses.

        `emails` items are addresses (the first is primary, all verified) or dicts with
        `email`, `primary`, `verified` and, for GitHub, `visibility`. Default: `[email]`.
        """
        if emails is None:
            emails = [email] if email else []
        listed = [{"email": e, "primary": i == 0, "verified": True} if isinstance(e, str)
                  else {"primary": False, "verified": True, **e} for i, e in enumerate(emails)]
        for entry in listed:
            entry.setdefault("visibility", "public" if entry["email"] == email else "private")
        if id is None:
            id = f"{{{uuid.uuid4()}}}" if self.kind == "bitbucket" else next(self._ids)
        self._users[username] = _User(username, id, name, email, listed,
                                      avatar_url or f"{self.url}/avatars/{username}.png")

    def deny_next(self) -> None:
        """Answer the next submitted authorization with `error=access_denied`."""
        self._deny_next = True

    def hub_settings(self) -> dict[str, str]:
        """The hub's settings for this provider: client, base URL and API URL (but for GitLab)."""
        prefix = self.kind.upper() + "_"
        settings = {prefix + "CLIENT_ID": self.client_id,
                    prefix + "CLIENT_SECRET": self.client_secret,
                    prefix + "BASE_URL": self.base_url}
        if self.kind != "gitlab":
            settings[prefix + "API_URL"] = self.api_url
        return settings

    def _app(self) -> flask.Flask:
        app = flask.Flask(__name__)
        app.add_url_rule(self._spec.authorize_path, "authorize", self._authorize,
                         methods=["GET", "POST"])
        app.add_url_rule(self._spec.token_path, "token", self._token, methods=["POST"])
        api = self._spec.api_path
        if self.kind == "github":
            app.add_url_rule(f"{api}/user", "user", self._github_user)
            app.add_url_rule(f"{api}/user/emails", "emails", self._github_emails)
        elif self.kind == "gitlab":
            app.add_url_rule(f"{api}/api/v4/user", "user", self._gitlab_user)
        else:
            app.add_url_rule(f"{api}/2.0/user", "user", self._bitbucket_user)
            app.add_url_rule(f"{api}/2.0/user/emails", "emails", self._bitbucket_emails)
        return app

    def _authorize(self):
        args, form = flask.request.args, flask.request.form
        if args.get("client_id") != self.client_id:
            return _html("Unknown application", "<p>No application has this client_id.</p>"), 404
        redirect_uri = args.get("redirect_uri") or next(iter(self.redirect_uris), "")
        # An unregistered redirect_uri gets an error page, never a redirect to it.
        if redirect_uri not in self.redirect_uris:
            return _html("Redirect URI mismatch", "<p>The redirect_uri is not registered.</p>"), 400
        state = args.get("state")
        if flask.request.method == "POST" or "deny" in args:
            denied = "deny" in args or form.get("action") == "deny" or self._deny_next
            self._deny_next = False
            if denied:
                return _redirect(redirect_uri, error="access_denied", state=state,
                                 error_description=self._spec.deny_description)
        challenge = args.get("code_challenge")
        if challenge and args.get("code_challenge_method") != "S256":
            return _redirect(redirect_uri, error="invalid_request", state=state,
                             error_description="code_challenge_method must be S256.")
        if flask.request.method == "GET":
            return _sign_in_page(f"Authorize on {self.kind}", [("username", "Username")],
                                 "Authorize")
        username = form.get("username", "").strip()
        if not username:
            return _html("Authorize", "<p>A username is required.</p>"), 400
        if username not in self._users:
            self.add_user(username, name=username, email=f"{username}@example.com")
        code = secrets.token_urlsafe(20)
        self._codes[code] = _Grant(self.client_id, username, redirect_uri,
                                   "redirect_uri" in args, args.get("scope", ""), challenge)
        return _redirect(redirect_uri, code=code, state=state)

    def _token(self):
        form = flask.request.form
        auth = flask.request.authorization
        if auth and auth.type == "basic":
            client_id, secret = auth.username, auth.password
        elif self.kind == "bitbucket":  # documents HTTP basic client authentication only
            return self._token_error("client")
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        if client_id != self.client_id or not _same(secret or "", self.client_secret):
            return self._token_error("client")
        github = self.kind == "github"
        # GitHub does not need `grant_type`; the others follow RFC 6749.
        if form.get("grant_type", "authorization_code" if github else None) \
                != "authorization_code":
            return self._token_error("grant_type")
        grant = self._codes.pop(form.get("code", ""), None)  # single use, even when refused
        if grant is None:
            return self._token_error("code")
        sent = form.get("redirect_uri")
        # RFC 6749 4.1.3: required and identical when the authorization request had one;
        # GitHub only checks it when sent.
        if (sent is not None or grant.redirect_uri_sent and not github) \
                and sent != grant.redirect_uri:
            return self._token_error("redirect_uri")
        verifier = form.get("code_verifier")
        # RFC 9700 4.8: a verifier without a challenge is refused too.
        if (grant.code_challenge or verifier) and _s256(verifier) != grant.code_challenge:
            return self._token_error("code")
        access_token = secrets.token_urlsafe(30)
        self._tokens[access_token] = grant
        return self._token_response(access_token, grant.scope)

    def _token_response(self, access_token: str, scope: str):
        if self.kind == "github":
            return self._github_answer({"access_token": "gho_" + access_token,
                                        "token_type": "bearer", "scope": ",".join(scope.split())})
        if self.kind == "gitlab":
            return {"access_token": access_token, "token_type": "Bearer", "expires_in": 7200,
                    "refresh_token": secrets.token_urlsafe(30), "scope": scope,
                    "created_at": int(time.time())}
        return {"access_token": access_token, "scopes": scope, "token_type": "bearer",
                "expires_in": 7200, "state": "authorization_code",
                "refresh_token": secrets.token_urlsafe(30)}

    def _token_error(self, problem: str):
        error, description = self._spec.token_errors.get(problem, self._spec.token_errors["code"])
        body = {"error": error, "error_description": description}
        if self.kind == "github":  # GitHub reports token errors with status 200
            return self._github_answer(body)
        return body, 401 if error == "invalid_client" else 400

    def _github_answer(self, body: dict):
        # GitHub answers JSON only to `Accept: application/json`, form encoding otherwise.
        if "application/json" in flask.request.headers.get("Accept", ""):
            return body
        return urlencode(body), 200, {"Content-Type": "application/x-www-form-urlencoded"}

    def _grant(self) -> _Grant | None:
        token = _bearer_token(("bearer", "token") if self.kind == "github" else ("bearer",))
        if token and self.kind == "github":
            token = token.removeprefix("gho_")
        return self._tokens.get(token or "")

    def _github_user(self):
        grant = self._grant()
        if grant is None:
            return _github_error("Bad credentials", 401)
        user = self._users[grant.username]
        return ({"login": user.username, "id": user.id, "node_id": f"U_{user.id}",
                 "avatar_url": user.avatar_url, "html_url": f"{self.url}/{user.username}",
                 "type": "User", "site_admin": False, "name": user.name, "company": None,
                 "blog": "", "location": None, "email": user.email, "bio": None,
                 "public_repos": 0, "followers": 0, "following": 0,
                 "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"},
                {"X-OAuth-Scopes": ", ".join(grant.scope.split())})

    def _github_emails(self):
        grant = self._grant()
        if grant is None:
            return _github_error("Bad credentials", 401)
        # GitHub hides this resource from tokens without the user:email (or user) scope.
        if not {"user:email", "user"} & set(grant.scope.split()):
            return _github_error("Not Found", 404)
        return flask.jsonify([{"email": e["email"], "primary": e["primary"],
                               "verified": e["verified"], "visibility": e["visibility"]}
                              for e in self._users[grant.username].emails])

    def _gitlab_user(self):
        grant = self._grant()
        if grant is None:
            return {"message": "401 Unauthorized"}, 401
        if not {"read_user", "api", "read_api"} & set(grant.scope.split()):
            return {"error": "insufficient_scope", "scope": "read_user api read_api"}, 403
        user = self._users[grant.username]
        return {"id": user.id, "username": user.username, "name": user.name, "state": "active",
                "locked": False, "avatar_url": user.avatar_url,
                "web_url": f"{self.url}/{user.username}", "created_at": "2020-01-01T00:00:00Z",
                "bio": "", "public_email": user.email or "", "email": user.email,
                "two_factor_enabled": False}

    def _bitbucket_user(self):
        grant = self._bitbucket_grant("account")
        if not isinstance(grant, _Grant):
            return grant
        user = self._users[grant.username]
        links = {"self": {"href": f"{self.api_url}/2.0/users/{user.id}"},
                 "html": {"href": f"{self.url}/{user.id}/"},
                 "avatar": {"href": user.avatar_url}}
        return {"type": "user", "uuid": user.id, "username": user.username,
                "display_name": user.name, "nickname": user.username,
                "account_id": f"557058:{uuid.uuid5(uuid.NAMESPACE_URL, str(user.id))}",
                "created_on": "2020-01-01T00:00:00+00:00", "links": links}

    def _bitbucket_emails(self):
        grant = self._bitbucket_grant("email")
        if not isinstance(grant, _Grant):
            return grant
        values = [{"type": "email", "email": e["email"], "is_primary": e["primary"],
                   "is_confirmed": e["verified"],
                   "links": {"self": {"href": f"{self.api_url}/2.0/user/emails/{e['email']}"}}}
                  for e in self._users[grant.username].emails]
        return {"pagelen": 10, "values": values, "page": 1, "size": len(values)}

    def _bitbucket_grant(self, scope: str):
        grant = self._grant()
        if grant is None:
            return {"type": "error", "error": {"message": "Access token expired or invalid."}}, 401
        if scope not in grant.scope.split():
            return {"type": "error", "error": {
                "message": "Your credentials lack one or more required privilege scopes.",
                "detail": {"granted": grant.scope.split(), "required": [scope]}}}, 403
        return grant


def _github_error(message: str, status: int):
    return {"message": message, "documentation_url": "https://docs.github.com/rest",
            "status": str(status)}, status


# Shared pieces


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def _s256(verifier: str | None) -> str | None:
    if verifier is None:
        return None
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _bearer_token(schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    scheme, _, token = flask.request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() in schemes and token.strip() else None


def _redirect(uri: str, **params: str | None) -> flask.Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return flask.redirect(uri + ("&" if urlsplit(uri).query else "?") + query)


def _html(title: str, body: str) -> str:
    title = html.escape(title)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head><body><h1>{title}</h1>{body}</body></html>")


def _sign_in_page(title: str, fields: list[tuple[str, str]], allow: str) -> str:
    rows = "".join(
        f'<p><label for="{name}">{html.escape(label)}</label> '
        f'<input id="{name}" name="{name}"{" required" if name == "username" else ""}></p>'
        for name, label in fields)
    # formnovalidate: denying must not need the required username.
    return _html(title, (
        f'<form method="post" action="{html.escape(flask.request.full_path)}">{rows}'
        f'<button type="submit" name="action" value="allow">{html.escape(allow)}</button> '
        '<button type="submit" name="action" value="deny" formnovalidate>Deny</button></form>'))


class _FormReader(HTMLParser):
    """The first form of a page: its action, method and named fields."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
            self.method = attributes.get("method", "get").lower()
            self._inside = True
        elif self._inside and tag == "input" and attributes.get("name") \
                and attributes.get("type") != "submit":
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


def submit_sign_in(session: requests.Session, page_url: str, username: str, *,
                   deny: bool = False, **claims: str) -> requests.Response:
    """Open a provider's authorize page and submit its form as `username`; return its answer.

    The answer, usually a redirect to the client's redirect_uri, is not followed. When the
    provider redirects at once (an error, or `?deny`), that redirect is returned.
    """
    page = session.get(page_url, allow_redirects=False)
    if page.is_redirect:
        return page
    return _submit(session, page, username, deny, claims)


def complete_sign_in(session: requests.Session, start_url: str, username: str,
                     **claims: str) -> requests.Response:
    """Sign in to the hub from `start_url` through the provider's form as `username`.

    Follows the hub's redirect to the provider, submits the form (with `claims` such as
    email or name, for OIDCProvider), follows the provider's redirect back and returns the
    hub's answer to its callback without following it. Cookies stay in `session`.
    """
    hub = urlsplit(start_url).netloc
    response = session.get(start_url, allow_redirects=False)
    left_hub = False
    for _ in range(10):
        if urlsplit(response.url).netloc == hub:
            if left_hub or not response.is_redirect:
                return response
        else:
            left_hub = True
            if not response.is_redirect:
                response = _submit(session, response, username, False, claims)
                continue
        target = urljoin(response.url, response.headers["Location"])
        response = session.get(target, allow_redirects=False)
    raise AssertionError(f"too many redirects, last at {response.url}")


def _submit(session: requests.Session, page: requests.Response, username: str, deny: bool,
            claims: dict[str, str]) -> requests.Response:
    reader = _FormReader()
    reader.feed(page.text)
    if page.status_code != 200 or reader.action is None:
        raise AssertionError(
            f"no sign-in form at {page.url} ({page.status_code}):\n{page.text[:2000]}")
    unknown = set(claims) - set(reader.fields)
    if unknown:
        raise ValueError(f"the sign-in form at {page.url} has no field {sorted(unknown)}")
    data = {**reader.fields, **claims, "username": username,
            "action": "deny" if deny else "allow"}
    return session.request(reader.method, urljoin(page.url, reader.action), data=data,
                           allow_redirects=False)
