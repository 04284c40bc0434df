"""The bodies the load bench sends: the sample experiment as the chaos CLI publishes it, and a
journal of it grown to 20 KB."""

from __future__ import annotations

import copy
import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
JOURNAL_BYTES = 20 * 1024
# Stands for the journal's start time, which each request replaces with one of its own.
START_PLACEHOLDER = "@@START@@"


def experiment(title: str | None = None) -> dict:
    """The sample experiment, retitled when `title` is given."""
    document = json.loads((SAMPLES / "experiment.json").read_text())
    if title:
        document["title"] = title
    return document


def as_run(document: dict, experiment_id: str | None = None) -> dict:
    """The experiment as chaoslib sends it after a run (with `dry`), naming the hub's copy the
    way an experiment loaded from the hub does."""
    run = {**document, "dry": False}
    if experiment_id:
        run["extensions"] = [{"name": "chaoshub", "experiment": experiment_id}]
    return run


def journal_template(document: dict, size: int = JOURNAL_BYTES) -> str:
    """A journal of `document`, about `size` bytes of JSON, its start left as a placeholder.

    The sample journal is 7 KB; a 20 KB one has more activities, with outputs worth reading.
    """
    journal = json.loads((SAMPLES / "journal.json").read_text())
    journal["experiment"] = document
    journal["start"] = START_PLACEHOLDER
    methods = copy.deepcopy(journal["run"])
    output = "\n".join(f"line {n}: pod web-{n % 7} ready in {n * 13 % 97} ms" for n in range(24))
    extra = 0
    while len(json.dumps(journal)) < size:
        entry = copy.deepcopy(methods[extra % len(methods)])
        entry["activity"]["name"] = f"{entry['activity']['name']}-{extra + 1}"
        entry["output"] = {"status": 0, "stdout": output, "stderr": ""}
        journal["run"].append(entry)
        extra += 1
    return json.dumps(journal)
