"""Driving wrk: Lua scripts for the load bench's requests, and its figures read back."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("wrk is not installed. On Debian or Ubuntu: sudo apt-get install -y wrk; "
                "on macOS: brew install wrk; or build it from https://github.com/wg/wrk")
MARKER = "LOAD_RESULT "

# Printed once by wrk's main thread after the run, on a line of its own.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n%s{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "status_errors": %d}\\n',
    "LOAD_RESULT ", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""

# Each thread numbers its requests; with the thread's number and the run's date, every
# request's timestamp is one no other request of the bench sends.
STAMP_LUA = """
local made = 0
function setup(thread)
  thread:set("thread_number", made)
  made = made + 1
end

local sent = 0
function stamped_body()
  local stamp = string.format("%sT%02d:%02d:%02d.%06d+00:00", day, thread_number % 24,
    math.floor(sent / 60000000) % 60, math.floor(sent / 1000000) % 60, sent % 1000000)
  return body_before .. stamp .. body_after
end
"""

UNIQUE_POST_LUA = """
function request()
  sent = sent + 1
  return wrk.format("POST", path, headers, stamped_body())
end
"""

# Odd requests repeat the first POST, even ones send a new body: half and half in each thread,
# whichever of its connections takes them.
PAIR_LUA = """
function request()
  sent = sent + 1
  if sent % 2 == 1 then
    return wrk.format("POST", first_path, headers, first_body)
  end
  return wrk.format("POST", path, headers, stamped_body())
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    """The path of wrk; exits with how to install it when it is missing."""
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(INSTALL_HINT)
    return found


def static_script(headers: dict[str, str], method: str = "GET", body: str | None = None) -> str:
    """A wrk script sending the same request, with `headers`, to the URL wrk is given."""
    lines = [_headers_lua(headers), "wrk.headers = headers", f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    return "\n".join([*lines, REPORT_LUA])


def unique_post_script(path: str, headers: dict[str, str], body: str, placeholder: str,
                       day: str) -> str:
    """A wrk script POSTing `body` to `path`, its `placeholder` replaced by a timestamp unique
    to each request (`day` is this run's date, YYYY-MM-DD)."""
    return "\n".join([_stamped_lua(path, headers, body, placeholder, day), UNIQUE_POST_LUA,
                      REPORT_LUA])


def pair_post_script(first_path: str, first_body: str, path: str, headers: dict[str, str],
                     body: str, placeholder: str, day: str) -> str:
    """A wrk script alternating two POSTs: `first_body` to `first_path` as it is, then `body`
    to `path` with a timestamp unique to each request in place of `placeholder`."""
    return "\n".join([
        _stamped_lua(path, headers, body, placeholder, day),
        f"first_path = {_lua_string(first_path)}", f"first_body = {_lua_string(first_body)}",
        PAIR_LUA, REPORT_LUA,
    ])


def run(wrk: str, url: str, script: str, workdir: Path, *, duration: int, connections: int,
        threads: int, name: str = "load") -> LoadResult:
    """Run wrk against `url` with `script` and return its figures."""
    script_path = workdir / f"{name}.lua"
    script_path.write_text(script)
    completed = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(script_path), url],
        capture_output=True, text=True, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}"
                           f"\n{completed.stdout.strip()}")
    raw = json.loads(lines[-1][len(MARKER):])
    return LoadResult(requests=raw["requests"], seconds=raw["duration_us"] / 1e6,
                      p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
                      errors=raw["socket_errors"] + raw["status_errors"])


def _stamped_lua(path: str, headers: dict[str, str], body: str, placeholder: str,
                 day: str) -> str:
    before, after = body.split(placeholder)
    return "\n".join([
        _headers_lua(headers), f"path = {_lua_string(path)}", f"day = {_lua_string(day)}",
        f"body_before = {_lua_string(before)}", f"body_after = {_lua_string(after)}", STAMP_LUA,
    ])


def _headers_lua(headers: dict[str, str]) -> str:
    # Spaces inside the brackets: "[[[" would open a long string.
    pairs = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
    return f"headers = {{{pairs}}}"


def _lua_string(text: str) -> str:
    # A long bracket takes the text as it is (no escapes); pick a level the text never closes.
    # Lua drops a newline right after the opening bracket: one is put there for it to drop.
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[\n{text}]{'=' * level}]"
