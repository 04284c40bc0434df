"""Auth's pages: sign-up, sign-in (local and through providers), sign-out and settings."""

from __future__ import annotations

import functools
import logging

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
)

from chaoshub.auth import oauth, passwords, service
from chaoshub.core import mail
from chaoshub.core.claims import verify
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    Gone,
    HubError,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
    first_line,
    problems_by_field,
)
from chaoshub.core.web import (
    SESSION_COOKIE,
    current_claim,
    external_url,
    is_secure,
    safe_next,
)

log = logging.getLogger(__name__)
auth = Blueprint("auth", __name__)
INTENT = "chaoshub_oauth_intent"
# service.USERNAME as an HTML pattern: browsers anchor it themselves and compile it with the
# `v` flag, where a literal '-' in a class must be escaped (tests check the two agree).
USERNAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_\-]{1,38}"


@auth.get("/auth/.well-known/jwks.json")
def jwks():
    """The public keys that verify UserClaims."""
    response = jsonify(service.jwks())
    response.cache_control.max_age = 300
    response.cache_control.public = True
    return response


# Local accounts ----------------------------------------------------------------------------


@auth.get("/signup")
def signup_page():
    """The sign-up form, with the rules its fields follow."""
    return _signup_page({}, {})


@auth.post("/signup")
def signup():
    """Create a local account and sign it in, then go where the person was heading."""
    form = request.form
    username = form.get("username", "").strip()
    try:
        grant = service.sign_up(username, form.get("password", ""), form.get("display_name", ""),
                                client_ip=request.remote_addr or "")
    except (ValidationFailed, Forbidden, RateLimited) as error:
        response = make_response(_signup_page(problems_by_field(error.details), form,
                                              message=error.message), error.status)
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    return _signed_in(grant, form.get("next"))


@auth.get("/signin")
def signin_page():
    """The sign-in form, with a button per configured provider."""
    return _signin_page(created=request.args.get("created"), reset=request.args.get("reset"))


@auth.post("/signin")
def signin():
    """Check the password, set the session cookie, and go where the person was heading."""
    username = request.form.get("username", "")
    try:
        grant = service.sign_in(username, request.form.get("password", ""),
                                request.remote_addr or "")
    except (Unauthorized, RateLimited) as error:
        response = _signin_page(message=error.message, username=username)
        response.status_code = error.status
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    return _signed_in(grant, request.form.get("next"))


@auth.post("/signout")
def signout():
    """End this browser's session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.sign_out(token)
    return _signed_out()


@auth.post("/signout/everywhere")
def signout_everywhere():
    """End every session of this account, this browser's too."""
    service.sign_out_everywhere(_claim_or_401())
    return _signed_out()


# Providers ---------------------------------------------------------------------------------


@auth.get("/auth/login/<provider>")
def provider_login(provider: str):
    """Send the person to sign in at a provider."""
    _known(provider)
    session[INTENT] = {"link": False, "next": safe_next(request.args.get("next"))}
    return oauth.start(provider, _callback_url(provider))


@auth.post("/auth/link/<provider>")
def provider_link(provider: str):
    """Send a signed-in person to a provider to link that identity to their account."""
    _known(provider)
    claim = _claim_or_401()
    if not service.session_is_recent(claim, request.cookies.get(SESSION_COOKIE)):
        # Said before the trip to the provider, which would end in the same refusal.
        return _settings(claim, message=service.SIGN_IN_AGAIN, status=403, sign_in_again=True)
    session[INTENT] = {"link": True, "next": "/settings"}
    return oauth.start(provider, _callback_url(provider))


@auth.get("/auth/callback/<provider>")
def provider_callback(provider: str):
    """Finish a provider sign-in (or link): a clear page for every way it can fail."""
    label = _known(provider).label
    intent = session.pop(INTENT, None) or {"link": False, "next": "/"}
    if request.args.get("error"):
        reason = request.args.get("error_description") or request.args["error"]
        if request.args["error"] == "access_denied":
            reason = f"you did not allow the hub to use your {label} account"
        return _problem(400, f"Sign-in with {label} was cancelled", reason)
    if not request.args.get("code"):
        return _problem(400, f"Sign-in with {label} did not complete",
                        "the provider sent no authorization code")
    try:
        profile = oauth.finish(provider)
        if intent.get("link"):
            service.link_identity(_claim_or_401(), profile,
                                  session_token=request.cookies.get(SESSION_COOKIE),
                                  client_ip=request.remote_addr or "",
                                  base_url=external_url(""), provider_label=label)
            return redirect("/settings?linked=" + provider, code=303)
        grant = service.sign_in_with_identity(profile, request.remote_addr or "")
    except HubError as error:
        return _problem(error.status, f"Sign-in with {label} did not complete", error.message)
    return _signed_in(grant, intent.get("next"))


# Settings ----------------------------------------------------------------------------------


@auth.get("/settings")
def settings_page():
    """The account: linked identities, password, sessions."""
    claim = current_claim()
    if verify(claim).anonymous:
        return redirect("/signin?next=/settings")
    return _settings(claim)


@auth.post("/settings/identities/<identity_id>/unlink")
def unlink(identity_id: str):
    """Unlink an identity (never the last way to sign in): the current password is needed
    (without one, a recent sign-in)."""
    claim = _claim_or_401()
    labels = {p.name: p.label for p in oauth.providers().values()}
    found = {i.id: i.provider for i in service.list_identities(claim)}
    try:
        service.unlink_identity(claim, identity_id,
                                current_password=request.form.get("current_password", ""),
                                session_token=request.cookies.get(SESSION_COOKIE),
                                client_ip=request.remote_addr or "", base_url=external_url(""),
                                provider_label=labels.get(found.get(identity_id), ""))
    except Conflict as error:
        return _settings(claim, message=error.message, status=409)
    except (ValidationFailed, Forbidden, RateLimited) as error:
        return _settings_refusal(claim, error, "unlink")
    return redirect("/settings", code=303)


@auth.post("/settings/password")
def change_password():
    """Set a local password: the current one is needed (a first one needs a recent sign-in);
    every session of the account ends, and this browser gets a new one."""
    claim = _claim_or_401()
    form = request.form
    try:
        grant = service.set_password(claim, form.get("password", ""),
                                     current_password=form.get("current_password", ""),
                                     session_token=request.cookies.get(SESSION_COOKIE),
                                     client_ip=request.remote_addr or "",
                                     base_url=external_url(""))
    except (ValidationFailed, Forbidden, RateLimited) as error:
        return _settings_refusal(claim, error, "password")
    if grant is None:  # no session of this browser's was found: it signs in again
        return _signed_out()
    return _signed_in(grant, "/settings?password=set")


@auth.post("/settings/email")
def change_email():
    """Set (or remove) the account's address and mail it a verification link: the current
    password is needed (without one, a recent sign-in)."""
    claim = _claim_or_401()
    form = request.form
    try:
        found = service.set_email(claim, form.get("email", ""), external_url(""),
                                  current_password=form.get("current_password", ""),
                                  session_token=request.cookies.get(SESSION_COOKIE),
                                  client_ip=request.remote_addr or "")
    except (ValidationFailed, Conflict, Forbidden, RateLimited) as error:
        return _settings_refusal(claim, error, "email")
    notice = "removed" if found.email is None else "verified" if found.verified else "sent"
    return redirect(f"/settings?email={notice}", code=303)


@auth.post("/settings/email/notifications")
def change_email_notifications():
    """Opt in to (or out of) the workspaces' notifications by mail."""
    claim = _claim_or_401()
    wanted = request.form.get("notifications") == "on"
    service.set_email_notifications(claim, wanted)
    return redirect(f"/settings?email={'subscribed' if wanted else 'unsubscribed'}", code=303)


@auth.get("/settings/email/verify/<secret>")
def verify_email(secret: str):
    """Follow a verification link: signed in as its account, the address is verified."""
    claim = current_claim()
    if verify(claim).anonymous:
        return redirect("/signin?next=" + request.path, code=303)
    try:
        service.verify_email(claim, secret)
    except (NotFound, Gone, Forbidden, Unauthorized) as error:
        again = {"href": "/settings", "label": "Send a new link from your settings"}
        return _problem(error.status, "The address is not verified", error.message, again)
    return redirect("/settings?email=verified", code=303)


# Password reset ----------------------------------------------------------------------------


@auth.get("/password/forgot")
def forgot_password_page():
    """The form asking for a reset link, or why this hub cannot send one."""
    return _forgot_page()


@auth.post("/password/forgot")
def forgot_password():
    """Mail a reset link if an account matches: the same answer either way."""
    login = request.form.get("login", "")[:320]
    client_ip = request.remote_addr or ""
    try:
        service.count_reset_ask(client_ip)
    except RateLimited as error:
        response = make_response(_forgot_page(message=error.message, login=login),
                                 error.status)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = _forgot_page(sent=True)
    # Whether an account matches is found out once the answer has gone: a known account's
    # link and mail (database writes, templates) would otherwise make its answer slower.
    response.call_on_close(functools.partial(
        _reset_after_answer, current_app._get_current_object(), login, external_url(""),
        client_ip))
    return response


@auth.get("/password/reset/<secret>")
def reset_password_page(secret: str):
    """The form choosing a new password, for a link that still works."""
    try:
        username = service.password_reset_account(secret)
    except (NotFound, Gone) as error:
        return _reset_problem(error)
    return _reset_page(username)


@auth.post("/password/reset/<secret>")
def reset_password(secret: str):
    """Set the new password; every session of the account ends, this browser's too."""
    try:
        service.reset_password(secret, request.form.get("password", ""),
                               request.remote_addr or "")
    except (NotFound, Gone) as error:
        return _reset_problem(error)
    except ValidationFailed as error:
        return _reset_page(service.password_reset_account(secret),
                           message=error.details[0]["message"], status=422)
    response = redirect("/signin?reset=1", code=303)
    response.delete_cookie(SESSION_COOKIE, secure=is_secure(), httponly=True, samesite="Lax")
    return response


# Helpers -----------------------------------------------------------------------------------


def _forgot_page(**context):
    response = make_response(render_template("auth/forgot_password.html",
                                             mail_enabled=mail.enabled(), **context))
    response.headers["Cache-Control"] = "no-store"
    return response


def _reset_after_answer(app: Flask, login: str, base_url: str, client_ip: str) -> None:
    with app.app_context():
        try:
            service.request_password_reset(login, base_url, client_ip)
        except Exception as exc:  # the answer is sent: all that is left is to say why
            # The first line only: a database error's next ones hold the statement's values
            # (the mail's body, its link, the address).
            log.warning("a password reset link could not be made: %s", first_line(exc))


def _reset_page(username: str, message: str | None = None, status: int = 200):
    response = make_response(render_template(
        "auth/reset_password.html", username=username, message=message,
        password_min=passwords.MIN_LENGTH, password_max=passwords.MAX_LENGTH), status)
    # The address holds the link's secret: no cache keeps the page, no link sends it on.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _reset_problem(error: HubError):
    title = ("This link has expired" if "expired" in error.message
             else "This link cannot be used")
    html, status = _problem(error.status, title, error.message,
                            {"href": "/password/forgot", "label": "Ask for a new link"})
    response = make_response(html, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _known(provider: str) -> oauth.Provider:
    found = oauth.providers().get(provider)
    if found is None:
        abort(404)
    return found


def _callback_url(provider: str) -> str:
    return external_url(f"/auth/callback/{provider}")


def _claim_or_401() -> str:
    claim = current_claim()
    if verify(claim).anonymous:
        raise Unauthorized("sign in first")
    return claim


def _signin_page(**context):
    html = render_template("auth/signin.html", providers=oauth.providers().values(),
                           next=safe_next(request.values.get("next"), ""), **context)
    return make_response(html)


def _signup_page(problems: dict, form, **context) -> str:
    # The rules come from the checks themselves, so the form and the service cannot disagree.
    return render_template(
        "auth/signup.html", problems=problems, form=form, providers=oauth.providers().values(),
        next=safe_next(request.values.get("next"), ""), username_pattern=USERNAME_PATTERN,
        username_rule=service.USERNAME_RULE, password_min=passwords.MIN_LENGTH,
        password_max=passwords.MAX_LENGTH, **context)


def _signed_in(grant, target: str | None):
    response = redirect(safe_next(target), code=303)
    response.set_cookie(SESSION_COOKIE, grant.token, expires=grant.expires_at,
                        secure=is_secure(), httponly=True, samesite="Lax")
    return response


def _signed_out():
    response = redirect("/signin", code=303)
    response.delete_cookie(SESSION_COOKIE, secure=is_secure(), httponly=True, samesite="Lax")
    return response


def _problem(status: int, title: str, message: str, again: dict | None = None):
    return render_template("auth/problem.html", title=title, message=message,
                           again=again), status


def _settings_refusal(claim: str, error: HubError, form: str):
    # The refusal above the page (with a way to sign in again when that is what it needs),
    # and each problem beside its field of the form that was sent.
    problems = {f"{form}.{field}": message
                for field, message in problems_by_field(error.details).items() if field}
    sign_in_again = isinstance(error, Forbidden) and isinstance(error.details, dict) \
        and "sign_in" in error.details
    # The address typed stays in its field, to mend rather than type again.
    typed = request.form.get("email") if form == "email" else None
    html, status = _settings(claim, message=error.message, status=error.status, problems=problems,
                             sign_in_again=sign_in_again, typed_email=typed,
                             unlinking=(request.view_args or {}).get("identity_id"))
    response = make_response(html, status)
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _settings(claim: str, message: str | None = None, status: int = 200,
              problems: dict | None = None, sign_in_again: bool = False,
              typed_email: str | None = None, unlinking: str | None = None):
    identities = service.list_identities(claim)
    linked = {i.provider for i in identities}
    account = service.get_account(claim)
    html = render_template(
        "auth/settings.html", account=account, identities=identities,
        linkable=[p for p in oauth.providers().values() if p.name not in linked],
        labels={p.name: p.label for p in oauth.providers().values()}, message=message,
        notice=request.args.get("linked") or request.args.get("password")
        or request.args.get("email"), mail_enabled=mail.enabled(),
        address=service.email_address_of_session(claim), problems=problems or {},
        sign_in_again=sign_in_again, typed_email=typed_email, unlinking=unlinking,
        password_min=passwords.MIN_LENGTH,
        password_max=passwords.MAX_LENGTH,
        recent=account.has_password or service.session_is_recent(
            claim, request.cookies.get(SESSION_COOKIE)),
        recent_minutes=int(service.RECENT_SIGN_IN.total_seconds() // 60),
    )
    return html, status
