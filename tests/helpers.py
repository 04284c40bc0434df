"""Starting the hub as real processes, for the tests that need a server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import PASSWORD

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any hub setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHAOSHUB_", "AUTH_", "DASHBOARD_", "EXPERIMENT_"))
           and k not in ("REDIS_URL", "SECRET_KEY", "PUBLIC_URL")}
    env.update(extra)
    return env


def start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process with its output going to `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail with the process's log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()}")


def stop(*processes: subprocess.Popen, timeout: float = 10) -> None:
    """Stop processes and reap them: all asked at once, so that their shutdowns (seconds each
    for a service flushing its traces) overlap; any still there after `timeout` is killed."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_hub(root: Path, *args: str, **env: str) -> Iterator[str]:
    """`chaoshub run` on a free port with a fresh instance folder in `root`; yields its URL."""
    port = free_port()
    log = root / "hub.log"
    process = start([str(BIN / "chaoshub"), "run", "--port", str(port), *args], root,
                    clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance"), **env), log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/live", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def sign_up_over_http(hub_url: str, username: str) -> None:
    """An account made through the sign-up form, the way a browser would, without driving one."""
    with requests.Session() as session:
        session.get(f"{hub_url}/signin")
        token = session.cookies["chaoshub_csrf"]
        answer = session.post(f"{hub_url}/signup", allow_redirects=False, data={
            "username": username, "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 303, answer.text


def signed_in_session(hub_url: str, username: str) -> requests.Session:
    """An HTTP session of a new account, signed up (hence in) through the form, sending its
    CSRF header."""
    http = requests.Session()
    http.get(f"{hub_url}/signin")
    form = {"username": username, "password": PASSWORD,
            "csrf_token": http.cookies["chaoshub_csrf"]}
    # Sign-up signs the new account in.
    assert http.post(f"{hub_url}/signup", data=form, allow_redirects=False).status_code == 303
    # Land on the home page as a browser does: split, it fetches the new personal org at once.
    assert http.get(f"{hub_url}/", allow_redirects=False).status_code == 200
    http.headers["X-CSRF-Token"] = http.cookies["chaoshub_csrf"]
    return http


def sign_in_browser(page, hub_url: str, username: str) -> None:
    """Sign in through the form in a real browser, landing on the dashboard."""
    page.goto(f"{hub_url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{hub_url}/")


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (a child may be in a session of its own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found
