"""Auth's HTTP face: the sign-up and sign-in pages, sign-out, and the JWKS."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request

from chaoshub.auth import service
from chaoshub.core.errors import Unauthorized, ValidationFailed
from chaoshub.core.web import SESSION_COOKIE, is_secure, safe_next

auth = Blueprint("auth", __name__)


@auth.get("/auth/.well-known/jwks.json")
def jwks():
    """The public keys that verify UserClaims."""
    response = jsonify(service.jwks())
    response.cache_control.max_age = 300
    response.cache_control.public = True
    return response


@auth.get("/signup")
def signup_page():
    """The sign-up form."""
    return render_template("auth/signup.html", problems={}, form={})


@auth.post("/signup")
def signup():
    """Create a local account, then send the person to sign in."""
    form = request.form
    try:
        service.sign_up(
            form.get("username", "").strip(),
            form.get("password", ""),
            form.get("display_name", ""),
        )
    except ValidationFailed as error:
        problems = {p.get("field", ""): p["message"] for p in error.details or []}
        return render_template(
            "auth/signup.html", problems=problems, form=form, message=error.message
        ), 422
    return redirect(f"/signin?created={form.get('username', '').strip()}", code=303)


@auth.get("/signin")
def signin_page():
    """The sign-in form."""
    return render_template(
        "auth/signin.html", created=request.args.get("created"), next=safe_next(
            request.args.get("next"), "")
    )


@auth.post("/signin")
def signin():
    """Check the password, set the session cookie, and go where the person was heading."""
    try:
        grant = service.sign_in(request.form.get("username", ""), request.form.get("password", ""))
    except Unauthorized as error:
        return render_template(
            "auth/signin.html", message=error.message, username=request.form.get("username", ""),
            next=safe_next(request.form.get("next"), ""),
        ), 401
    response = redirect(safe_next(request.form.get("next")), code=303)
    response.set_cookie(
        SESSION_COOKIE,
        grant.token,
        expires=grant.expires_at,
        secure=is_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


@auth.post("/signout")
def signout():
    """End this browser's session."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service.sign_out(token)
    response = redirect("/signin", code=303)
    response.delete_cookie(SESSION_COOKIE, secure=is_secure(), httponly=True, samesite="Lax")
    return response
