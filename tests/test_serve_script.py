"""scripts/serve: installs only when the packaging changed, with no deprecation warning, and
listens where it is told (--host/--port, or CHAOSHUB_HOST/CHAOSHUB_PORT)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import clean_env, free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent

# It installs the packages (PyPI gives pip its build backend) and starts the hub three times:
# slow, but it times nothing (it waits up to 240 s for each start), so scripts/test runs it on
# the two processes with the fast and browser tests rather than alone with the timed ones.
pytestmark = pytest.mark.install


def _checkout_copy(target: Path) -> Path:
    """The project's files (as they are now) in `target`, with a .venv of its own that sees
    the installed dependencies but not the project's own editable installs."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    subprocess.run([sys.executable, "-m", "venv", str(target / ".venv")], check=True)
    # A plain path line: the dependencies are found there, but that folder's own .pth files
    # (the project's editable installs for this checkout) are not read, so pip installs the
    # copy's packages into the copy's .venv and leaves the shared one alone.
    shared = sysconfig.get_paths()["purelib"]
    ours = subprocess.run([str(target / ".venv/bin/python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(ours, "shared-dependencies.pth").write_text(shared + "\n")
    return target


def _listening(port: int) -> set[str]:
    """The IPv4 addresses something listens on at `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, at = local.split(":")
        if state == "0A" and int(at, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def _stop_group(process: subprocess.Popen) -> None:
    """Stop the script's process group (the hub and the worker beside it), if still there."""
    for signal_number, wait in ((15, 15), (9, None)):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def _start(copy: Path, log: Path, *args: str, **env: str) -> tuple[str, set[str]]:
    """Run scripts/serve until the hub answers; its output and the addresses it listens on."""
    port = int(env.get("CHAOSHUB_PORT") or args[args.index("--port") + 1])
    environment = clean_env(CHAOSHUB_INSTANCE_PATH=str(copy / "instance"), **env)
    for name in ("CHAOSHUB_HOST", "CHAOSHUB_PORT", "HOST", "PORT"):
        if name not in env:
            environment.pop(name, None)
    environment.pop("PIP_REQUIRE_VIRTUALENV", None)
    with open(log, "wb") as out:
        process = subprocess.Popen([str(copy / "scripts/serve"), *args], cwd=copy,
                                   env=environment, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/live", process, log, timeout=240)
        addresses = _listening(port)
    finally:
        _stop_group(process)
    return log.read_text(errors="replace"), addresses


def test_a_second_start_reinstalls_nothing_warns_nothing_and_listens_where_told(tmp_path):
    copy = _checkout_copy(tmp_path / "checkout")

    first, addresses = _start(copy, tmp_path / "first.log", "--port", str(free_port()))
    assert "not reinstalling" not in first  # a new .venv: installed
    assert (copy / ".venv/bin/chaoshub").exists()
    assert "deprecat" not in first.lower(), first  # setuptools' license warning is gone
    assert addresses == {"127.0.0.1"}, first  # by default, this machine only

    port = free_port()
    second, addresses = _start(copy, tmp_path / "second.log", "--host", "0.0.0.0",
                                  CHAOSHUB_PORT=str(port), HOST="a-machine-name")
    assert "not reinstalling" in second, second
    assert "deprecat" not in second.lower() and "Installing" not in second, second
    assert f"serve: .venv/bin/chaoshub run --port {port} --host 0.0.0.0" in second
    assert addresses == {"0.0.0.0"}, second

    # A change to what the install reads installs again.
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n")
    third, addresses = _start(copy, tmp_path / "third.log", CHAOSHUB_HOST="127.0.0.1",
                              CHAOSHUB_PORT=str(free_port()))
    assert "not reinstalling" not in third and "deprecat" not in third.lower(), third
    assert addresses == {"127.0.0.1"}
