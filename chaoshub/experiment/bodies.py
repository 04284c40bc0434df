"""Request bodies the experiment service reads: JSON or safe YAML, size-capped, JSON-clean."""

from __future__ import annotations

import json
from typing import Any

import yaml
from flask import Response, current_app, request

from chaoshub.core.errors import BadRequest, PayloadTooLarge

YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml")


def read(limit_setting: str, what: str) -> Any:
    """The request's body parsed as JSON, or YAML for a YAML Content-Type; 400 when it is
    neither, 413 past the `limit_setting` bytes."""
    # The hub-wide ceiling (MAX_CONTENT_LENGTH) still holds below this kind of body's limit.
    limit = min(current_app.config[limit_setting], current_app.config["MAX_CONTENT_LENGTH"])
    # Werkzeug refuses to read past this with a 413, before the body is buffered.
    request.max_content_length = limit
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"the {what} is larger than {limit} bytes")
    if not raw.strip():
        raise BadRequest(f"the body must hold the {what}")
    try:
        if request.mimetype in YAML_TYPES:
            data = yaml.safe_load(raw)
        else:
            data = json.loads(raw, parse_constant=_no_constant)
        # Round-tripped so what gets stored is plain JSON: YAML dates become strings, and
        # NaN or Infinity (which PostgreSQL refuses) are turned away.
        return json.loads(json.dumps(data, default=str, allow_nan=False))
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        kind = "YAML" if request.mimetype in YAML_TYPES else "JSON"
        raise BadRequest(f"the body is not valid {kind}: {_first_line(exc)}") from exc


def read_object(limit_setting: str, what: str) -> dict[str, Any]:
    """Like `read`, and the body must be an object (400 otherwise)."""
    data = read(limit_setting, what)
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be an object: the {what}")
    return data


def wants_yaml() -> bool:
    """True when the client asked for YAML (?format=yaml, or an Accept preferring it)."""
    if request.args.get("format") in ("yaml", "yml"):
        return True
    if request.args.get("format") == "json":
        return False
    accept = request.accept_mimetypes
    return max(accept.quality(t) for t in YAML_TYPES) > accept.quality("application/json")


def document_response(document: dict[str, Any], yaml_wanted: bool, status: int = 200,
                      pretty: bool = True) -> Response:
    """An experiment document as JSON or YAML; JSON indented for people unless not `pretty`."""
    if yaml_wanted:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return Response(text, status=status, mimetype="application/x-yaml")
    # Indenting takes json's pure-Python encoder: several times slower than the compact one.
    text = json.dumps(document, ensure_ascii=False, indent=2 if pretty else None)
    return Response(text + "\n", status=status, mimetype="application/json")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
