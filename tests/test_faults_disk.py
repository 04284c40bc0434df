"""The disk full where the SQLite databases live, and where the client's spool lives.

The test mounts a small tmpfs of its own (it needs root, or CAP_SYS_ADMIN: where mounting is not
allowed it skips, saying why, except under CHAOSHUB_REQUIRE_SERVICES=1 where it fails), puts the
hub's instance folder (its three SQLite databases) there, and fills it with a file. Writes get a
507 `insufficient_storage` answer and leave nothing half-written; reads go on; once the file is
gone, writes work again and every database passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import requests

from chaoshub.core.config import SERVICES
from tests import fault_servers, test_control
from tests.conftest import PASSWORD, REQUIRE_SERVICES
from tests.experiment_data import experiment, journal
from tests.helpers import signed_in_session
from tests.test_control import chaos_run, write_settings

pytestmark = pytest.mark.faults
# A user's machine with the client venv, as the control's tests have them.
client_venv, laptop = test_control.client_venv, test_control.laptop
SIZE_MB = 24


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory) -> Path:
    """A tmpfs of SIZE_MB mounted for this module, unmounted at its end."""
    folder = tmp_path_factory.mktemp("small-disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0755", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}"
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (CHAOSHUB_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)  # still held open


class Filler:
    """A file taking every free byte of a filesystem, until `remove()`."""

    def __init__(self, folder: Path):
        self.path = folder / "filler"

    def fill(self) -> int:
        """Take all the space left; the bytes taken."""
        with open(self.path, "ab", buffering=0) as out:  # unbuffered: no write left to fail
            free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
            while free:
                # The file's own extent blocks come out of the same free space: asking for all
                # of it can fail, so ask for less until it fits.
                try:
                    os.posix_fallocate(out.fileno(), out.seek(0, os.SEEK_END), free)
                    break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    free //= 2
            try:  # whatever fallocate's rounding left
                while out.write(b"\0" * 4096):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.path).f_bavail == 0
        return self.path.stat().st_size

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def hub(small_disk, tmp_path_factory):
    """The hub under gunicorn, its instance folder (databases, keys) on the small disk and its
    log elsewhere, with alice signed in."""
    env = fault_servers.hub_env(small_disk)
    with fault_servers.hub(tmp_path_factory.mktemp("disk-hub"), env, workers=1) as served:
        yield served, signed_in_session(served.url, "alice"), small_disk / "instance"


def counts(instance: Path) -> dict[str, int]:
    """Rows that writes add, read from each database apart from the hub."""
    queries = {"accounts": ("auth", "SELECT count(*) FROM accounts"),
               "experiments": ("experiment", "SELECT count(*) FROM experiments"),
               "executions": ("experiment", "SELECT count(*) FROM executions"),
               "journals": ("experiment", "SELECT count(*) FROM execution_journals")}
    found = {}
    for name, (service, query) in queries.items():
        with contextlib.closing(sqlite3.connect(f"file:{instance / f'{service}.db'}?mode=ro",
                                                uri=True)) as db:
            found[name] = db.execute(query).fetchone()[0]
    return found


def checkpoint(instance: Path) -> None:
    """Fold each database's write-ahead log into it and empty the log, so that the next write
    needs new space (as on a disk that filled while the hub ran)."""
    for service in SERVICES:
        with contextlib.closing(sqlite3.connect(instance / f"{service}.db")) as db:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0


def integrity(instance: Path) -> dict[str, str]:
    found = {}
    for service in SERVICES:
        with contextlib.closing(sqlite3.connect(f"file:{instance / f'{service}.db'}?mode=ro",
                                                uri=True)) as db:
            found[service] = db.execute("PRAGMA integrity_check").fetchone()[0]
    return found


def new_journal(n: int) -> dict:
    body = copy.deepcopy(journal())
    body["start"] = f"2026-11-23T09:{n:02d}:00.000000"  # a journal of its own each time
    return body


def writes(url: str, http: requests.Session, experiment_id: str, n: int
           ) -> dict[str, requests.Response]:
    """A journal published, an experiment saved, an account signed up (answers in JSON)."""
    document = experiment()
    document["title"] = f"Saved on disk {n}"
    signup = requests.Session()
    signup.get(f"{url}/signin")
    return {
        "publish": http.post(f"{url}/api/v1/experiments/{experiment_id}/executions",
                             json=new_journal(n)),
        "save": http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                          json=document),
        "signup": signup.post(f"{url}/signup", allow_redirects=False,
                              headers={"Accept": "application/json"},
                              data={"username": f"newcomer{n}", "password": PASSWORD,
                                    "csrf_token": signup.cookies["chaoshub_csrf"]}),
    }


def reads(url: str, http: requests.Session, experiment_id: str, execution_id: str
          ) -> dict[str, int]:
    paths = {"me": "/api/v1/me", "experiment": f"/api/v1/experiments/{experiment_id}",
             "listing": "/api/v1/orgs/alice/workspaces/Personal/experiments",
             "execution": f"/api/v1/executions/{execution_id}",
             "journal": f"/api/v1/executions/{execution_id}/journal",
             "home page": "/",
             "experiment page": f"/alice/Personal/experiment/{experiment_id}"}
    return {name: http.get(f"{url}{path}", allow_redirects=False).status_code
            for name, path in paths.items()}


def test_a_full_disk_refuses_writes_with_507_keeps_reads_and_corrupts_nothing(hub):
    served, http, instance = hub
    url = served.url
    saved = http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                      json=experiment())
    assert saved.status_code == 201, saved.text
    experiment_id = saved.json()["id"]
    published = http.post(f"{url}/api/v1/experiments/{experiment_id}/executions",
                          json=new_journal(0))
    assert published.status_code == 201, published.text
    execution_id = published.json()["id"]
    before = counts(instance)

    filler = Filler(instance.parent)
    try:
        checkpoint(instance)
        taken = filler.fill()
        refused = writes(url, http, experiment_id, 1)
        answered = reads(url, http, experiment_id, execution_id)
        during = counts(instance)
    finally:
        filler.remove()
    for name, answer in refused.items():
        assert answer.status_code == 507, (name, answer.status_code, answer.text[:500])
        body = answer.json()
        assert body["error"] == "insufficient_storage", (name, body)
        assert set(body) == {"error", "message", "details"} and "full" in body["message"]
    assert answered == dict.fromkeys(answered, 200), answered
    assert during == before  # nothing half-written

    again = writes(url, http, experiment_id, 2)
    assert {name: a.status_code for name, a in again.items()} == {
        "publish": 201, "save": 201, "signup": 303}, {n: a.text[:300] for n, a in again.items()}
    after = counts(instance)
    assert after == {**before, "accounts": before["accounts"] + 1,
                     "experiments": before["experiments"] + 1,
                     "executions": before["executions"] + 1,
                     "journals": before["journals"] + 1}
    checked = integrity(instance)
    assert checked == dict.fromkeys(SERVICES, "ok"), checked
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    print(f"disk full ({taken // 1024} KiB filler on {SIZE_MB} MiB): writes "
          f"{ {n: a.status_code for n, a in refused.items()} }, reads {answered}; rows "
          f"{before} -> {during} while full -> {after} once freed; integrity {checked}")


def test_a_run_whose_spool_is_on_a_full_disk_says_so_without_a_traceback(
        small_disk, laptop, tmp_path):
    laptop["spool"] = small_disk / "spool"
    # No hub listens there: the journal goes to the spool, which cannot take it.
    write_settings(laptop, f"http://127.0.0.1:{fault_servers.free_port()}", "chub_" + "x" * 36,
                   "Personal")
    filler = Filler(small_disk)
    try:
        filler.fill()
        done, _ = chaos_run(laptop, "full")
    finally:
        filler.remove()
    said = done.stdout + done.stderr + (tmp_path / "full.log").read_text()
    assert done.returncode in (0, 1), said[-3000:]  # as the run went, not a crash
    assert "Traceback" not in said, said[-3000:]
    assert "the journal could not be kept" in said and "No space left on device" in said, \
        said[-3000:]
    left = sorted(p.name for p in laptop["spool"].glob("*")) if laptop["spool"].exists() else []
    assert left == [], left  # no half-written journal
    print(f"spool on a full disk: chaos run exited {done.returncode}; it said: "
          f"{[line for line in said.splitlines() if 'could not be kept' in line][0][-200:]}")
