"""The auth service's public interface: accounts, sessions, and the claims everyone else carries."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import delete, select

from chaoshub.auth.models import Account, SignInSession
from chaoshub.auth.schemas import AccountView, SessionGrant
from chaoshub.core import claims
from chaoshub.core.cache import cache
from chaoshub.core.db import transaction
from chaoshub.core.errors import HubError, Unauthorized, ValidationFailed
from chaoshub.core.models import utcnow
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard import service as dashboard

SERVICE = "auth"
interface = ServiceInterface(SERVICE)
log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
SESSION_SCOPES = ("*",)  # a browser session carries all of its user's rights
RESOLVED_SESSION_TTL = 60

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the username is unknown, so both answers take as long.
    return _hasher.hash(secrets.token_urlsafe(16))


@interface.public
def sign_up(username: str, password: str, display_name: str = "") -> AccountView:
    """Create an account with a local password, and its personal org in the dashboard."""
    problems = _sign_up_problems(username, password)
    if problems:
        raise ValidationFailed("the account cannot be created", problems)
    with transaction(SERVICE) as session:
        taken = session.scalar(select(Account.id).where(Account.username_key == username.lower()))
        if taken:
            raise ValidationFailed(
                "the account cannot be created",
                [{"field": "username", "message": "this username is taken"}],
            )
        account = Account(
            username=username,
            username_key=username.lower(),
            display_name=display_name.strip() or username,
            password_hash=_hasher.hash(password),
        )
        session.add(account)
    try:
        dashboard.create_personal_org(_claim_for(account), account.username)
    except HubError:
        # No transaction spans two services: undo our half so nothing is left half-written.
        with transaction(SERVICE) as session:
            session.execute(delete(Account).where(Account.id == account.id))
        raise
    log.info("account created: %s", account.id)
    return _view(account)


@interface.public
def sign_in(username: str, password: str) -> SessionGrant:
    """Check a local password and open a session; the same answer for any kind of failure."""
    with transaction(SERVICE) as session:
        account = session.scalar(
            select(Account).where(Account.username_key == username.strip().lower())
        )
        if not _password_matches(account, password):
            raise Unauthorized("the username or the password is wrong")
        token = secrets.token_urlsafe(32)
        lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
        row = SignInSession(
            token_hash=_token_hash(token), account_id=account.id, expires_at=utcnow() + lifetime
        )
        session.add(row)
    return SessionGrant(token=token, expires_at=row.expires_at, account=_view(account))


@interface.public
def sign_out(session_token: str) -> None:
    """End the session behind a cookie value; unknown values are ignored."""
    token_hash = _token_hash(session_token)
    with transaction(SERVICE) as session:
        session.execute(delete(SignInSession).where(SignInSession.token_hash == token_hash))
    cache().forget(cache().key(SERVICE, "session", token_hash))


@interface.public
def resolve_credentials(session_token: str | None = None, bearer_token: str | None = None) -> str:
    """A signed claim for a request's credentials: its user's, or an anonymous one."""
    if bearer_token:
        # API tokens are not issued yet: any bearer token is unknown.
        raise Unauthorized("the API token is not valid")
    if session_token:
        account = _session_account(session_token)
        if account is not None:
            return _issue(account["id"], account["display_name"], SESSION_SCOPES)
    return _issue(claims.ANONYMOUS, "", ())


@interface.public
def get_account(claim: str) -> AccountView:
    """The account of the claim's user."""
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("nobody is signed in")
    with transaction(SERVICE) as session:
        account = session.get(Account, user.sub)
        if account is None:
            raise Unauthorized("the account no longer exists")
        return _view(account)


def jwks() -> dict:
    """The public keys claims are signed with (served at /auth/.well-known/jwks.json)."""
    return claims.key_ring().jwks()


def _issue(sub: str, name: str, scopes: tuple[str, ...]) -> str:
    config = current_app.config
    return claims.issue(
        claims.key_ring(),
        issuer=config["CLAIM_ISSUER"],
        sub=sub,
        name=name,
        scopes=scopes,
        ttl=config["CLAIM_TTL"],
    )


def _claim_for(account: Account) -> str:
    return _issue(account.id, account.display_name, SESSION_SCOPES)


def _session_account(token: str) -> dict | None:
    token_hash = _token_hash(token)

    def load() -> dict | None:
        with transaction(SERVICE) as session:
            row = session.execute(
                select(Account.id, Account.display_name, SignInSession.expires_at)
                .join(SignInSession, SignInSession.account_id == Account.id)
                .where(SignInSession.token_hash == token_hash)
            ).first()
        if row is None or row.expires_at <= utcnow():
            return None
        return {"id": row.id, "display_name": row.display_name,
                "expires_at": row.expires_at.timestamp()}

    account = cache().remember(
        cache().key(SERVICE, "session", token_hash), load, ttl=RESOLVED_SESSION_TTL
    )
    if account is None or account["expires_at"] <= utcnow().timestamp():
        return None
    return account


def _password_matches(account: Account | None, password: str) -> bool:
    stored = account.password_hash if account and account.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return account is not None and account.password_hash is not None


def _sign_up_problems(username: str, password: str) -> list[dict]:
    problems = []
    if not USERNAME.match(username or ""):
        problems.append({
            "field": "username",
            "message": "2 to 39 letters, digits, '-' or '_', starting with a letter or digit",
        })
    if not MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH:
        problems.append({
            "field": "password",
            "message": f"at least {MIN_PASSWORD_LENGTH} characters",
        })
    elif username and password.lower() == username.lower():
        problems.append({"field": "password", "message": "must differ from the username"})
    return problems


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        username=account.username,
        display_name=account.display_name,
        created_at=account.created_at,
    )
