"""The auth service's public interface: accounts, sessions, API tokens, and their claims."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chaoshub.auth import mail_links, passwords
from chaoshub.auth import secrets as token_secrets
from chaoshub.auth.models import (
    Account,
    ApiToken,
    EmailToken,
    Identity,
    Name,
    OutboxAck,
    OutboxEvent,
    SignInSession,
)
from chaoshub.auth.schemas import (
    AccountView,
    Caller,
    EmailAddress,
    IdentityView,
    NewToken,
    ProviderProfile,
    SessionGrant,
    TokenPage,
    TokenView,
)
from chaoshub.core import claims, events, mail, paging, ratelimit
from chaoshub.core.cache import MISSING, cache
from chaoshub.core.db import transaction
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from chaoshub.core.models import lookup_key, utcnow
from chaoshub.core.transport import ServiceInterface

SERVICE = "auth"
TOKENS = "api tokens"  # the listing's name, signed into its cursors
interface = ServiceInterface(SERVICE)
log = logging.getLogger(__name__)
# Dashboard makes a new account's profile and personal org, and writes account security events
# into the audit log of each of the account's orgs.
EVENT_SUBSCRIBERS = ("dashboard",)
outbox = events.Outbox(SERVICE, OutboxEvent, OutboxAck, EVENT_SUBSCRIBERS)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}$")
USERNAME_RULE = "2 to 39 letters, digits, '-' or '_', starting with a letter or digit"
# Usernames and org names become the first segment of URLs: none may shadow a route of the hub.
RESERVED_NAMES = frozenset({
    "about", "account", "admin", "api", "auth", "docs", "help", "internal", "invitations",
    "login", "logout", "metrics", "new", "orgs", "password", "search", "settings", "signin",
    "signout", "signup", "static", "status", "tokens",
})
# The scopes a token may carry, and what a session's claim carries instead: core's, for all.
SCOPES, SESSION_SCOPES = claims.SCOPES, claims.SESSION_SCOPES
# What each purpose needs. The CLI reads the experiment it runs, publishes it and reports its
# run; CI does that and starts runs on the hub. The audit log (sign-in and token addresses) is in
# no preset but full.
CLI_SCOPES = ("experiments:read", "experiments:write", "executions:read", "executions:write")
SCOPE_PRESETS = {"cli": CLI_SCOPES,
                 "read-only": ("experiments:read", "executions:read", "orgs:read"),
                 "ci": (*CLI_SCOPES, "runs:execute"),
                 "full": SCOPES}
RESOLVED_TTL = 60  # seconds a resolved session or token stays cached (revocation forgets it)
LAST_USED_EVERY = 60  # seconds between two writes of a token's last use from the same IP
SIGN_IN_LIMIT, SIGN_IN_WINDOW = 10, 900  # failed sign-ins per username and address
SIGN_IN_ADDRESS_LIMIT = 50  # failed sign-ins per address, whatever the usernames
TOKEN_FAILURE_LIMIT, TOKEN_FAILURE_WINDOW = 30, 60  # bad bearer tokens per address
SIGN_UP_WINDOW = 3600  # sign-ups per address: SIGNUP_LIMIT_PER_HOUR
MAIL_WINDOW = 3600  # the window of the limits on mail below
VERIFY_MAIL_LIMIT = 5  # verification mails per account
RESET_MAIL_LIMIT = 3  # reset mails per account (more asks send nothing, answered alike)
RESET_ASK_LIMIT = 10  # reset asks per client address
# How recent a sign-in must be to add a first password or change the address of an account
# without a password (nothing else proves the session is its owner's).
RECENT_SIGN_IN = timedelta(minutes=10)
# How recent a session's sign-in must be to create an API token without the current password.
TOKEN_SIGN_IN = timedelta(hours=2)
SIGN_IN_AGAIN = ("for your safety, this needs a recent sign-in: sign in again (within 10 "
                 "minutes), then make the change")
TOKEN_SIGN_IN_AGAIN = ("for your safety, making a token needs a recent sign-in: sign in again, "
                       "then make the token")
CHANGE_SUBJECTS = {"password_changed": "Your ChaosHub password was changed",
                   "password_added": "A password was added to your ChaosHub account",
                   "email_changed": "Your ChaosHub email address was changed",
                   "email_removed": "Your ChaosHub email address was removed",
                   "identity_linked": "A sign-in was linked to your ChaosHub account",
                   "identity_unlinked": "A sign-in was removed from your ChaosHub account"}


# Accounts ----------------------------------------------------------------------------------


@interface.public
def sign_up(username: str, password: str, display_name: str = "",
            client_ip: str = "") -> SessionGrant:
    """Create an account with a local password (the sign-up form), if sign-up is open, and
    open its first session: a new account needs no second sign-in."""
    config = current_app.config
    if not config["SIGNUP_OPEN"]:
        raise Forbidden("sign-up is closed on this hub: ask an administrator for an invitation")
    domains = config["SIGNUP_ALLOWED_DOMAINS"]
    if domains:
        raise Forbidden("sign-up is closed to passwords here: continue with a sign-in provider "
                        "using your address at " + ", ".join(sorted(domains)))
    # Every attempt costs a password hash (a fifth of a second, 64 MiB): count them all.
    limit = config["SIGNUP_LIMIT_PER_HOUR"]
    ratelimit.refuse_when_over(SERVICE, "sign-up", client_ip, limit, SIGN_UP_WINDOW)
    ratelimit.record_failure(SERVICE, "sign-up", client_ip, SIGN_UP_WINDOW)
    created = create_local_account(username, password, display_name)
    with transaction(SERVICE) as session:
        account = session.get(Account, created.id)
    return _open_session(account, {"method": "password", "ip": client_ip or None})


def create_local_account(username: str, password: str, display_name: str = "") -> AccountView:
    """Create an account with a local password and its personal org (operators bypass closures)."""
    problems = []
    if not USERNAME.match(username or ""):
        problems.append({"pointer": "/username", "message": USERNAME_RULE})
    weak = passwords.problem(password, username)
    if weak:
        problems.append({"pointer": "/password", "message": weak})
    if problems:
        raise ValidationFailed("the account cannot be created", problems)
    account = Account(
        username=username,
        username_key=username.lower(),
        display_name=display_name.strip()[:100] or username,
        password_hash=passwords.hash_password(password),
    )
    return _create_account(account)


@interface.public
def sign_in(username: str, password: str, client_ip: str = "") -> SessionGrant:
    """Check a local password and open a session; the same answer for any kind of failure."""
    who = f"{client_ip}|{(username or '').strip().lower()}"
    # Per address and name (guessing one password), and per address (trying many names).
    ratelimit.refuse_when_over(SERVICE, "sign-in", who, SIGN_IN_LIMIT, SIGN_IN_WINDOW)
    ratelimit.refuse_when_over(SERVICE, "sign-in-address", client_ip, SIGN_IN_ADDRESS_LIMIT,
                               SIGN_IN_WINDOW)
    with transaction(SERVICE) as session:
        account = session.scalar(
            select(Account).where(Account.username_key == lookup_key((username or "").strip()))
        )
        stored = account.password_hash if account else None
        if not passwords.matches(stored, password or ""):
            ratelimit.record_failure(SERVICE, "sign-in", who, SIGN_IN_WINDOW)
            ratelimit.record_failure(SERVICE, "sign-in-address", client_ip, SIGN_IN_WINDOW)
            raise Unauthorized("the username or the password is wrong")
    ratelimit.clear(SERVICE, "sign-in", who)
    return _open_session(account, {"method": "password", "ip": client_ip or None})


def sign_in_with_identity(profile: ProviderProfile, client_ip: str = "") -> SessionGrant:
    """Sign in with a provider identity; its first sign-in creates the account (if allowed).

    Not part of the remote interface: only auth's own callback, which checked the provider's
    answer, may vouch for a profile.
    """
    with transaction(SERVICE) as session:
        account = session.scalar(
            select(Account).join(Identity, Identity.account_id == Account.id).where(
                Identity.provider == profile.provider, Identity.subject == profile.subject)
        )
    if account is None:
        account = _sign_up_with_identity(profile)
    return _open_session(account, {"method": profile.provider, "ip": client_ip or None})


# What a claim made for a run may do: read and report runs and executions, nothing else.
RUN_REPORTING_SCOPES = ("executions:read", "executions:write")


@interface.public(callers=("experiment",))
def run_claim(account_id: str, scopes: list[claims.Scope], run_id: str) -> str:
    """A claim for the account that started run `run_id` on the hub, limited to reporting
    that run: what the experiment service's workers act with (they hold no signing key)."""
    # Only experiment may call this (service identity): it has checked that the account
    # started the run; the claim can do no more than that account could, and only report.
    if not scopes or not set(scopes) <= set(RUN_REPORTING_SCOPES):
        raise Forbidden("a run's claim may only read and report runs")
    if not isinstance(run_id, str) or not run_id:
        raise ValidationFailed("the run's claim cannot be made", [
            {"pointer": "/run_id", "message": "the run it reports is needed"}])
    with transaction(SERVICE) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("no such account")
        return _issue(account.id, account.display_name, scopes, run=run_id)


# A run's token lives no longer than this, whatever its run's deadline (a week, the longest a
# policy allows, and a day's margin).
RUN_TOKEN_MAX_SECONDS = 8 * 24 * 3600
RUN_TOKEN = "run"  # the purpose of tokens made for runs


@interface.public(callers=("experiment",))
def mint_run_token(account_id: str, run_id: str, workspace_id: str, seconds: int) -> str:
    """A real API token for the account that started a run, kept to the run's workspace, able
    only to report runs, living `seconds`: what the run's Kubernetes Job reports with. Its
    secret is in the answer, this once; no listing shows it; `revoke_run_token` ends it."""
    # Only experiment may call this (service identity): it has checked that the account
    # started the run, as for run_claim.
    if not isinstance(seconds, int) or not 1 <= seconds <= RUN_TOKEN_MAX_SECONDS:
        raise ValidationFailed("the run's token cannot be made", [
            {"pointer": "/seconds", "message": f"from 1 to {RUN_TOKEN_MAX_SECONDS} seconds"}])
    if not run_id or not workspace_id:
        raise ValidationFailed("the run's token cannot be made", [
            {"pointer": "/run_id", "message": "a run and its workspace are needed"}])
    secret = token_secrets.new_token()
    with transaction(SERVICE) as session:
        if session.get(Account, account_id) is None:
            raise NotFound("no such account")
        token = ApiToken(
            account_id=account_id, name=f"run {run_id}"[:100],
            token_hash=token_secrets.token_hash(secret), hint=token_secrets.hint(secret),
            scopes=list(RUN_REPORTING_SCOPES), workspace_id=workspace_id,
            expires_at=utcnow() + timedelta(seconds=seconds), purpose=RUN_TOKEN, run_id=run_id)
        session.add(token)
        session.flush()
        token_id = token.id
    log.info("run token %s made for run %s", token_id, run_id)
    return secret


@interface.public(callers=("experiment",))
def revoke_run_token(run_id: str) -> int:
    """Revoke the tokens made for a run (it ended): the next request with one is refused.
    How many were revoked."""
    with transaction(SERVICE) as session:
        rows = list(session.scalars(select(ApiToken).where(
            ApiToken.run_id == run_id, ApiToken.purpose == RUN_TOKEN,
            ApiToken.revoked_at.is_(None))))
        for token in rows:
            token.revoked_at = utcnow()
        hashes = [t.token_hash for t in rows]
    if hashes:
        cache().forget(*(_token_key(h) for h in hashes))
    return len(hashes)


@interface.public(callers=("dashboard",))
def get_account(claim: str) -> AccountView:
    """The account of the claim's user."""
    user = _signed_in(claim)
    with transaction(SERVICE) as session:
        account = session.get(Account, user.sub)
        if account is None:
            raise Unauthorized("the account no longer exists")
        return _view(account)


@interface.public
def describe_caller(claim: str) -> Caller:
    """Who the claim speaks for, and the rights of the credential behind it."""
    user = _signed_in(claim)
    account = get_account(claim)
    session_claim = user.is_session
    return Caller(
        id=account.id,
        username=account.username,
        display_name=account.display_name,
        credential="session" if session_claim else "token",
        scopes=list(SCOPES) if session_claim else list(user.scopes),
        workspace=user.workspace,
    )


# Identities --------------------------------------------------------------------------------


@interface.public
def list_identities(claim: str) -> list[IdentityView]:
    """The provider identities linked to the claim's account."""
    user = _signed_in(claim)
    with transaction(SERVICE) as session:
        rows = session.scalars(select(Identity).where(Identity.account_id == user.sub)
                               .order_by(Identity.linked_at))
        return [_identity_view(i) for i in rows]


def link_identity(claim: str, profile: ProviderProfile, session_token: str | None = None,
                  client_ip: str = "", base_url: str = "", provider_label: str = ""
                  ) -> IdentityView:
    """Add a provider identity to the signed-in account (auth's callback only, as above), for
    a session that began moments ago; the account's verified address is told."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        account = _account_of(session, user)
        existing = session.scalar(select(Identity).where(
            Identity.provider == profile.provider, Identity.subject == profile.subject))
        if existing is not None:
            if existing.account_id == user.sub:
                return _identity_view(existing)
            raise Conflict("this identity already belongs to another account")
        # A linked identity signs in whatever the password or the address become: a session
        # someone else holds (a browser left signed in) must not add one of theirs.
        require_recent_sign_in(session, account, session_token)
        identity = Identity(account_id=user.sub, provider=profile.provider,
                            subject=profile.subject, email=profile.email)
        session.add(identity)
        session.flush()
        # The provider only: the identity's subject and address stay out of the audit log.
        _account_event(session, account.id, "identity_linked",
                       {"provider": profile.provider, "ip": client_ip or None})
        if account.email and account.email_verified_at is not None:
            _tell_old_address(session, account, account.email, "identity_linked", client_ip,
                              base_url, provider=provider_label or profile.provider)
        log.info("identity of %s linked to %s", profile.provider, account.id)
        return _identity_view(identity)


def require_recent_sign_in(session: Session, account: Account,
                           session_token: str | None) -> None:
    """Forbidden, saying to sign in again, unless `session_token`'s session began within
    RECENT_SIGN_IN."""
    if not session_token or not _recent(session, account.id, _hash(session_token)):
        raise Forbidden(SIGN_IN_AGAIN, {"sign_in": "/signin?next=/settings"})


@interface.public
def unlink_identity(claim: str, identity_id: str, current_password: str | None = None,
                    session_token: str | None = None, client_ip: str = "",
                    base_url: str = "", provider_label: str = "") -> None:
    """Remove a linked identity, unless it is the account's last way to sign in: the current
    password is needed (without one, a recent sign-in), and the verified address is told."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        identity = session.get(Identity, identity_id)
        if identity is None or identity.account_id != user.sub:
            raise NotFound("no such identity")
        account = _account_of(session, user)
        others = session.scalar(select(func.count()).select_from(Identity).where(
            Identity.account_id == user.sub, Identity.id != identity_id))
        if not others and not account.password_hash:
            raise Conflict("this is your last way to sign in: add a password or another "
                           "identity first")
        # A session someone else holds must not take the owner's way in away: signing in
        # with the identity again would make a new, empty account.
        _confirm_it_is_them(session, account, current_password,
                            _hash(session_token) if session_token else None)
        provider = identity.provider
        session.delete(identity)
        _account_event(session, account.id, "identity_unlinked",
                       {"provider": provider, "ip": client_ip or None})
        if account.email and account.email_verified_at is not None:
            _tell_old_address(session, account, account.email, "identity_unlinked", client_ip,
                              base_url, provider=provider_label or provider)
        log.info("identity of %s unlinked from %s", provider, account.id)


@interface.public
def set_password(claim: str, password: str, current_password: str | None = None,
                 session_token: str | None = None, client_ip: str = "",
                 base_url: str = "") -> SessionGrant | None:
    """Give the signed-in account a (new) local password: the current one must be given (a
    first one needs a recent sign-in instead). Every session of the account ends and its
    verified address is told; the new session that replaces `session_token`'s (None without
    one), for the browser that chose the password."""
    user = _session_only(claim)
    current_hash = _hash(session_token) if session_token else None
    with transaction(SERVICE) as session:
        account = _account_of(session, user)
        first = account.password_hash is None
        _confirm_it_is_them(session, account, current_password, current_hash)
        weak = passwords.problem(password, account.username)
        if weak:
            raise ValidationFailed("the password cannot be used",
                                   [{"pointer": "/password", "message": weak}])
        account.password_hash = passwords.hash_password(password)
        # A reset link mailed before must not outlive the password chosen since.
        mail_links.void(session, account.id, mail_links.RESET)
        # Whoever else holds a session (a browser left signed in, a cookie taken) is out, and
        # so is a copy of this browser's own cookie: this browser stays signed in with a new
        # session in its place.
        hashes = list(session.scalars(select(SignInSession.token_hash).where(
            SignInSession.account_id == account.id)))
        if hashes:
            session.execute(delete(SignInSession).where(SignInSession.token_hash.in_(hashes)))
        grant = None
        if current_hash in hashes:
            token = secrets.token_urlsafe(32)
            row = SignInSession(token_hash=_hash(token), account_id=account.id,
                                expires_at=utcnow() + timedelta(
                                    days=current_app.config["SESSION_LIFETIME_DAYS"]))
            session.add(row)
            grant = SessionGrant(token=token, expires_at=row.expires_at, account=_view(account))
        ended = len(hashes) - (grant is not None)
        _account_event(session, account.id, "password_changed",
                       {"first_password": first, "sessions_ended": ended,
                        "ip": client_ip or None})
        if account.email and account.email_verified_at:
            _tell_old_address(session, account, account.email,
                               "password_added" if first else "password_changed",
                               client_ip, base_url, sessions_ended=ended)
        account_id = account.id
    if hashes:
        cache().forget(*(_session_key(h) for h in hashes))
    log.info("password %s for %s; %d other session(s) ended",
             "added" if first else "changed", account_id, ended)
    return grant


def session_is_recent(claim: str, session_token: str | None) -> bool:
    """Whether the signed-in session behind `session_token` began within RECENT_SIGN_IN."""
    user = _session_only(claim)
    if not session_token:
        return False
    with transaction(SERVICE) as session:
        return _recent(session, user.sub, _hash(session_token))


def _account_of(session: Session, user: claims.UserClaim) -> Account:
    account = session.get(Account, user.sub)
    if account is None:
        raise Unauthorized("the account no longer exists")
    return account


def _confirm_it_is_them(session: Session, account: Account, current_password: str | None,
                        session_hash: str | None) -> None:
    # A session alone may be someone else's (a browser left signed in, a cookie taken): before
    # how the account signs in or gets its password reset changes, the person proves they
    # hold the password, or, with none, that they signed in moments ago.
    if account.password_hash is None:
        if not session_hash or not _recent(session, account.id, session_hash):
            raise Forbidden(SIGN_IN_AGAIN, {"sign_in": "/signin?next=/settings"})
        return
    # Per account, whatever the address: a stolen session may guess from anywhere.
    ratelimit.refuse_when_over(SERVICE, "current-password", account.id, SIGN_IN_LIMIT,
                               SIGN_IN_WINDOW)
    if not current_password:
        raise ValidationFailed("your current password is needed", [
            {"pointer": "/current_password", "message": "type your current password"}])
    # Counted before the hash is checked (and forgotten when it matches): guesses sent at once
    # cannot all pass a count read before any of them failed.
    ratelimit.take_attempt(SERVICE, "current-password", account.id, SIGN_IN_LIMIT,
                           SIGN_IN_WINDOW)
    if not passwords.matches(account.password_hash, current_password):
        raise ValidationFailed("the current password is wrong", [
            {"pointer": "/current_password", "message": "this is not your current password"}])
    ratelimit.clear(SERVICE, "current-password", account.id)


def _recent(session: Session, account_id: str, session_hash: str) -> bool:
    started = session.scalar(select(SignInSession.created_at).where(
        SignInSession.token_hash == session_hash, SignInSession.account_id == account_id))
    return started is not None and started > utcnow() - RECENT_SIGN_IN


def _tell_old_address(session: Session, account: Account, to: str, change: str,
                      client_ip: str, base_url: str, sessions_ended: int = 0,
                      provider: str = "") -> None:
    # What changed, when and from where, and what to do if it was not them: never the new
    # password, the new address or a link that does anything but open a page.
    when = utcnow()
    mail_links.outbox.queue(session, "account-changed", mail.render(
        "account_changed", to=to, subject=CHANGE_SUBJECTS[change], change=change,
        username=account.username, when=when.strftime("%Y-%m-%d %H:%M UTC"),
        ip=client_ip or "an unknown address", sessions_ended=sessions_ended, provider=provider,
        forgot_url=f"{base_url}/password/forgot", settings_url=f"{base_url}/settings",
        tokens_url=f"{base_url}/settings/tokens"))


# Email addresses and password resets --------------------------------------------------------


def email_address_of_session(claim: str) -> EmailAddress:
    """The signed-in account's own address and whether it is verified (a session only)."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        account = session.get(Account, user.sub)
        if account is None:
            raise Unauthorized("the account no longer exists")
        return _address_view(account)


def set_email_notifications(claim: str, wanted: bool) -> EmailAddress:
    """Opt the signed-in account in to (or out of) its workspaces' email notifications; they
    go to its address once it is verified."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        account = session.get(Account, user.sub)
        if account is None:
            raise Unauthorized("the account no longer exists")
        account.email_notifications = bool(wanted)
        return _address_view(account)


@interface.public(callers=("experiment",))
def notification_addresses(account_ids: list[str], chosen: bool = False) -> list[str]:
    """The verified addresses of these accounts a notification may be mailed to: of those
    that opted in, or, `chosen` by name by a workspace's maintainer, of them all."""
    ids = [i for i in account_ids or [] if isinstance(i, str)][:1000]
    if not ids:
        return []
    query = select(Account.email).where(Account.id.in_(ids), Account.email.is_not(None),
                                        Account.email_verified_at.is_not(None))
    if not chosen:
        query = query.where(Account.email_notifications.is_(True))
    with transaction(SERVICE) as session:
        return sorted(set(session.scalars(query)))


def _address_view(account: Account) -> EmailAddress:
    return EmailAddress(email=account.email, verified=account.email_verified_at is not None,
                        mail_enabled=mail.enabled(),
                        notifications=bool(account.email_notifications))


def set_email(claim: str, email: str, base_url: str, current_password: str | None = None,
              session_token: str | None = None, client_ip: str = "") -> EmailAddress:
    """Give the signed-in account an address (empty: none) and mail it a link that verifies
    it (valid a day, at `base_url`); a new address is unverified until then. Setting the same
    unverified address again sends a new link. A change needs the current password (without
    one, a recent sign-in), and the verified address it replaces is told."""
    # A session only: an address is how a password gets reset, so a token must not change it.
    user = _session_only(claim)
    wanted = mail_links.address(email)
    if wanted is not None and not mail.enabled():
        raise Conflict("this hub sends no mail (no SMTP server is set up), so an address "
                       "cannot be verified here")
    with transaction(SERVICE) as session:
        account = _account_of(session, user)
        same = account.email is not None and wanted is not None \
            and account.email.lower() == wanted.lower()
        changes = not same and (account.email is not None or wanted is not None)
        if changes:
            _confirm_it_is_them(session, account, current_password,
                                _hash(session_token) if session_token else None)
        if wanted is None or not same:
            old, old_verified = account.email, account.email_verified_at is not None
            account.email, account.email_key = wanted, wanted.lower() if wanted else None
            account.email_verified_at = None
            session.execute(update(EmailToken).where(
                EmailToken.account_id == account.id, EmailToken.used_at.is_(None))
                .values(used_at=utcnow()))
            if changes:
                # The addresses stay out of the audit log (every owner of the account's orgs
                # reads it): only that it changed.
                _account_event(session, account.id, "email_changed", {
                    "removed": wanted is None, "was_verified": old_verified,
                    "ip": client_ip or None})
                if old and old_verified:
                    _tell_old_address(session, account, old,
                                      "email_removed" if wanted is None else "email_changed",
                                      client_ip, base_url)
        if wanted is not None and account.email_verified_at is None:
            ratelimit.refuse_when_over(SERVICE, "verify-mail", account.id, VERIFY_MAIL_LIMIT,
                                       MAIL_WINDOW)
            ratelimit.record_failure(SERVICE, "verify-mail", account.id, MAIL_WINDOW)
            secret = mail_links.make(session, account, mail_links.VERIFY, wanted)
            mail_links.outbox.queue(session, "verify", mail.render(
                "verify_email", to=wanted, subject="Verify your email address for ChaosHub",
                username=account.username, link=f"{base_url}/settings/email/verify/{secret}",
                hours=24))
        return _address_view(account)


def verify_email(claim: str, secret: str) -> EmailAddress:
    """Follow a verification link as the signed-in account: its address is verified, if the
    link is the account's, unused, unexpired and for the address it has now."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        row = mail_links.find(session, mail_links.VERIFY, secret)
        if row.account_id != user.sub:
            raise Forbidden("this link verifies another account's address: sign in as that "
                            "account, then follow it again")
        account = session.get(Account, user.sub)
        if account is None or (account.email or "").lower() != row.email.lower():
            raise Gone("the address has changed since this link was sent")
        mail_links.consume(session, row)
        account.email_verified_at = utcnow()
        log.info("email address verified for %s", account.id)
        return _address_view(account)


def count_reset_ask(client_ip: str) -> None:
    """Count an ask for a reset link from `client_ip`: RateLimited past RESET_ASK_LIMIT an
    hour, whatever account it names."""
    ratelimit.refuse_when_over(SERVICE, "reset-ask", client_ip, RESET_ASK_LIMIT, MAIL_WINDOW)
    ratelimit.record_failure(SERVICE, "reset-ask", client_ip, MAIL_WINDOW)


def request_password_reset(login: str, base_url: str, client_ip: str = "") -> None:
    """Mail a link that resets the password (valid an hour) to the verified address of the
    local account named by `login` (its username or address); nothing when none matches.
    The page calls it once its answer is sent (see count_reset_ask), so that answer is the
    same, and as quick, whether an account matches or not."""
    if not mail.enabled():
        return
    with transaction(SERVICE) as session:
        for account in mail_links.accounts_for_reset(session, login):
            if not (account.password_hash and account.email and account.email_verified_at):
                continue  # no local password, or no address it is known to own
            if ratelimit.attempts(SERVICE, "reset-mail", account.id) >= RESET_MAIL_LIMIT:
                continue  # its mailbox has links enough: answered alike, nothing sent
            ratelimit.record_failure(SERVICE, "reset-mail", account.id, MAIL_WINDOW)
            secret = mail_links.make(session, account, mail_links.RESET, account.email)
            mail_links.outbox.queue(session, "reset", mail.render(
                "reset_password", to=account.email, subject="Reset your ChaosHub password",
                username=account.username, link=f"{base_url}/password/reset/{secret}",
                minutes=60, ip=client_ip or "an unknown address"))


def password_reset_account(secret: str) -> str:
    """The username a reset link is for; NotFound or Gone when it cannot be used."""
    with transaction(SERVICE) as session:
        row = mail_links.find(session, mail_links.RESET, secret)
        return session.get(Account, row.account_id).username


def reset_password(secret: str, password: str, client_ip: str = "") -> str:
    """Set a new password through a reset link, use the link up, and end every session of
    the account (its API tokens stay); the account's username."""
    with transaction(SERVICE) as session:
        row = mail_links.find(session, mail_links.RESET, secret)
        account = session.get(Account, row.account_id)
        weak = passwords.problem(password, account.username)
        if weak:
            raise ValidationFailed("the password cannot be used",
                                   [{"pointer": "/password", "message": weak}])
        mail_links.consume(session, row)
        account.password_hash = passwords.hash_password(password)
        hashes = list(session.scalars(
            select(SignInSession.token_hash).where(SignInSession.account_id == account.id)))
        session.execute(delete(SignInSession).where(SignInSession.account_id == account.id))
        _account_event(session, account.id, "password_reset",
                       {"sessions_ended": len(hashes), "ip": client_ip or None})
        account_id, username = account.id, account.username
    if hashes:
        cache().forget(*(_session_key(h) for h in hashes))
    ratelimit.clear(SERVICE, "sign-in", f"{client_ip}|{username.lower()}")
    # Guesses at the old password (someone holding a session, now ended) no longer hold the
    # owner back from the settings.
    ratelimit.clear(SERVICE, "current-password", account_id)
    log.info("password reset for %s; %d session(s) ended", account_id, len(hashes))
    return username


# Sessions ----------------------------------------------------------------------------------


@interface.public
def sign_out(session_token: str) -> None:
    """End the session behind a cookie value; unknown values are ignored."""
    token_hash = _hash(session_token)
    with transaction(SERVICE) as session:
        session.execute(delete(SignInSession).where(SignInSession.token_hash == token_hash))
    cache().forget(_session_key(token_hash))


@interface.public
def sign_out_everywhere(claim: str) -> int:
    """End every session of the signed-in account; returns how many ended."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        hashes = list(session.scalars(
            select(SignInSession.token_hash).where(SignInSession.account_id == user.sub)))
        session.execute(delete(SignInSession).where(SignInSession.account_id == user.sub))
        _account_event(session, user.sub, "sign_out_everywhere", {"sessions_ended": len(hashes)})
    cache().forget(*(_session_key(h) for h in hashes))
    return len(hashes)


# API tokens --------------------------------------------------------------------------------


@interface.public(callers=("dashboard",))
def create_token(
    claim: str,
    name: str,
    scopes: list[str],
    expires_in_days: int | None = None,
    workspace_id: str | None = None,
    workspace_label: str | None = None,
    current_password: str | None = None,
) -> NewToken:
    """Make an API token for the signed-in account; its secret is in the answer, this once.
    A session that began more than TOKEN_SIGN_IN ago needs `current_password` (an account
    without one: a new sign-in)."""
    # The caller has resolved the workspace the token is kept to (dashboard owns workspaces);
    # a wrong id could only narrow the token to nothing, never widen it.
    user = _session_only(claim)
    if not user.auth_time or user.auth_time < (utcnow() - TOKEN_SIGN_IN).timestamp():
        # A token outlives the session and a password change: a session taken from a browser
        # left signed in must not mint one without the password.
        with transaction(SERVICE) as session:
            account = _account_of(session, user)
            if account.password_hash is None:
                raise Forbidden(TOKEN_SIGN_IN_AGAIN, {"sign_in": "/signin?next=/settings/tokens"})
            _confirm_it_is_them(session, account, current_password, None)
    return _create_token(claim, name, scopes, expires_in_days, workspace_id, workspace_label)


@interface.public(callers=("dashboard",))
def list_tokens(claim: str) -> list[TokenView]:
    """The account's tokens that are not revoked, newest first."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.account_id == user.sub, ApiToken.revoked_at.is_(None),
                   ApiToken.purpose.is_(None))
            .order_by(ApiToken.created_at.desc())
        )
        return [_token_view(t) for t in rows]


@interface.public(callers=("dashboard",))
def page_tokens(claim: str, cursor: str | None = None,
                limit: int | str | None = None) -> TokenPage:
    """A page of the account's tokens that are not revoked, newest first."""
    user = _session_only(claim)
    limit = paging.page_size(limit)
    # A cursor serves its own account's list: another's is refused, not read past.
    after = paging.timed(paging.decode(cursor, TOKENS, [user.sub])) if cursor else None
    with transaction(SERVICE) as session:
        query = select(ApiToken).where(ApiToken.account_id == user.sub,
                                       ApiToken.revoked_at.is_(None),
                                       ApiToken.purpose.is_(None))
        rows = list(session.scalars(paging.after(query, ApiToken.created_at, ApiToken.id, after)
                                    .limit(limit + 1)))
        views = [_token_view(t) for t in rows[:limit]]
    if len(rows) <= limit:
        return TokenPage(tokens=views)
    last = views[-1]
    return TokenPage(tokens=views, next_cursor=paging.encode(
        TOKENS, [user.sub], [last.created_at.isoformat(), last.id]))


@interface.public(callers=("dashboard",))
def revoke_token(claim: str, token_id: str) -> None:
    """Revoke one of the account's tokens: the next request with it is refused."""
    user = _session_only(claim)
    with transaction(SERVICE) as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.account_id != user.sub or token.revoked_at is not None \
                or token.purpose is not None:
            raise NotFound("no such token")
        token.revoked_at = utcnow()
        token_hash = token.token_hash
        _account_event(session, user.sub, "token_revoked",
                       {"token_id": token.id, "name": token.name, "hint": token.hint,
                        **_token_place(token.workspace_id, token.workspace_label)})
    cache().forget(_token_key(token_hash))


def create_token_for(username: str, name: str, scopes: list[str],
                     expires_in_days: int | None = None) -> NewToken:
    """Make a token for an account by username (the operators' CLI; not reachable over HTTP)."""
    with transaction(SERVICE) as session:
        account = session.scalar(
            select(Account).where(Account.username_key == lookup_key(username)))
    if account is None:
        raise NotFound(f"no account named {username!r}")
    return _create_token(_claim_for(account), name, scopes, expires_in_days, None, None)


# Credentials -> claims ---------------------------------------------------------------------


@interface.public(callers=("dashboard", "experiment"))
def resolve_credentials(
    session_token: str | None = None, bearer_token: str | None = None, client_ip: str = ""
) -> str:
    """A signed claim for a request's credentials: its user's, or an anonymous one.

    A bearer token that is not valid is an error (the client meant to authenticate); a stale
    session cookie just makes the visitor anonymous.
    """
    if bearer_token:
        return _claim_for_token(bearer_token, client_ip)
    if session_token:
        account = _session_account(session_token)
        if account is not None:
            # A copy cached before sessions carried their start has none: not recent.
            return _issue(account["id"], account["display_name"], SESSION_SCOPES,
                          auth_time=account.get("started_at"))
    return _issue(claims.ANONYMOUS, "", ())


def jwks() -> dict:
    """The public keys claims are signed with (served at /auth/.well-known/jwks.json)."""
    return claims.key_ring().jwks()


# Names: usernames and org names share one namespace (/{name}), kept here -------------------


@interface.public(callers=("dashboard",))
def reserve_name(claim: str, name: str, owner_id: str) -> None:
    """Reserve `name` (any case) for the org `owner_id`; Conflict when someone else holds it."""
    _signed_in(claim)
    _reserve_org_name((name or "").lower(), owner_id, name)


@interface.public(callers=("dashboard",))
def release_names(claim: str, owner_id: str) -> None:
    """Free every name the org `owner_id` held (it is deleted)."""
    _signed_in(claim)
    with transaction(SERVICE) as session:
        session.execute(delete(Name).where(Name.kind == "org", Name.owner_id == owner_id))


@interface.public(callers=("dashboard",))
def reserve_org_names(names: dict[str, str]) -> list[str]:
    """Reserve orgs' names (lower-cased name -> org id) that dashboard held before this
    registry existed; the names that another holder has already, which stay its own."""
    taken = []
    for key, owner_id in names.items():
        try:
            _reserve_org_name(key, owner_id, key)
        except Conflict:
            taken.append(key)
    return taken


# Events (core/events.py) -------------------------------------------------------------------


@interface.public(callers=EVENT_SUBSCRIBERS)
def pending_events(subscriber: str, types: list[str], limit: int = events.BATCH
                   ) -> list[events.Event]:
    """Auth's events of `types` that `subscriber` has not acknowledged yet, oldest first."""
    return outbox.pending(subscriber, types, limit)


@interface.public(callers=EVENT_SUBSCRIBERS)
def ack_events(subscriber: str, ids: list[str]) -> None:
    """Record that `subscriber` has handled these events of auth's."""
    outbox.ack(subscriber, ids)


# Internals ---------------------------------------------------------------------------------


def _signed_in(claim: str) -> claims.UserClaim:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token")
    return user


def _session_only(claim: str) -> claims.UserClaim:
    # Tokens cannot see or mint tokens or change how an account signs in: a leaked one stays
    # contained.
    user = _signed_in(claim)
    if not user.is_session:
        raise Forbidden("this needs a signed-in session, not an API token")
    return user


def _issue(sub: str, name: str, scopes, workspace: str | None = None,
           run: str | None = None, auth_time: int | None = None) -> str:
    return claims.sign(sub=sub, name=name, scopes=tuple(scopes), workspace=workspace, run=run,
                       auth_time=auth_time)


def _claim_for(account: Account) -> str:
    return _issue(account.id, account.display_name, SESSION_SCOPES)


def _create_account(account: Account, identity: Identity | None = None) -> AccountView:
    if account.username_key in RESERVED_NAMES:
        raise ValidationFailed("the account cannot be created", [
            {"pointer": "/username", "message": "this name is reserved by the hub"}])
    taken = ValidationFailed("the account cannot be created",
                             [{"pointer": "/username", "message": "this username is taken"}])
    try:
        with transaction(SERVICE) as session:
            # An org's name, current or former, holds a username's place too.
            if session.get(Name, account.username_key) is not None:
                raise taken
            session.add(account)
            session.flush()
            session.add(Name(name_key=account.username_key, kind="account", owner_id=account.id))
            if identity is not None:
                identity.account_id = account.id
                session.add(identity)
            # Dashboard makes the profile and personal org from it: in one process before
            # this returns, split within a poll.
            outbox.emit(session, "account.created", account.id, ("account", account.id),
                        {"username": account.username, "display_name": account.display_name})
    except IntegrityError as exc:
        raise taken from exc  # a sign-up or an org took the name meanwhile
    log.info("account created: %s", account.id)
    return _view(account)


def _reserve_org_name(key: str, owner_id: str, shown: str) -> None:
    try:
        with transaction(SERVICE) as session:
            held = session.get(Name, key)
            if held is None:
                session.add(Name(name_key=key, kind="org", owner_id=owner_id))
            elif (held.kind, held.owner_id) != ("org", owner_id):
                raise Conflict(f"the name {shown!r} is taken")
    except IntegrityError as exc:
        raise Conflict(f"the name {shown!r} is taken") from exc


def _sign_up_with_identity(profile: ProviderProfile) -> Account:
    _check_identity_may_sign_up(profile)
    base = re.sub(r"[^A-Za-z0-9_-]", "-", profile.username_hint).strip("-_")[:32] or "user"
    base = base if len(base) >= 2 else f"{base}-user"
    for attempt in range(8):
        username = base if attempt == 0 else f"{base}-{secrets.randbelow(10_000)}"
        account = Account(
            username=username, username_key=username.lower(),
            display_name=(profile.display_name or username)[:100],
            # The provider vouches for the address: it counts as verified here too.
            email=profile.email if profile.email_verified else None,
            email_key=profile.email.lower() if profile.email_verified and profile.email
            else None,
            email_verified_at=utcnow() if profile.email_verified and profile.email else None,
            avatar_url=profile.avatar_url,
        )
        identity = Identity(provider=profile.provider, subject=profile.subject,
                            email=profile.email)
        try:
            _create_account(account, identity)
        except (ValidationFailed, Conflict):
            continue  # the name is taken or reserved somewhere: try another
        return account
    raise Conflict("no free username could be found for this identity")


def _check_identity_may_sign_up(profile: ProviderProfile) -> None:
    config = current_app.config
    if not config["SIGNUP_OPEN"]:
        raise Forbidden("sign-up is closed on this hub: ask an administrator for an invitation")
    domains = config["SIGNUP_ALLOWED_DOMAINS"]
    if domains:
        domain = (profile.email or "").rpartition("@")[2].lower()
        if not profile.email_verified or domain not in domains:
            raise Forbidden("sign-up on this hub is open to verified addresses of "
                            + ", ".join(sorted(domains)) + " only")


def _open_session(account: Account, sign_in: dict) -> SessionGrant:
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])
    row = SignInSession(token_hash=_hash(token), account_id=account.id,
                        expires_at=utcnow() + lifetime)
    with transaction(SERVICE) as session:
        session.add(row)
        _account_event(session, account.id, "sign_in", sign_in)
    return SessionGrant(token=token, expires_at=row.expires_at, account=_view(account))


def _session_account(token: str) -> dict | None:
    token_hash = _hash(token)

    def load() -> dict | None:
        with transaction(SERVICE) as session:
            row = session.execute(
                select(Account.id, Account.display_name, SignInSession.expires_at,
                   SignInSession.created_at)
                .join(SignInSession, SignInSession.account_id == Account.id)
                .where(SignInSession.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        return {"id": row.id, "display_name": row.display_name,
                "expires_at": row.expires_at.timestamp(),
                "started_at": int(row.created_at.timestamp())}

    account = cache().remember(_session_key(token_hash), load, ttl=RESOLVED_TTL)
    if account is None or account["expires_at"] <= utcnow().timestamp():
        return None
    return account


def _create_token(claim: str, name: str, scopes: list[str], expires_in_days: int | None,
                  workspace_id: str | None, label: str | None) -> NewToken:
    user = claims.verify(claim)
    config = current_app.config
    problems = []
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        problems.append({"pointer": "/name", "message": "give the token a name (100 characters "
                                                     "at most)"})
    wanted = _expand_scopes(scopes, problems)
    days = config["TOKEN_DEFAULT_DAYS"] if expires_in_days is None else expires_in_days
    if not isinstance(days, int) or not 1 <= days <= config["TOKEN_MAX_DAYS"]:
        problems.append({"pointer": "/expires_in_days",
                         "message": f"from 1 to {config['TOKEN_MAX_DAYS']} days"})
    if problems:
        raise ValidationFailed("the token cannot be created", problems)
    secret = token_secrets.new_token()
    token = ApiToken(
        account_id=user.sub, name=name, token_hash=token_secrets.token_hash(secret),
        hint=token_secrets.hint(secret), scopes=wanted, workspace_id=workspace_id,
        workspace_label=label, expires_at=utcnow() + timedelta(days=days),
    )
    with transaction(SERVICE) as session:
        session.add(token)
        session.flush()
        _account_event(session, user.sub, "token_created", {
            "token_id": token.id, "name": token.name, "hint": token.hint, "scopes": wanted,
            "expires_at": token.expires_at.isoformat(), **_token_place(workspace_id, label)})
    log.info("token %s created for %s", token.id, user.sub)
    return NewToken(secret=secret, token=_token_view(token))


def _expand_scopes(scopes: list[str], problems: list[dict]) -> list[str]:
    wanted: list[str] = []
    for scope in scopes or []:
        for name in SCOPE_PRESETS.get(scope, (scope,)):
            if name not in SCOPES:
                problems.append({"pointer": "/scopes", "message": f"unknown scope {name!r}"})
            elif name not in wanted:
                wanted.append(name)
    if not wanted and not problems:
        problems.append({"pointer": "/scopes", "message": "choose at least one scope"})
    return wanted


def _claim_for_token(secret: str, client_ip: str) -> str:
    token = None
    if token_secrets.well_formed(secret):
        # Every API call comes here: the token alone, from this process's own copy when warm.
        token_hash = token_secrets.token_hash(secret)
        # Decoded once per process while no cached entry changes (a revocation is a change).
        token = cache().derived(("token", token_hash),
                                lambda: cache().peek(_token_key(token_hash))[0],
                                keep=lambda found: found is not MISSING)
        if token is MISSING:
            # Taken before the read: a revocation that commits meanwhile keeps it uncached.
            generation = cache().generation()
            token = _load_token(token_hash)
            # A run's token is read every time: it is revoked by a worker, another process
            # whose in-memory cache this one would not hear forget it.
            if token is None or not token.get("purpose"):
                cache().put(_token_key(token_hash), token, ttl=RESOLVED_TTL,
                            since=generation)
    if token is None or token["expires_at"] <= utcnow().timestamp():
        # Only failures are limited, and their count read only then: a valid token from an
        # address that others share with a guesser (a NAT, CI runners) still works, and
        # guessing 178 random bits gains nothing.
        ratelimit.refuse_when_over(SERVICE, "token", client_ip, TOKEN_FAILURE_LIMIT,
                                   TOKEN_FAILURE_WINDOW)
        ratelimit.record_failure(SERVICE, "token", client_ip, TOKEN_FAILURE_WINDOW)
        raise Unauthorized("the API token is not valid: it may be mistyped, expired or revoked")
    claim = _issue(token["account_id"], token["display_name"], token["scopes"],
                   token["workspace_id"],
                   run=token.get("run_id") if token.get("purpose") == RUN_TOKEN else None)
    _record_use(token, client_ip)
    return claim


def _load_token(token_hash: str) -> dict | None:
    with transaction(SERVICE) as session:
        row = session.execute(
            select(ApiToken, Account.display_name)
            .join(Account, Account.id == ApiToken.account_id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    token, display_name = row
    return {
        "id": token.id, "account_id": token.account_id, "display_name": display_name,
        "scopes": token.scopes, "workspace_id": token.workspace_id,
        "expires_at": token.expires_at.timestamp(), "hash": token_hash,
        "last_used_at": token.last_used_at.timestamp() if token.last_used_at else 0,
        "last_used_ip": token.last_used_ip, "name": token.name, "hint": token.hint,
        "purpose": token.purpose, "run_id": token.run_id,
        "workspace_label": token.workspace_label,
    }


def _record_use(token: dict, client_ip: str) -> None:
    # A write per request would make every API call pay for it: once a minute per address.
    now = utcnow()
    address = client_ip or None  # kept as None when the server knows none (a Unix socket)
    if token["last_used_ip"] == address and now.timestamp() - token["last_used_at"] < \
            LAST_USED_EVERY:
        return
    if token.get("purpose"):
        # A run's token is the hub's own doing, from wherever its Job runs: its uses are no
        # news for its account's audit log.
        with transaction(SERVICE) as session:
            session.execute(update(ApiToken).where(ApiToken.id == token["id"])
                            .values(last_used_at=now, last_used_ip=address))
        return
    with transaction(SERVICE) as session:
        # Only the request that changes the address matches here: one audit entry per new
        # address, however many requests race in from it.
        moved = address is not None and session.execute(
            update(ApiToken).where(ApiToken.id == token["id"],
                                   ApiToken.last_used_ip.is_distinct_from(address))
            .values(last_used_at=now, last_used_ip=address)).rowcount > 0
        if moved:
            _account_event(session, token["account_id"], "token_new_ip", {
                "token_id": token["id"], "name": token.get("name"), "hint": token.get("hint"),
                "ip": address, "previous_ip": token["last_used_ip"],
                **_token_place(token["workspace_id"], token.get("workspace_label"))})
        else:
            session.execute(update(ApiToken).where(ApiToken.id == token["id"])
                            .values(last_used_at=now, last_used_ip=address))
    cache().forget(_token_key(token["hash"]))


def _account_event(session: Session, account_id: str, what: str, details: dict) -> None:
    # In the change's own transaction: the event is kept exactly when the change is, and waits
    # in the outbox while dashboard is away (signing in and tokens go on meanwhile).
    outbox.emit(session, f"account.{what}", account_id, ("account", account_id), details)


def _token_place(workspace_id: str | None, label: str | None) -> dict:
    # Dashboard writes a token's events into the log of the org its workspace is in, besides
    # the account's own, and shows the workspace's name; a token kept nowhere names none.
    return {"workspace": label, "workspace_id": workspace_id} if workspace_id else {}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_key(token_hash: str) -> str:
    return cache().key(SERVICE, "session", token_hash)


def _token_key(token_hash: str) -> str:
    return cache().key(SERVICE, "token", token_hash)


def _view(account: Account) -> AccountView:
    return AccountView(
        id=account.id, username=account.username, display_name=account.display_name,
        email=account.email, email_verified=account.email_verified_at is not None,
        avatar_url=account.avatar_url, created_at=account.created_at,
        has_password=account.password_hash is not None,
    )


def _identity_view(identity: Identity) -> IdentityView:
    return IdentityView(id=identity.id, provider=identity.provider, subject=identity.subject,
                        email=identity.email, linked_at=identity.linked_at)


def _token_view(token: ApiToken) -> TokenView:
    return TokenView(
        id=token.id, name=token.name, hint=token.hint, scopes=list(token.scopes),
        workspace=token.workspace_label, created_at=token.created_at,
        expires_at=token.expires_at, last_used_at=token.last_used_at,
        last_used_ip=token.last_used_ip, expired=token.expires_at <= utcnow(),
    )


@interface.public(callers=("dashboard", "experiment"))
def find_account(claim: str, username: str) -> AccountView:
    """The account with this username (any case), for a signed-in caller; NotFound otherwise."""
    _signed_in(claim)
    with transaction(SERVICE) as session:
        account = session.scalar(
            select(Account).where(Account.username_key == lookup_key((username or "").strip())))
        if account is None:
            raise NotFound(f"no account named {username!r}")
        # Others learn the name, never the email address.
        return _view(account).model_copy(update={"email": None, "email_verified": False})
