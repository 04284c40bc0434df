"""An experiment as text people edit: parsed as JSON or YAML by the hub's own readers, checked
by the hub's validation, and each problem placed on the line of the document it points at."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from chaoshub.core import inputs
from chaoshub.core.errors import HubError
from chaoshub.experiment import validation

FORMATS = ("json", "yaml")
# libyaml's composer when present: it keeps the same marks, several times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class CheckedText:
    """What checking a text found: the document (None when it could not be read) and the
    problems, each with `pointer`, `message` and `line` (1-based, None when unknown)."""

    format: str
    document: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the text is an experiment the hub would keep."""
        return self.document is not None and not self.problems


def format_of(text: str, asked: str | None = None) -> str:
    """The format `asked` for when it is one, else JSON for a text opening with `{`, else YAML."""
    if asked in FORMATS:
        return asked
    return "json" if text.lstrip().startswith(("{", "[")) else "yaml"


def render(document: dict[str, Any], fmt: str) -> str:
    """The document as text to edit, indented, keys in their stored order."""
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def check(text: str, fmt: str | None = None, max_bytes: int | None = None) -> CheckedText:
    """Parse `text` (JSON or YAML) and validate it against the hub's experiment schema."""
    fmt = format_of(text, fmt)
    checked = CheckedText(format=fmt)
    if max_bytes is not None and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        checked.problems.append(_problem("", f"the document is larger than {max_bytes} bytes"))
        return checked
    if not text.strip():
        checked.problems.append(_problem("", "the document is empty", 1))
        return checked
    try:
        document = inputs.parse_json(text) if fmt == "json" else inputs.parse_yaml(text)
    except HubError as error:
        # The readers speak of a request body: here it is the document being edited.
        message = error.message.replace("the body", "the document", 1)
        checked.problems.append(_problem("", message, _syntax_line(error)))
        return checked
    if not isinstance(document, dict):
        checked.problems.append(_problem("", "the document must be an object (a mapping)", 1))
        return checked
    checked.document = document
    found = validation.problems(document)
    if found:
        lines = LineFinder(text, fmt)
        checked.problems = [_problem(p["pointer"], p["message"], lines.line(p["pointer"]))
                            for p in found]
        checked.problems.sort(key=lambda p: (p["line"] or 0, p["pointer"]))
    return checked


def _problem(pointer: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"pointer": pointer, "message": message, "line": line}


def _syntax_line(error: HubError) -> int | None:
    # The hub's readers raise their 400 from the parser's own error, which knows the line.
    cause = error.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return cause.lineno
    mark = getattr(cause, "problem_mark", None) or getattr(cause, "context_mark", None)
    return mark.line + 1 if mark is not None else None


class LineFinder:
    """The line of the value a JSON Pointer names, from the position marks of PyYAML's node
    tree (JSON is YAML's flow style: the same composer reads both and marks every node)."""

    def __init__(self, text: str, fmt: str):
        self.root = None
        if len(text) > inputs.YAML_MAX_BYTES:
            return  # composing costs as much as loading: beyond YAML's bound, no lines
        if fmt == "json":
            # JSON allows a tab only as white space between tokens (never raw inside a string),
            # where the composer wants spaces: the same lines either way.
            text = text.replace("\t", " ")
        try:
            self.root = yaml.compose(text, Loader=_LOADER)
        except (yaml.YAMLError, ValueError, RecursionError):
            self.root = None  # read by the hub's parser all the same: only the lines are lost

    def line(self, pointer: str) -> int | None:
        """The 1-based line of the value at `pointer`, or of its nearest ancestor present (a
        missing property is reported at the object that lacks it)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line
        for segment in _segments(pointer):
            if isinstance(node, yaml.MappingNode):
                # The last of equal keys: the one both parsers keep.
                pairs = [(k, v) for k, v in node.value
                         if isinstance(k, yaml.ScalarNode) and k.value == segment]
                if not pairs:
                    break
                key, node = pairs[-1]
                line = key.start_mark.line  # the key's line, where a block value starts below
            elif isinstance(node, yaml.SequenceNode):
                if not segment.isdigit() or int(segment) >= len(node.value):
                    break
                node = node.value[int(segment)]
                line = node.start_mark.line
            else:
                break
        return line + 1


def _segments(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]
