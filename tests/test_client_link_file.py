"""Writing the `chaoshub` extension into a local experiment file keeps the file's line endings,
never writes through a link left where it writes, and falls back to a whole new text when an
edit in place would not read back."""

from __future__ import annotations

import json
import os

import yaml
from chaoshub_client.link import link_file, loaded_source

LINK = {"name": "chaoshub", "experiment": "e-1", "organization": "alice", "workspace": "ws"}


def linked(path) -> str:
    source = loaded_source(str(path))
    assert source is not None
    return link_file(source, LINK)


def test_a_crlf_json_file_keeps_its_crlf_line_endings(tmp_path):
    path = tmp_path / "exp.json"
    path.write_bytes(b'{\r\n  "title": "t",\r\n  "method": []\r\n}\r\n')
    assert linked(path) == "linked"
    raw = path.read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n") > 4
    assert json.loads(raw)["extensions"] == [LINK]


def test_a_crlf_yaml_file_keeps_its_crlf_line_endings_and_comments(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"title: t  # mine\r\nmethod: []\r\n")
    assert linked(path) == "linked"
    raw = path.read_bytes()
    assert raw.startswith(b"title: t  # mine\r\nmethod: []\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert yaml.safe_load(raw)["extensions"] == [LINK]


def test_a_link_where_the_partial_file_goes_is_not_written_through(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text('{"title": "t"}\n')
    other = tmp_path / "other.txt"
    other.write_text("precious\n")
    # The name the partial file had: someone sharing the folder could have placed this link.
    os.symlink(other, tmp_path / ".exp.json.chaoshub-partial")
    assert linked(path) == "linked"
    assert other.read_text() == "precious\n"
    assert not path.is_symlink()
    assert json.loads(path.read_text())["extensions"] == [LINK]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith("-partial")] == \
        [".exp.json.chaoshub-partial"]  # only the link, none of its own left behind


def test_a_yaml_file_with_a_document_end_marker_is_linked_all_the_same(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("---\ntitle: t\nmethod: []\n...\n")
    assert linked(path) == "linked"
    assert yaml.safe_load(path.read_text()) == {"title": "t", "method": [], "extensions": [LINK]}


def test_the_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text('{"title": "t"}\n')
    path.chmod(0o640)
    assert linked(path) == "linked"
    assert path.stat().st_mode & 0o777 == 0o640
