"""Request bodies the experiment service reads: JSON or safe YAML, size-capped, JSON-clean."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import yaml
from flask import Response, current_app, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from chaoshub.core import inputs
from chaoshub.core.claims import verify
from chaoshub.core.errors import BadRequest, Forbidden, PayloadTooLarge
from chaoshub.core.web import signed_in_claim

YAML_TYPES = inputs.YAML_TYPES


def writer_claim(scope: str) -> str:
    """The caller's claim when its credential carries `scope` (checked before any body)."""
    # A caller who may not write costs no parsing.
    claim = signed_in_claim()
    if not verify(claim).allows(scope):
        raise Forbidden(f"the credential lacks the {scope} scope")
    return claim


def read(limit_setting: str, what: str, yaml_allowed: bool = False) -> Any:
    """The request's body as JSON (or YAML where allowed); 400 if invalid, 413 if too big."""
    if request.mimetype in YAML_TYPES and not yaml_allowed:
        raise BadRequest(f"the {what} must be sent as JSON (Content-Type: application/json)")
    # The hub-wide ceiling (MAX_CONTENT_LENGTH) still holds below this kind of body's limit.
    limit = min(current_app.config[limit_setting], current_app.config["MAX_CONTENT_LENGTH"])
    # Werkzeug refuses to read past this with a 413, before the body is buffered.
    request.max_content_length = limit
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"the {what} is larger than {limit} bytes")
    if not raw.strip():
        raise BadRequest(f"the body must hold the {what}")
    if request.mimetype in YAML_TYPES:
        return inputs.parse_yaml(raw)
    return inputs.parse_json(raw)


def read_object(limit_setting: str, what: str, yaml_allowed: bool = False) -> dict[str, Any]:
    """Like `read`, and the body must be an object (400 otherwise)."""
    data = read(limit_setting, what, yaml_allowed)
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be an object: the {what}")
    return data


def wants_yaml() -> bool:
    """True when the client asked for YAML (?format=yaml, or an Accept preferring it)."""
    # A missing key costs werkzeug an exception: most reads have no query string at all.
    asked = request.args.get("format") if request.query_string else None
    if asked in ("yaml", "yml"):
        return True
    if asked == "json":
        return False
    return _prefers_yaml(request.headers.get("Accept", ""))


@functools.lru_cache(maxsize=256)
def _prefers_yaml(accept: str) -> bool:
    # Clients send one Accept again and again (`chaos run` names JSON and YAML): each header
    # is parsed once per process.
    asked = accept.lower()
    if "yaml" not in asked and "text/" not in asked:
        return False
    parsed = parse_accept_header(accept, MIMEAccept)
    return max(parsed.quality(t) for t in YAML_TYPES) > parsed.quality("application/json")


class RenderedDocuments:
    """Experiment documents rendered for an answer, kept per process by what wholly decides
    their bytes (the experiment, its version, where it lives, the format): `chaos run` reads
    the same document again and again, and its bytes never change under the same key."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[bytes, str, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def answer(self, key: tuple, document: Callable[[], dict[str, Any]],
               yaml_wanted: bool) -> Response:
        """The answer for `key`, rendered from `document()` the first time; with its ETag."""
        key = (*key, yaml_wanted)
        found = self._items.get(key)
        if found is None:
            rendered = document_response(document(), yaml_wanted, pretty=False)
            rendered.add_etag()
            found = (rendered.get_data(), rendered.mimetype, rendered.get_etag()[0])
            with self._lock:
                if key not in self._items:
                    self._items[key] = found
                    self._size += len(found[0])
                while self._size > self.max_bytes and self._items:
                    self._size -= len(self._items.popitem(last=False)[1][0])
        response = Response(found[0], mimetype=found[1])
        response.set_etag(found[2])
        return response


def document_response(document: dict[str, Any], yaml_wanted: bool, status: int = 200,
                      pretty: bool = True) -> Response:
    """An experiment document as JSON or YAML; JSON indented for people unless not `pretty`."""
    if yaml_wanted:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return Response(text, status=status, mimetype="application/x-yaml")
    # Indenting takes json's pure-Python encoder: several times slower than the compact one.
    text = json.dumps(document, ensure_ascii=False, indent=2 if pretty else None)
    return Response(text + "\n", status=status, mimetype="application/json")

