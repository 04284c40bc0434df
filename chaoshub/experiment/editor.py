"""The pages that write experiments in the browser: new (from a starter, pasted or uploaded
text), the editor that saves a new version, the deletion's confirmation, and the check of a
document as it is typed."""

from __future__ import annotations

import functools
from urllib.parse import quote

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request

from chaoshub.core.errors import BadRequest, HubError, Unauthorized
from chaoshub.core.web import credentials_first, csrf_token, current_claim, signed_in_claim
from chaoshub.experiment import bodies, document_text, grants, service, starters
from chaoshub.experiment.presenters import experiment_path

editor = Blueprint("experiment_editor", __name__)
# A write from a client sending no credentials at all reads 401 (sign in), before any CSRF 403.
editor.url_value_preprocessor(credentials_first)

WORKSPACE = "/<org>/<workspace>/experiment/-"
EXPERIMENT = "/<org>/<workspace>/experiment/<experiment_id>"
MESSAGE_MAX = 2000  # what a version's message keeps


@editor.app_context_processor
def _helpers() -> dict:
    return {"may_edit_experiments": may_edit_experiments}


def may_edit_experiments(org: str, workspace: str) -> bool:
    """True when whoever reads the page may write experiments in the workspace (the
    experiment page's Edit and Delete links)."""
    try:
        claim = current_claim()
        service.authorize_write(claim, "write", org=org, workspace=workspace)
    except HubError:
        return False
    return True


def _signin_on_401(view):
    """A visitor opening a writing page is sent to sign in, then back (as the workspace page
    does); 403 and 404 stand."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Unauthorized:
            if request.method != "GET":
                raise
            return redirect("/signin?next=" + quote(request.full_path.rstrip("?")), code=302)

    return wrapped


# Checking as one types -----------------------------------------------------------------------


@editor.post(f"{WORKSPACE}/validate")
def validate(org: str, workspace: str):
    """Check a document without keeping it: {"document": text, "format": "json"|"yaml"} in,
    {"valid", "format", "problems": [{"pointer", "message", "line"}]} out. Authorized like a
    write to the workspace."""
    claim = bodies.writer_claim(service.WRITE_SCOPE)
    service.authorize_write(claim, "write", org=org, workspace=workspace)
    # The document travels inside JSON, escaped: its own bound is checked once it is out.
    body = bodies.read_object("MAX_CONTENT_LENGTH", "request")
    text, fmt = body.get("document"), body.get("format")
    if not isinstance(text, str):
        raise BadRequest('send {"document": "<the text>", "format": "json" or "yaml"}')
    if fmt is not None and fmt not in ("", *document_text.FORMATS):
        raise BadRequest('"format" is "json" or "yaml" (or left out to tell from the text)')
    checked = document_text.check(text, fmt or None, current_app.config["EXPERIMENT_MAX_BYTES"])
    return jsonify({"valid": checked.valid, "format": checked.format,
                    "problems": checked.problems})


# A new experiment ----------------------------------------------------------------------------


@editor.get(f"{WORKSPACE}/new")
@_signin_on_401
def new_page(org: str, workspace: str):
    """The new experiment page: the starters, and a form for pasted or uploaded text."""
    claim = signed_in_claim()
    service.authorize_write(claim, "write", org=org, workspace=workspace)
    return _new_page(claim, org, workspace)


@editor.post(f"{WORKSPACE}/new")
def create(org: str, workspace: str):
    """Create the experiment from the starter named, or from the text or file sent."""
    claim = signed_in_claim()
    service.authorize_write(claim, "write", org=org, workspace=workspace)
    form = request.form
    if form.get("starter"):
        document = starters.starter_document(form["starter"])
        title = document["title"]
        created = service.create_experiment(claim, org, workspace, document,
                                            f"created from the starter “{title}”")
        # A starter names placeholders: straight to the editor to make it one's own.
        return _redirect_to(claim, org, workspace, created.id, "/edit")
    text, fmt = _sent_text()
    message = _message() or "created in the browser"
    checked = document_text.check(text, fmt, current_app.config["EXPERIMENT_MAX_BYTES"])
    if not checked.valid:
        return _new_page(claim, org, workspace, text, checked.format, message,
                         checked.problems, status=422 if checked.document is not None else 400)
    try:
        created = service.create_experiment(claim, org, workspace, checked.document, message)
    except HubError as error:
        if error.status >= 500 or error.status in (401, 403, 404):
            raise
        return _new_page(claim, org, workspace, text, checked.format, message,
                         _details(error), error.message, error.status)
    return _redirect_to(claim, org, workspace, created.id)


def _new_page(claim: str, org: str, workspace: str, text: str = "", fmt: str = "yaml",
              message: str = "", problems=(), error: str | None = None, status: int = 200):
    ws = grants.by_name(claim, org, workspace)
    place = f"/{quote(ws.org_name, safe='')}/{quote(ws.name, safe='')}"
    html = render_template(
        "experiment/new.html", ws=ws, place=place, starters=starters.all_starters(),
        text=text, format=fmt, message=message, problems=problems, error=error,
        validate_url=f"{place}/experiment/-/validate", csrf=csrf_token())
    return make_response(html, status)


def _sent_text() -> tuple[str, str | None]:
    """The document's text and format: an uploaded file's when one was chosen, else the
    text area's."""
    fmt = request.form.get("format") or None
    upload = request.files.get("upload")
    if upload is not None and upload.filename:
        limit = current_app.config["EXPERIMENT_MAX_BYTES"]
        raw = upload.stream.read(limit + 1)
        if len(raw) > limit:
            raise BadRequest(f"the file is larger than {limit} bytes")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadRequest("the file is not UTF-8 text: upload a JSON or YAML document") \
                from exc
        name = upload.filename.lower()
        if fmt is None and name.endswith((".yaml", ".yml")):
            fmt = "yaml"
        elif fmt is None and name.endswith(".json"):
            fmt = "json"
        return text, fmt
    return request.form.get("document", ""), fmt


def _message() -> str:
    return " ".join(request.form.get("message", "").split())[:MESSAGE_MAX]


# The editor ----------------------------------------------------------------------------------


@editor.get(f"{EXPERIMENT}/edit")
@_signin_on_401
def edit_page(org: str, workspace: str, experiment_id: str):
    """The editor: the latest version's document as JSON or YAML (?format=yaml)."""
    claim, located = _writable(org, workspace, experiment_id)
    fmt = "yaml" if request.args.get("format") == "yaml" else "json"
    text = document_text.render(located.experiment.document, fmt)
    return _editor_page(located, text, fmt, located.experiment.version)


@editor.post(f"{EXPERIMENT}/edit")
def save(org: str, workspace: str, experiment_id: str):
    """Save the text as the experiment's next version, with the message typed."""
    claim, located = _writable(org, workspace, experiment_id)
    text, fmt = request.form.get("document", ""), request.form.get("format") or None
    message = _message()
    opened = request.form.get("base_version", "")
    checked = document_text.check(text, fmt, current_app.config["EXPERIMENT_MAX_BYTES"])
    if opened != str(located.experiment.version):
        # Someone saved meanwhile: saving over their version would silently undo it.
        return _editor_page(located, text, checked.format, opened, message, checked.problems,
                            f"version {located.experiment.version} was saved since you opened "
                            f"the editor: copy your changes, open the editor again and make "
                            f"them there", 409)
    if not checked.valid:
        return _editor_page(located, text, checked.format, opened, message, checked.problems,
                            status=422 if checked.document is not None else 400)
    try:
        service.update_experiment(claim, experiment_id, checked.document, message)
    except HubError as error:
        if error.status >= 500 or error.status in (401, 403, 404):
            raise
        return _editor_page(located, text, checked.format, opened, message, _details(error),
                            error.message, error.status)
    return _redirect_to(claim, org, workspace, experiment_id)


def _editor_page(located, text: str, fmt: str, base_version, message: str = "", problems=(),
                 error: str | None = None, status: int = 200):
    base = experiment_path(located.org, located.workspace, located.experiment.id)
    place = f"/{quote(located.org, safe='')}/{quote(located.workspace, safe='')}"
    html = render_template(
        "experiment/editor.html", located=located, experiment=located.experiment, base=base,
        text=text, format=fmt, base_version=base_version, message=message, problems=problems,
        error=error, validate_url=f"{place}/experiment/-/validate", csrf=csrf_token())
    return make_response(html, status)


def _writable(org: str, workspace: str, experiment_id: str):
    """The signed-in claim and the experiment, once it is sure the claim may write it there."""
    claim = signed_in_claim()
    service.authorize_write(claim, "write", org=org, workspace=workspace,
                            experiment_id=experiment_id)
    return claim, service.get_workspace_experiment(claim, org, workspace, experiment_id)


# Deleting ------------------------------------------------------------------------------------


@editor.get(f"{EXPERIMENT}/delete")
@_signin_on_401
def delete_page(org: str, workspace: str, experiment_id: str):
    """The confirmation asked before an experiment is deleted."""
    claim, located = _writable(org, workspace, experiment_id)
    base = experiment_path(located.org, located.workspace, experiment_id)
    return render_template(
        "experiment/delete.html", located=located, experiment=located.experiment, base=base,
        versions=len(service.list_versions(claim, experiment_id)))


@editor.post(f"{EXPERIMENT}/delete")
def delete(org: str, workspace: str, experiment_id: str):
    """Delete the experiment, once confirmed on the page above; back to its workspace."""
    claim = signed_in_claim()
    service.authorize_write(claim, "write", org=org, workspace=workspace,
                            experiment_id=experiment_id)
    if request.form.get("confirm") != experiment_id:
        # Only the confirmation page's form names the experiment: nothing else deletes it.
        raise BadRequest("confirm the deletion on its page first")
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    service.delete_experiment(claim, experiment_id)
    place = f"/{quote(located.org, safe='')}/{quote(located.workspace, safe='')}"
    return redirect(f"{place}?deleted=1#experiments", code=303)


def _redirect_to(claim: str, org: str, workspace: str, experiment_id: str, tail: str = ""):
    where = grants.by_name(claim, org, workspace)  # its current names, after a rename
    return redirect(experiment_path(where.org_name, where.name, experiment_id) + tail, code=303)


def _details(error: HubError) -> list[dict]:
    details = error.details if isinstance(error.details, list) else []
    return [{"pointer": d.get("pointer", ""), "message": d.get("message", ""), "line": None}
            for d in details if isinstance(d, dict)]
