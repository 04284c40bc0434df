"""What the hub accepts from clients: JSON and YAML parsed within bounds, and text without a NUL
character or a lone surrogate, in bodies, URLs, headers and form fields alike.

Every request body, query string and header goes through here before a service sees it, so
that bad input is a 400 at the edge, never a 500 from the database or an encoder later.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider

from chaoshub.core.errors import BadRequest, PayloadTooLarge

# The largest real experiments and journals nest 6 to 8 levels: 64 leaves room and keeps every
# recursive reader of a stored document (encoders, templates, diffs) far from its limits.
MAX_DEPTH = 64
# libyaml scans fast, but PyYAML still builds each value in Python: about 0.5 s of CPU per MiB.
YAML_MAX_BYTES = 256 * 1024
YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# PostgreSQL keeps no NUL in text, and a lone surrogate cannot be written as UTF-8.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# The environ's keys that hold request headers (request.headers shows these alone).
_HEADER_KEYS = ("HTTP_", "CONTENT_TYPE", "CONTENT_LENGTH")


def parse_json(data: str | bytes) -> Any:
    """JSON from a client, checked; 400 when invalid, too deep, non-finite or unclean."""
    # Unclean: a NUL or a lone surrogate in a key or a string.
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as exc:
        raise BadRequest(_TOO_DEEP) from exc
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {_first_line(exc)}") from exc
    if _clean_text(data):
        _check_depth(value)  # its strings cannot hold what check_value looks for
    else:
        check_value(value)
    return value


def _clean_text(data: str | bytes) -> bool:
    # JSON text can hold a NUL or a lone surrogate in a string only as a \u escape (json
    # refuses raw control characters in strings), or as a surrogate itself: in UTF-8 bytes
    # (which json decodes with surrogatepass) those start with 0xED. Rare in real bodies.
    if isinstance(data, bytes):
        # Only UTF-8 bytes: json reads UTF-16 and UTF-32 too, where an escape's bytes are apart
        # ("\\\x00u\x00") and a surrogate's do not start with 0xED.
        return (json.detect_encoding(data) == "utf-8" and b"\\u" not in data
                and b"\xed" not in data)
    return "\\u" not in data and not _BAD_TEXT.search(data)


def _check_depth(value: Any) -> None:
    # check_value's walk without looking at the scalars (the parser checked the numbers).
    stack = [(value, 0)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise BadRequest(_TOO_DEEP)
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def parse_yaml(data: str | bytes) -> Any:
    """YAML from a client as plain JSON values, with the checks of `parse_json`."""
    # No aliases or merge keys (they expand), and at most YAML_MAX_BYTES (413).
    if len(data) > YAML_MAX_BYTES:
        raise PayloadTooLarge(f"a YAML body may be at most {YAML_MAX_BYTES} bytes: send JSON")
    try:
        value = yaml.load(data, Loader=UntrustedYamlLoader)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        if "nesting depth" in str(exc):  # libyaml's own limit, far past ours
            raise BadRequest(_TOO_DEEP) from exc
        raise BadRequest(f"the body is not valid YAML: {_yaml_problem(exc)}") from exc
    check_value(value)
    try:
        # What gets stored is plain JSON: YAML dates become strings, and NaN or Infinity (which
        # PostgreSQL refuses) are turned away.
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the body is not plain JSON data: {_first_line(exc)}") from exc


def check_value(value: Any) -> None:
    """400 when `value` nests deeper than MAX_DEPTH, or holds bad text or a non-finite number."""
    # A loop, not recursion: how deep the value goes is what is being checked.
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise BadRequest(_TOO_DEEP)
            for key, child in item.items():
                if isinstance(key, str):
                    check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise BadRequest(_TOO_DEEP)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest("NaN and Infinity are not JSON numbers")


def check_text(text: str, where: str = "the body") -> None:
    """400 when `text` holds a NUL character or a lone surrogate."""
    found = _BAD_TEXT.search(text)
    if found:
        what = ("a NUL character" if found.group() == "\x00"
                else "a lone surrogate (\\ud800 to \\udfff without its pair)")
        raise BadRequest(f"{where} holds {what}, which the hub does not accept")


def check_request_text() -> None:
    """Refuse a request whose URL, headers or form fields hold a NUL or a lone surrogate."""
    check_text(request.path, "the URL")
    environ = request.environ
    if environ.get("QUERY_STRING"):  # most requests have none: no arguments to parse then
        for key, value in request.args.items(multi=True):
            check_text(key + value, "the URL")
    # One search over every header as the server handed it over (the WSGI environ, which
    # request.headers reads again for each item); the header at fault is looked for only then.
    if _BAD_TEXT.search("".join([value for key, value in environ.items()
                                 if key.startswith(_HEADER_KEYS) and isinstance(value, str)])):
        for name, value in request.headers.items():
            check_text(value, f"the {name} header")
    if environ.get("CONTENT_TYPE") and request.mimetype in FORM_TYPES:
        if request.mimetype == FORM_TYPES[0]:
            # Kept as sent: a signed form (GitHub's push webhook) is checked byte for byte
            # after its fields are read here.
            request.get_data(cache=True)
        for key, value in request.form.items(multi=True):
            check_text(key + value, f"the form field {key[:40]!r}")


class UntrustedYamlLoader(yaml.CSafeLoader):
    """libyaml's safe loader, refusing what expands or costs: aliases, merge keys, base-60."""

    def construct_object(self, node, deep=False):
        """The value of `node`; 400 when an alias brings it back."""
        # Nodes come from libyaml; one met twice while building is an alias.
        if node in self.constructed_objects or node in self.recursive_objects:
            raise BadRequest("YAML aliases (*name) are not accepted: write the value out")
        return super().construct_object(node, deep)

    def flatten_mapping(self, node):
        """Refuse merge keys (<<), which copy other mappings in."""
        if any(key.tag == _MERGE_TAG for key, _ in node.value):
            raise BadRequest("YAML merge keys (<<) are not accepted: write the keys out")
        super().flatten_mapping(node)

    def construct_yaml_int(self, node):
        """An integer; 400 for YAML 1.1's base-60 form, which PyYAML builds in quadratic time."""
        return super().construct_yaml_int(_decimal_only(node))

    def construct_yaml_float(self, node):
        """A float; 400 for YAML 1.1's base-60 form, as for integers."""
        return super().construct_yaml_float(_decimal_only(node))


def _decimal_only(node):
    if ":" in node.value:
        raise BadRequest("YAML base-60 numbers (1:30:00) are not accepted: quote or convert them")
    return node


UntrustedYamlLoader.add_constructor("tag:yaml.org,2002:int",
                                    UntrustedYamlLoader.construct_yaml_int)
UntrustedYamlLoader.add_constructor("tag:yaml.org,2002:float",
                                    UntrustedYamlLoader.construct_yaml_float)


class CheckedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, whose `loads` (request.get_json everywhere) checks as `parse_json` does."""

    # Bad input is a 400 even where the caller asked for silence.

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """JSON from a client, checked (see `parse_json`)."""
        return parse_json(s)


def cap_body() -> None:
    """Limit the request's body to BODY_MAX_BYTES (413 past it)."""
    # Experiments and journals, read through experiment/bodies.py, raise it before reading.
    request.max_content_length = min(current_app.config["BODY_MAX_BYTES"],
                                     current_app.config["MAX_CONTENT_LENGTH"])


def init_app(app: Flask) -> None:
    """Cap and check bodies, and refuse bad text in URLs, headers and forms, before any route."""
    app.json = CheckedJSONProvider(app)
    app.before_request(cap_body)
    app.before_request(check_request_text)


_TOO_DEEP = f"the body nests deeper than {MAX_DEPTH} levels"


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: a float too large, read as infinity
        raise BadRequest("NaN and Infinity are not JSON numbers")
    return number


def _yaml_problem(exc: Exception) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return _first_line(exc)
    text = ", ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    return f"{text} (line {mark.line + 1}, column {mark.column + 1})" if mark else text


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
