"""Linking a local experiment file to its experiment on the hub: the `chaoshub` extension.

After a run of a local file is opened on the hub, the control writes into that file the
extension naming the experiment the run reports to, so that the file, once edited, becomes a new
version of that experiment rather than a new experiment. The rest of the file is kept as it was
as far as practical: a YAML file is edited in place (its comments and layout stay), a JSON file
is written back with its own indentation and key order.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

HUB_EXTENSION = "chaoshub"
# What says the file is linked: the same experiment, where it lives.
LINK_KEYS = ("experiment", "organization", "workspace")


class LoadedSource:
    """A local experiment file as chaoslib loaded it: its path and its text then."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text

    def __repr__(self) -> str:
        return f"LoadedSource({str(self.path)!r})"


def loaded_source(source: Any) -> LoadedSource | None:
    """The local file `source` names (chaoslib's loader reads a path that exists, else a URL),
    with its text; None for a URL or anything unreadable."""
    if not isinstance(source, str) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
        return None
    path = Path(source)
    if path.suffix.lower() not in (".json", ".yaml", ".yml") or not path.is_file():
        return None
    try:
        # Its line endings as they are: a file written with CRLF is written back with CRLF.
        return LoadedSource(path.resolve(), _read(path))
    except (OSError, UnicodeDecodeError):
        return None


def hub_extension(document: Any) -> dict[str, Any]:
    """The `chaoshub` extension a document carries, or {}."""
    extensions = document.get("extensions") if isinstance(document, dict) else None
    for extension in extensions if isinstance(extensions, list) else []:
        if isinstance(extension, dict) and extension.get("name") == HUB_EXTENSION:
            return extension
    return {}


def link_file(source: LoadedSource, extension: dict[str, Any]) -> str:
    """Write `extension` into the file as its `chaoshub` extension. Returns "linked",
    "already" (the file names that experiment there already) or "changed" (the file changed
    since it was loaded: left alone)."""
    raw = _read(source.path)
    if raw != source.text:
        return "changed"
    # Edited with LF line ends, written back with the file's own.
    crlf = "\r\n" in raw
    current = raw.replace("\r\n", "\n") if crlf else raw
    yaml_file = source.path.suffix.lower() in (".yaml", ".yml")
    document = yaml.safe_load(current) if yaml_file else json.loads(current)
    if not isinstance(document, dict):
        return "changed"
    present = hub_extension(document)
    if all(present.get(k) == extension.get(k) for k in LINK_KEYS):
        return "already"
    merged = {**present, **extension}  # keys of the user's own in the extension stay
    wanted = with_extension(document, merged)
    text = _yaml_edited(current, wanted, merged) if yaml_file else _json_text(current, wanted)
    _replace(source.path, text.replace("\n", "\r\n") if crlf else text)
    return "linked"


def with_extension(document: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """The document with `extension` as its `chaoshub` extension, in place of any other."""
    extensions = document.get("extensions")
    extensions = list(extensions) if isinstance(extensions, list) else []
    for index, found in enumerate(extensions):
        if isinstance(found, dict) and found.get("name") == HUB_EXTENSION:
            extensions[index] = extension
            break
    else:
        extensions.append(extension)
    return {**document, "extensions": extensions}


def _json_text(current: str, document: dict[str, Any]) -> str:
    """The document as JSON in the file's own style: its indentation (or none), its key order
    (json keeps it), a final newline when it had one."""
    indent_of = re.search(r"\{\s*?\n([ \t]+)\"", current)
    indent: int | str | None = None
    if indent_of:
        whitespace = indent_of.group(1)
        indent = whitespace if "\t" in whitespace else len(whitespace)
    ascii_only = current.isascii() and "\\u" in current
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    return text + "\n" if current.endswith("\n") else text


def _yaml_edited(current: str, document: dict[str, Any], extension: dict[str, Any]) -> str:
    """The YAML text with the extension written in place: the rest of the text stays as it was.
    Falls back to writing the whole document anew when the layout is not one it can edit."""
    try:
        edited = _yaml_in_place(current, extension)
        # An edit that would not read back as the document (say after a `...` end marker).
        if edited is not None and yaml.safe_load(edited) == document:
            return edited
    except (yaml.YAMLError, ValueError):
        pass
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _yaml_in_place(current: str, extension: dict[str, Any]) -> str | None:
    root = yaml.compose(current)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    extensions = next((value for key, value in root.value
                       if isinstance(key, yaml.ScalarNode) and key.value == "extensions"), None)
    if extensions is None:
        # A block mapping at the top: a new key at its end keeps every other line.
        column = root.start_mark.column
        block = _yaml_block(extension, column + 2)
        body = current if current.endswith("\n") else current + "\n"
        return f"{body}{' ' * column}extensions:\n{' ' * column}- {block}\n"
    if not isinstance(extensions, yaml.SequenceNode) or extensions.flow_style:
        return None
    for item in extensions.value:
        if isinstance(item, yaml.MappingNode) and any(
                isinstance(k, yaml.ScalarNode) and k.value == "name" and
                isinstance(v, yaml.ScalarNode) and v.value == HUB_EXTENSION
                for k, v in item.value):
            if item.flow_style or not item.value:
                return None
            start, end = item.start_mark.index, _node_end(item)
            block = _yaml_block(extension, item.start_mark.column)
            return current[:start] + block + current[end:]
    if not extensions.value:
        return None
    last = extensions.value[-1]
    end = _node_end(last)
    column = extensions.start_mark.column
    block = _yaml_block(extension, column + 2)
    return f"{current[:end]}\n{' ' * column}- {block}{current[end:]}"


def _yaml_block(extension: dict[str, Any], column: int) -> str:
    """The extension as block mapping lines for a sequence item whose keys start at `column`
    (the first line without its indentation)."""
    lines = [f"{key}: {_yaml_scalar(value)}" for key, value in extension.items()]
    return f"\n{' ' * column}".join(lines)


def _yaml_scalar(value: Any) -> str:
    # JSON's strings and numbers are YAML's double-quoted scalars: never misread.
    plain = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
    plain = plain.removesuffix("\n").removesuffix("\n...").strip()
    return plain if "\n" not in plain else json.dumps(value, ensure_ascii=False)


def _node_end(node: yaml.Node) -> int:
    """Where a node's own text ends (a block mapping's end mark lies past its last line)."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _node_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _node_end(node.value[-1])
    return node.end_mark.index


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as file:
        return file.read()


def _replace(path: Path, text: str) -> None:
    """Write the file whole or not at all, keeping its permissions."""
    mode = path.stat().st_mode & 0o777
    # A new file of a name no one could have chosen before (O_EXCL): a fixed name could be a
    # link placed there by someone else sharing the folder, and the write would follow it.
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".chaoshub-partial",
                                   dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
