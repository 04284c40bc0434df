"""The test providers follow their specifications, checked with Authlib's own OAuth 2 client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import flask
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.providers import (
    OAuthStandIn,
    OIDCProvider,
    ServedApp,
    complete_sign_in,
    submit_sign_in,
)

# Nothing listens here: the code is read from the provider's redirect, never delivered.
CALLBACK = "http://127.0.0.1:9/auth/callback/test"
SCOPES = {"github": "read:user user:email", "gitlab": "read_user", "bitbucket": "account email"}


@pytest.fixture(autouse=True)
def insecure_transport(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def oidc():
    with OIDCProvider(client_id="hub", redirect_uris=[CALLBACK]) as provider:
        yield provider


@pytest.fixture(params=sorted(SCOPES))
def standin(request):
    with OAuthStandIn(request.param, redirect_uris=[CALLBACK]) as server:
        yield server


def query(response: requests.Response) -> dict[str, str]:
    """The parameters of the redirect a provider answered with."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class OIDCFlow:
    """One authorization request to an OIDCProvider, made by Authlib's client."""

    def __init__(self, provider: OIDCProvider, auth_method: str = "client_secret_basic",
                 secret: str | None = None):
        self.meta = requests.get(f"{provider.issuer}/.well-known/openid-configuration").json()
        self.client = OAuth2Session(
            provider.client_id, secret or provider.client_secret, scope="openid email profile",
            redirect_uri=CALLBACK, code_challenge_method="S256",
            token_endpoint_auth_method=auth_method)
        self.verifier, self.nonce = generate_token(48), generate_token(20)
        self.url, self.state = self.client.create_authorization_url(
            self.meta["authorization_endpoint"], nonce=self.nonce, code_verifier=self.verifier)

    def sign_in(self, username: str, **claims: str) -> requests.Response:
        return submit_sign_in(requests.Session(), self.url, username, **claims)

    def fetch_token(self, response: requests.Response, verifier: str | None = None) -> dict:
        return self.client.fetch_token(
            self.meta["token_endpoint"], authorization_response=response.headers["Location"],
            state=self.state, code_verifier=verifier or self.verifier)

    def id_token(self, token: dict) -> dict:
        """The ID token's claims, once its signature is checked with the provider's JWKS."""
        keys = KeySet.import_key_set(requests.get(self.meta["jwks_uri"]).json())
        return jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims


def test_oidc_discovery_points_at_the_issuer(oidc):
    meta = requests.get(f"{oidc.issuer}/.well-known/openid-configuration").json()
    assert meta["issuer"] == oidc.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert meta[endpoint].startswith(oidc.issuer)
    assert meta["code_challenge_methods_supported"] == ["S256"]
    [key] = requests.get(meta["jwks_uri"]).json()["keys"]
    assert key["kty"] == "RSA" and key["kid"] and "d" not in key


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_oidc_code_flow_gives_a_signed_id_token(oidc, auth_method):
    oidc.add_user("ada", email="ada@example.org", name="Ada Lovelace", picture="http://p/ada")
    flow = OIDCFlow(oidc, auth_method)
    answer = flow.sign_in("ada")
    assert query(answer)["state"] == flow.state
    token = flow.fetch_token(answer)

    claims = flow.id_token(token)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": oidc.issuer}, aud={"essential": True, "value": "hub"},
        nonce={"essential": True, "value": flow.nonce}, exp={"essential": True},
    ).validate(claims)
    assert (claims["sub"], claims["email"], claims["picture"]) \
        == ("ada", "ada@example.org", "http://p/ada")
    userinfo = flow.client.get(flow.meta["userinfo_endpoint"]).json()
    assert userinfo == {"sub": "ada", "email": "ada@example.org", "email_verified": True,
                        "name": "Ada Lovelace", "picture": "http://p/ada"}


def test_oidc_form_claims_override_the_defaults(oidc):
    flow = OIDCFlow(oidc)
    token = flow.fetch_token(flow.sign_in("bob", email="b@corp.example", name="Bob"))
    claims = flow.id_token(token)
    assert (claims["email"], claims["name"]) == ("b@corp.example", "Bob")


def test_oidc_refuses_a_wrong_code_verifier_and_a_reused_code(oidc):
    flow = OIDCFlow(oidc)
    answer = flow.sign_in("ada")
    with pytest.raises(OAuthError, match="invalid_grant"):
        flow.fetch_token(answer, verifier=generate_token(48))
    flow.fetch_token(answer)
    with pytest.raises(OAuthError, match="invalid_grant"):
        flow.fetch_token(answer)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_oidc_refuses_a_wrong_client_secret(oidc, auth_method):
    flow = OIDCFlow(oidc, auth_method, secret="not the secret")
    with pytest.raises(OAuthError, match="invalid_client"):
        flow.fetch_token(flow.sign_in("ada"))


@pytest.mark.parametrize("drop", ["nonce", "code_challenge"])
def test_oidc_requires_nonce_and_pkce(oidc, drop):
    flow = OIDCFlow(oidc)
    url = flow.url.replace(f"&{drop}=", "&ignored=")
    assert url != flow.url
    answer = requests.get(url, allow_redirects=False)
    assert query(answer)["error"] == "invalid_request"


def test_oidc_refuses_an_unregistered_redirect_uri(oidc):
    flow = OIDCFlow(oidc)
    url, _ = flow.client.create_authorization_url(
        flow.meta["authorization_endpoint"], redirect_uri="http://evil.example/cb",
        nonce=flow.nonce, code_verifier=flow.verifier)
    answer = requests.get(url, allow_redirects=False)
    assert answer.status_code == 400 and "Location" not in answer.headers


def test_oidc_answers_access_denied(oidc):
    flow = OIDCFlow(oidc)
    oidc.deny_next()
    denied = query(flow.sign_in("ada"))
    assert (denied["error"], denied["state"]) == ("access_denied", flow.state)
    assert query(submit_sign_in(requests.Session(), flow.url, "ada", deny=True))["error"] \
        == "access_denied"
    assert "code" in query(flow.sign_in("ada"))


def test_a_stopped_provider_is_unreachable(oidc):
    oidc.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{oidc.issuer}/.well-known/openid-configuration", timeout=2)


class StandInFlow:
    """One authorization request to an OAuthStandIn, made by Authlib's client."""

    def __init__(self, standin: OAuthStandIn, secret: str | None = None):
        self.standin = standin
        # Bitbucket documents HTTP basic only; the others take the secret in the body too.
        method = "client_secret_basic" if standin.kind == "bitbucket" else "client_secret_post"
        self.client = OAuth2Session(
            standin.client_id, secret or standin.client_secret, scope=SCOPES[standin.kind],
            redirect_uri=CALLBACK, code_challenge_method="S256",
            token_endpoint_auth_method=method)
        self.verifier = generate_token(48)
        self.url, self.state = self.client.create_authorization_url(
            standin.base_url + {"github": "/login/oauth/authorize", "gitlab": "/oauth/authorize",
                                "bitbucket": "/site/oauth2/authorize"}[standin.kind],
            code_verifier=self.verifier)

    def sign_in(self, username: str) -> requests.Response:
        return submit_sign_in(requests.Session(), self.url, username)

    def fetch_token(self, response: requests.Response, verifier: str | None = None) -> dict:
        path = {"github": "/login/oauth/access_token", "gitlab": "/oauth/token",
                "bitbucket": "/site/oauth2/access_token"}[self.standin.kind]
        return self.client.fetch_token(
            self.standin.base_url + path, authorization_response=response.headers["Location"],
            state=self.state, code_verifier=verifier or self.verifier)

    def api(self, path: str) -> requests.Response:
        return self.client.get(self.standin.api_url + path)


def test_standin_code_flow_gives_the_documented_profile(standin):
    standin.add_user("ada", id=42, name="Ada Lovelace", email="ada@example.org",
                     avatar_url="http://avatars/ada")
    flow = StandInFlow(standin)
    answer = flow.sign_in("ada")
    assert query(answer)["state"] == flow.state
    token = flow.fetch_token(answer)
    assert token["token_type"].lower() == "bearer"

    if standin.kind == "github":
        assert token["scope"] == "read:user,user:email"
        user = flow.api("/user").json()
        assert {k: user[k] for k in ("id", "login", "name", "email", "avatar_url")} == {
            "id": 42, "login": "ada", "name": "Ada Lovelace", "email": "ada@example.org",
            "avatar_url": "http://avatars/ada"}
        assert flow.api("/user/emails").json() == [{
            "email": "ada@example.org", "primary": True, "verified": True,
            "visibility": "public"}]
    elif standin.kind == "gitlab":
        user = flow.api("/api/v4/user").json()
        assert {k: user[k] for k in ("id", "username", "name", "email", "avatar_url")} == {
            "id": 42, "username": "ada", "name": "Ada Lovelace", "email": "ada@example.org",
            "avatar_url": "http://avatars/ada"}
    else:
        assert token["scopes"] == "account email"
        user = flow.api("/2.0/user").json()
        assert (user["uuid"], user["username"], user["display_name"]) \
            == (42, "ada", "Ada Lovelace")
        assert user["links"]["avatar"]["href"] == "http://avatars/ada"
        assert flow.api("/2.0/user/emails").json()["values"][0] | {"links": None} == {
            "type": "email", "email": "ada@example.org", "is_primary": True,
            "is_confirmed": True, "links": None}


def test_standin_refuses_a_wrong_code_verifier_and_a_reused_code(standin):
    flow = StandInFlow(standin)
    answer = flow.sign_in("ada")
    with pytest.raises(OAuthError):
        flow.fetch_token(answer, verifier=generate_token(48))
    answer = flow.sign_in("ada")
    flow.fetch_token(answer)
    with pytest.raises(OAuthError) as refused:
        flow.fetch_token(answer)
    expected = "bad_verification_code" if standin.kind == "github" else "invalid_grant"
    assert refused.value.error == expected


def test_standin_refuses_a_wrong_client_secret(standin):
    flow = StandInFlow(standin, secret="not the secret")
    with pytest.raises(OAuthError) as refused:
        flow.fetch_token(flow.sign_in("ada"))
    expected = "incorrect_client_credentials" if standin.kind == "github" else "invalid_client"
    assert refused.value.error == expected


def test_standin_answers_access_denied(standin):
    flow = StandInFlow(standin)
    assert query(requests.get(flow.url + "&deny", allow_redirects=False))["error"] \
        == "access_denied"
    standin.deny_next()
    assert query(flow.sign_in("ada"))["error"] == "access_denied"
    assert "code" in query(flow.sign_in("ada"))


def test_standin_api_requires_the_access_token(standin):
    path = {"github": "/user", "gitlab": "/api/v4/user", "bitbucket": "/2.0/user"}[standin.kind]
    assert requests.get(standin.api_url + path).status_code == 401
    headers = {"Authorization": "Bearer wrong"}
    assert requests.get(standin.api_url + path, headers=headers).status_code == 401


def test_github_private_email_is_found_through_user_emails():
    with OAuthStandIn("github", redirect_uris=[CALLBACK]) as github:
        github.add_user("octo", email=None, emails=[
            "octo@example.org", {"email": "old@example.org", "verified": False}])
        flow = StandInFlow(github)
        flow.fetch_token(flow.sign_in("octo"))
        assert flow.api("/user").json()["email"] is None
        emails = flow.api("/user/emails").json()
    assert emails == [
        {"email": "octo@example.org", "primary": True, "verified": True,
         "visibility": "private"},
        {"email": "old@example.org", "primary": False, "verified": False,
         "visibility": "private"}]


def test_github_token_endpoint_answers_form_encoding_without_accept_json():
    with OAuthStandIn("github", redirect_uris=[CALLBACK]) as github:
        flow = StandInFlow(github)
        code = query(flow.sign_in("ada"))["code"]
        answer = requests.post(f"{github.base_url}/login/oauth/access_token", data={
            "client_id": github.client_id, "client_secret": github.client_secret, "code": code,
            "code_verifier": flow.verifier})
    assert answer.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(answer.text)["token_type"] == ["bearer"]


def relying_party(provider: OIDCProvider) -> flask.Flask:
    """A minimal client app: /login redirects to the provider, /callback redeems the code."""
    app = flask.Flask(__name__)
    app.secret_key = "test"
    meta = requests.get(f"{provider.issuer}/.well-known/openid-configuration").json()

    def client() -> OAuth2Session:
        return OAuth2Session(provider.client_id, provider.client_secret,
                             scope="openid email profile", code_challenge_method="S256",
                             redirect_uri=provider.redirect_uris[0])

    @app.get("/login")
    def login():
        flask.session["verifier"] = generate_token(48)
        url, flask.session["state"] = client().create_authorization_url(
            meta["authorization_endpoint"], nonce="n", code_verifier=flask.session["verifier"])
        return flask.redirect(url)

    @app.get("/callback")
    def callback():
        token = client().fetch_token(
            meta["token_endpoint"], authorization_response=flask.request.url,
            state=flask.session["state"], code_verifier=flask.session["verifier"])
        flask.session["sub"] = jwt.decode(token["id_token"], KeySet.import_key_set(
            requests.get(meta["jwks_uri"]).json())).claims["sub"]
        return flask.redirect("/")

    @app.get("/")
    def home():
        return flask.session.get("sub", "anonymous")

    return app


def test_complete_sign_in_stops_at_the_callback_answer(oidc):
    oidc.redirect_uris.clear()
    with ServedApp(relying_party(oidc)) as client_app:
        oidc.redirect_uris.append(f"{client_app.url}/callback")
        session = requests.Session()
        answer = complete_sign_in(session, f"{client_app.url}/login", "ada", email="a@b.c")
        assert answer.url.startswith(f"{client_app.url}/callback?code=")
        assert answer.status_code == 302 and answer.headers["Location"] == "/"
        assert session.get(client_app.url).text == "ada"
