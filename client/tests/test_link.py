"""Writing the experiment's link into a local file: the rest of the file stays as it was."""

from __future__ import annotations

import json

import pytest
import yaml

from chaoshub_client.link import link_file, loaded_source

LINK = {"name": "chaoshub", "experiment": "e-1", "self": "https://hub.example.com/a/W/experiment/e-1",
        "organization": "a", "workspace": "W"}


def linked(tmp_path, name: str, text: str) -> tuple[str, str]:
    path = tmp_path / name
    path.write_text(text)
    outcome = link_file(loaded_source(str(path)), LINK)
    return outcome, path.read_text()


def test_a_yaml_file_gains_the_link_at_its_end_with_its_comments_kept(tmp_path):
    text = "# ours\ntitle: t  # why\nmethod:\n  - type: action\n    name: x\n"
    outcome, written = linked(tmp_path, "e.yaml", text)
    assert outcome == "linked" and written.startswith(text)
    assert yaml.safe_load(written)["extensions"] == [LINK]


def test_a_yaml_link_to_another_experiment_is_replaced_in_place(tmp_path):
    text = ("title: t\nextensions:\n  - name: chaoshub\n    experiment: old  # was\n"
            "    mine: kept\n  - name: other\n# end\n")
    outcome, written = linked(tmp_path, "e.yml", text)
    assert outcome == "linked"
    assert written.startswith("title: t\nextensions:\n  - name: chaoshub\n    experiment: e-1\n")
    assert written.endswith("  - name: other\n# end\n")
    assert yaml.safe_load(written)["extensions"] == [{**LINK, "mine": "kept"}, {"name": "other"}]


def test_a_json_file_keeps_its_indentation_and_key_order(tmp_path):
    document = {"title": "t", "é": 1, "extensions": [{"name": "other"}], "method": []}
    outcome, written = linked(tmp_path, "e.json", json.dumps(document, indent=4,
                                                            ensure_ascii=False) + "\n")
    assert outcome == "linked"
    assert written == json.dumps({**document, "extensions": [{"name": "other"}, LINK]},
                                 indent=4, ensure_ascii=False) + "\n"


def test_a_file_already_linked_or_changed_since_loading_is_left_alone(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"title": "t", "extensions": [LINK]}))
    assert link_file(loaded_source(str(path)), LINK) == "already"
    source = loaded_source(str(path))
    path.write_text('{"title": "edited meanwhile"}')
    assert link_file(source, LINK) == "changed"
    assert path.read_text() == '{"title": "edited meanwhile"}'


@pytest.mark.parametrize("source", ["https://hub.example.com/a/W/experiment/e-1",
                                    "http://localhost/e.json", "missing.json", "notes.txt", None])
def test_nothing_but_a_local_experiment_file_is_ever_written(tmp_path, source):
    (tmp_path / "notes.txt").write_text("{}")
    assert loaded_source(source if source is None or "://" in source
                         else str(tmp_path / source)) is None
