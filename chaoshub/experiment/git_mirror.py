"""A workspace's copy of its linked git repository, through the `git` command.

One bare repository per workspace under GIT_CACHE_DIR, fetched incrementally (the one branch
into `refs/hub/head`; the last synced commit is kept reachable under `refs/hub/synced`, so a
forced push still diffs against it). Git runs with a minimal environment: no system or user
configuration, no prompts, a time limit, only the transports the rules allow. Credentials never
go on a command line: an access token is an `http.extraHeader` given through git's environment
configuration, a deploy key a 0600 file deleted after the command.

URL rules: https and ssh (`ssh://` and `git@host:path`); `http://` only with
ALLOW_PRIVATE_TARGETS, `file://` only with GIT_ALLOW_FILE_URLS (the worker's own disk, other
workspaces' caches on it: never for a hub people share) and never into GIT_CACHE_DIR. Over ssh,
the host keys pinned on the link are the only ones trusted (known by host and port); with none
pinned, the key met is, and the caller pins it. A host is resolved and every address checked
with the webhooks' rules;
for http(s) git connects to the address that was checked (`http.curloptResolve`), so DNS cannot
switch it after the check.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import ipaddress
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from chaoshub.experiment import webhook_targets

HEAD_REF = "refs/hub/head"
SYNCED_REF = "refs/hub/synced"
URL_MAX = 2000
BRANCH_MAX = 200
# git@host:path, the scp-like form of an ssh URL (no scheme, a colon before any slash).
SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
ERROR_MAX = 500
MESSAGE_MAX = 2000  # a commit message, as a version keeps it
NAME_MAX = 250  # an author's name or email


class GitError(Exception):
    """Git failed; the message is safe to show (no token, no URL user information)."""


@dataclass
class Access:
    """How to reach a repository: its URL and credentials (never logged, never shown)."""

    url: str
    allow_private: bool = False
    allow_file: bool = False  # file:// URLs: the worker's own disk (GIT_ALLOW_FILE_URLS)
    token: str | None = None
    deploy_key: str | None = None  # the private half, OpenSSH format
    timeout: float = 120.0
    # The ssh host keys pinned on the link ("ssh-ed25519 AAAA...", host and port apart): ssh
    # trusts these alone; none: it trusts the key it meets (then in `seen_host_keys`).
    host_keys: list[str] = field(default_factory=list)
    seen_host_keys: list[str] = field(default_factory=list)
    max_fetch_bytes: int = 0  # 0: no limit
    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.token:
            self.secrets += [self.token, _basic(self.token)]
        if self.deploy_key:
            self.secrets.append(self.deploy_key)


@dataclass
class CommitInfo:
    """A commit as a sync records it."""

    sha: str
    author_name: str
    author_email: str
    message: str
    committed_at: datetime


# URLs -----------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where a URL leads: its scheme ("https", "http", "ssh", "file"), host and port."""

    scheme: str
    host: str = ""
    port: int = 0
    user: str = ""
    path: str = ""  # a file:// URL's


def _inside(path: Path, folder: Path) -> bool:
    """True when `path` is `folder` or under it, once both are resolved (.., links)."""
    try:
        found, root = path.resolve(), folder.resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL: no path to allow
        return True
    return found == root or root in found.parents


def url_problem(url: object, allow_private: bool, allow_file: bool = False,
                cache_dir: Path | None = None) -> str | None:
    """What makes `url` no repository the hub may fetch, as far as can be told without
    resolving it; None: none. `file://` URLs only with `allow_file` (GIT_ALLOW_FILE_URLS),
    and never one inside `cache_dir` (the hub's copies of every workspace's repository)."""
    if not isinstance(url, str) or not url or len(url) > URL_MAX or url.strip() != url:
        return f"a URL of 1 to {URL_MAX} characters"
    if any(ord(c) < 32 or c.isspace() for c in url) or url.startswith("-"):
        return "not a URL"
    try:
        target = parse(url)
    except ValueError as exc:
        return str(exc)
    if target.scheme == "file":
        if not allow_file:
            return ("an https:// or ssh:// URL: file:// URLs are for the hub's tests only "
                    "(GIT_ALLOW_FILE_URLS)")
        if cache_dir is not None and _inside(Path(target.path), Path(cache_dir)):
            return "not a file:// URL inside the hub's copies of repositories (GIT_CACHE_DIR)"
        return None
    if target.scheme == "http" and not allow_private:
        return "an https:// or ssh:// URL (plain http:// is not allowed here)"
    host = target.host.rstrip(".").lower()
    # The webhooks' rules on the host as an http(s) URL would name it.
    return webhook_targets.url_problem(f"https://{_bracketed(host)}/", allow_private)


def parse(url: str) -> Target:
    """The scheme, host and port of a repository URL; ValueError saying what is wrong."""
    found = SCP_LIKE.match(url)
    if found and "://" not in url:
        return _no_option(Target("ssh", found["host"], 22, found["user"]), found["path"])
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise ValueError("not a URL") from exc
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError("a file:// URL names a local path")
        return Target("file", path=unquote(parts.path))
    if scheme not in ("https", "http", "ssh"):
        raise ValueError("an https:// or ssh:// URL (or git@host:path)")
    if not host:
        raise ValueError("a URL with a host")
    if parts.password is not None or (parts.username is not None and scheme != "ssh"):
        return _refused("a URL without a user name or password in it (send a token instead)")
    if not parts.path or parts.path == "/":
        raise ValueError("a URL naming a repository (its path)")
    default = {"https": 443, "http": 80, "ssh": 22}[scheme]
    return _no_option(Target(scheme, host, port or default, parts.username or ""),
                      parts.path.lstrip("/"))


def _refused(message: str) -> Target:
    raise ValueError(message)


def _no_option(target: Target, path: str) -> Target:
    """`target`, unless a part of it would reach ssh or the remote git as an option."""
    if any(part.startswith("-") for part in (target.host, target.user, path)):
        raise ValueError("a URL whose host, user and path do not start with -")
    return target


def shown_url(url: str) -> str:
    """The URL with any user information removed (what errors may say)."""
    return re.sub(r"(://)[^/@\s]*@", r"\1", url)


def branch_problem(branch: object) -> str | None:
    """What makes `branch` no branch name; None: none."""
    if not isinstance(branch, str) or not branch or len(branch) > BRANCH_MAX:
        return f"a branch name of 1 to {BRANCH_MAX} characters"
    if branch.startswith("-") or branch.startswith("refs/"):
        return "a branch's short name (main, release/1.2)"
    # git check-ref-format's rules, without a process in the request.
    bad = (any(ord(c) < 33 or ord(c) == 127 or c in "~^:?*[\\" for c in branch)
           or ".." in branch or "@{" in branch or "//" in branch or branch == "@"
           or branch.endswith(("/", ".", ".lock"))
           or any(part.startswith(".") or part.endswith(".lock") for part in branch.split("/")))
    return "not a valid branch name" if bad else None


# Globs ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _tokens(glob: str) -> tuple[tuple[str, object], ...]:
    """The parts of a path glob: `*` and `?` stay within a folder, `**` spans folders
    (`chaos/**/*.json` matches chaos/a.json and chaos/x/y/a.json), `[...]` a set; re.error
    when a set is not valid."""
    out: list[tuple[str, object]] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            if not out or out[-1][0] != "folders":  # **/**/ is **/
                out.append(("folders", None))
            i += 3
        elif glob.startswith("**", i):
            out.append(("all", None))
            i += 2
        elif c == "*":
            out.append(("star", None))
            i += 1
        elif c == "?":
            out.append(("one", None))
            i += 1
        elif c == "[" and (end := glob.find("]", i + 2)) != -1:
            inner = glob[i + 1:end]
            negate = inner[:1] in ("!", "^")
            inner = inner[1:] if negate else inner
            # One character against one class: no backtracking however the glob is made.
            out.append(("set", re.compile("[" + ("^" if negate else "")
                                          + inner.replace("\\", "\\\\") + "]")))
            i = end + 1
        else:
            out.append(("char", c))
            i += 1
    return tuple(out)


def _closure(tokens: tuple[tuple[str, object], ...], states: set[int]) -> set[int]:
    """`states` with those reached without reading a character (past `*`, `**`, `**/`)."""
    stack = list(states)
    while stack:
        state = stack.pop()
        if 0 <= state < len(tokens) and tokens[state][0] in ("star", "all", "folders") \
                and state + 1 not in states:
            states.add(state + 1)
            stack.append(state + 1)
    return states


def glob_matches(glob: str, path: str) -> bool:
    """True when `path` matches `glob`, in time linear in the path's length (the glob's
    parts are followed all at once, as a set of states, never by backtracking)."""
    tokens = _tokens(glob)
    end = len(tokens)
    states = _closure(tokens, {0})
    for c in path:
        following: set[int] = set()
        for state in states:
            if state < 0:  # inside a `**/`: any characters, then a slash ends it
                following.add(state)
                if c == "/":
                    following.add(~state + 1)
                continue
            if state == end:
                continue
            kind, arg = tokens[state]
            if kind == "char":
                if c == arg:
                    following.add(state + 1)
            elif kind == "one":
                if c != "/":
                    following.add(state + 1)
            elif kind == "star":
                if c != "/":
                    following.add(state)
            elif kind == "all":
                following.add(state)
            elif kind == "folders":
                following.add(~state)
                if c == "/":
                    following.add(state + 1)
            elif arg.match(c):  # a set
                following.add(state + 1)
        if not following:
            return False
        states = _closure(tokens, following)
    return end in states


def glob_problem(glob: object) -> str | None:
    """What makes `glob` no path glob; None: none."""
    if not isinstance(glob, str) or not glob or len(glob) > 500:
        return "a path glob of 1 to 500 characters (chaos/**/*.json)"
    if glob.startswith("/") or any(ord(c) < 32 for c in glob):
        return "a path relative to the repository's root"
    try:
        _tokens(glob)
    except re.error:
        return "not a valid glob"
    return None


def matches(path: str, globs: list[str]) -> bool:
    """True when `path` matches one of `globs`."""
    return any(glob_matches(g, path) for g in globs)


# Git ------------------------------------------------------------------------------------------


def fetch(folder: Path, access: Access, branch: str) -> str:
    """Fetch `branch` of the repository into the cache `folder` (made when missing); the sha
    of its head commit."""
    folder = Path(folder)
    # The hub's account alone reads the copies (private repositories, ssh's known hosts).
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)  # one made before, by a looser umask
    # Host keys were once trusted per worker, here; the link's pinned ones alone count now.
    (folder / "known_hosts").unlink(missing_ok=True)
    if not (folder / "HEAD").exists():
        _git(folder, access, ["init", "--quiet", "--bare", str(folder)], remote=False)
    target = parse(access.url)
    refspec = f"+refs/heads/{branch}:{HEAD_REF}"
    _git(folder, access, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                          "--", access.url, refspec], remote=True, target=target)
    return resolve(folder, access, HEAD_REF)


def resolve(folder: Path, access: Access, ref: str) -> str:
    """The commit sha a ref (or sha) names; GitError when none."""
    out = _git(folder, access, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    return out.decode().strip()


def has_commit(folder: Path, sha: str | None) -> bool:
    """True when the cache holds commit `sha`."""
    if not sha or not SHA.match(sha):
        return False
    done = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=folder,
                          env=_base_env(str(folder)), capture_output=True, timeout=30)
    return done.returncode == 0


def keep(folder: Path, access: Access, sha: str) -> None:
    """Keep commit `sha` reachable (the last synced one: a forced push must not lose it)."""
    _git(folder, access, ["update-ref", SYNCED_REF, sha])


def changes(folder: Path, access: Access, old: str, new: str) -> list[tuple[str, str]]:
    """The paths that differ between two commits, each with its status ("A", "M", "D", "T"):
    no ancestry needed (a forced push diffs too), renames as a delete and an add."""
    out = _git(folder, access, ["diff", "--name-status", "--no-renames", "-z", old, new, "--"])
    fields = out.split(b"\0")
    found = []
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        if status and path:
            found.append((status.decode("ascii", "replace")[0], _shown_path(path)))
    return found


@dataclass(frozen=True)
class Entry:
    """A path in a commit's tree: `kind` says whether it is a file ("file"), a symbolic link
    ("link") or a submodule ("submodule"); `utf8` False when its name is not UTF-8 (then
    `path` shows its other bytes as \\xNN, and it cannot be read by that path)."""

    path: str
    kind: str
    utf8: bool = True
    sha: str = ""  # its object: a blob (a file's, a link's), a commit (a submodule's)


def tree(folder: Path, access: Access, sha: str) -> list[Entry]:
    """Every path at commit `sha` (files, symbolic links and submodules)."""
    out = _git(folder, access, ["ls-tree", "-r", "-z", "--full-tree", sha])
    found = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw = record.partition(b"\t")
        mode, _, rest = meta.partition(b" ")
        kind = {b"120000": "link", b"160000": "submodule"}.get(mode, "file")
        sha = rest.partition(b" ")[2].decode("ascii", "replace")
        try:
            raw.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        found.append(Entry(_shown_path(raw), kind, utf8, sha))
    return found


def files(folder: Path, access: Access, sha: str) -> list[str]:
    """Every path at commit `sha`."""
    return [entry.path for entry in tree(folder, access, sha)]


def _shown_path(raw: bytes) -> str:
    # A name git keeps as bytes: what is not UTF-8 shows as \xNN, never a lone surrogate (no
    # database or JSON takes those).
    return raw.decode("utf-8", "backslashreplace")


def blobs(folder: Path, access: Access, shas: list[str], max_bytes: int
          ) -> dict[str, bytes | int]:
    """The content of each blob (by its sha), or its size when larger than `max_bytes`: two
    git processes however many blobs (their sizes, then the contents of those small enough)."""
    wanted = list(dict.fromkeys(s for s in shas if SHA.match(s)))
    if not wanted:
        return {}
    out = _git(folder, access, ["cat-file", "--batch-check=%(objectname) %(objectsize)"],
               input="".join(f"{s}\n" for s in wanted).encode())
    found: dict[str, bytes | int] = {}
    for line in out.decode("ascii", "replace").splitlines():
        sha, _, size = line.partition(" ")
        if size.isdigit():
            found[sha] = int(size)
    small = [s for s in wanted if isinstance(found.get(s), int) and found[s] <= max_bytes]
    for sha, _, content in _batch(folder, access, small):
        found[sha] = content
    return found


def _batch(folder: Path, access: Access, shas: list[str]) -> list[tuple[str, str, bytes]]:
    """Each object's sha, type and content, from one `git cat-file --batch`."""
    if not shas:
        return []
    out = _git(folder, access, ["cat-file", "--batch"],
               input="".join(f"{s}\n" for s in shas).encode())
    found, at = [], 0
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].decode("ascii", "replace").split(" ")
        at = end + 1
        if len(header) != 3:  # "<sha> missing"
            continue
        size = int(header[2])
        found.append((header[0], header[1], out[at:at + size]))
        at += size + 1
    return found


def last_commits(folder: Path, access: Access, head: str, paths: list[str],
                 since: str | None = None) -> dict[str, CommitInfo]:
    """The last commit up to `head` (not reachable from `since`, when given) that changed each
    of `paths`, as `git log -1 -- path` finds it; a path none changed is left out. Three git
    processes however many paths: one log, one read of the commits (and the head's)."""
    if not paths:
        return {}
    span = [head, f"^{since}"] if since else [head]
    out = _git(folder, access, ["log", "-z", "--name-only", "--no-renames", "--cc",
                                "--format=/%H", *span, "--",
                                *(_literal(p) for p in paths)])
    wanted, last, sha, heading = set(paths), {}, None, False
    for token in out.split(b"\0"):
        if _LOG_HEADER.match(token):
            sha, heading = token.strip(b"\n")[1:].decode("ascii"), True
            continue
        if heading and token.startswith(b"\n"):
            token = token[1:]
        heading = False
        path = _shown_path(token)
        if sha is not None and path in wanted and path not in last:
            last[path] = sha
    commits = {sha: _parsed_commit(sha, raw) for sha, kind, raw in
               _batch(folder, access, list(dict.fromkeys(last.values()))) if kind == "commit"}
    return {path: commits[sha] for path, sha in last.items() if sha in commits}


_LOG_HEADER = re.compile(rb"^\n?/[0-9a-f]{40}([0-9a-f]{24})?$")


def _parsed_commit(sha: str, raw: bytes) -> CommitInfo:
    """A commit object as `git log --format=%H%x00%an%x00%ae%x00%ct%x00%B` shows it."""
    head, _, message = raw.partition(b"\n\n")
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        if line and not line.startswith(b" "):  # a header's continuation (a signature)
            key, _, value = line.partition(b" ")
            fields.setdefault(key, value)
    encoding = fields.get(b"encoding", b"utf-8").decode("ascii", "replace")
    try:
        text = message.decode(encoding, "replace")
    except LookupError:
        text = message.decode("utf-8", "replace")
    name, email, _ = _ident(fields.get(b"author", b""))
    when = _ident(fields.get(b"committer", b""))[2]
    return CommitInfo(sha=sha, author_name=_short(name, NAME_MAX),
                      author_email=_short(email, NAME_MAX),
                      message=_short(text.strip(), MESSAGE_MAX),
                      committed_at=datetime.fromtimestamp(when, UTC))


def _ident(value: bytes) -> tuple[str, str, int]:
    """The name, email and time of an author or committer line ("Name <email> 123 +0000")."""
    text = value.decode("utf-8", "replace")
    who, _, rest = text.rpartition(">")
    name, _, email = who.partition("<")
    stamp = rest.split()
    return name.strip(), email, int(stamp[0]) if stamp and stamp[0].isdigit() else 0


def commit_info(folder: Path, access: Access, sha: str, path: str | None = None
                ) -> CommitInfo:
    """A commit's sha, author, message and time; with `path`, those of the last commit up to
    `sha` that changed that file."""
    args = ["log", "-1", "--format=%H%x00%an%x00%ae%x00%ct%x00%B", sha]
    out = _git(folder, access, [*args, "--", _literal(path)] if path else args)
    if not out.strip():
        out = _git(folder, access, args)
    return _commit(out)


def _literal(path: str) -> str:
    # A file's own name, never pathspec magic (a file may be named ":(glob)**").
    return f":(literal){path}"


def _commit(out: bytes) -> CommitInfo:
    sha_, name, email, when, message = out.decode("utf-8", "replace").split("\0", 4)
    # Kept as a version's message is: a commit may say megabytes, NULs included.
    return CommitInfo(sha=sha_.strip(), author_name=_short(name, NAME_MAX),
                      author_email=_short(email, NAME_MAX),
                      message=_short(message.strip(), MESSAGE_MAX),
                      committed_at=datetime.fromtimestamp(int(when), UTC))


def _short(text: str, limit: int) -> str:
    return text.replace("\0", "")[:limit]


def _git(folder: Path, access: Access, args: list[str], remote: bool = False,
         target: Target | None = None, input: bytes | None = None) -> bytes:
    home = tempfile.mkdtemp(prefix="chaoshub-git-")
    try:
        env = _base_env(home)
        config = _transports(access.allow_private, access.allow_file)
        if remote:
            config += [("http.followRedirects", "false"), ("http.lowSpeedLimit", "1000"),
                       ("http.lowSpeedTime", "30"),
                       # One pack file, never loose objects: its size is what the limit bounds.
                       ("fetch.unpackLimit", "1")]
            if access.token:
                config.append(("http.extraHeader",
                               f"Authorization: Basic {_basic(access.token)}"))
            if target is not None and target.scheme in ("http", "https"):
                address = _checked_address(target.host, target.port, access.allow_private)
                config.append(("http.curloptResolve", f"{_ascii(target.host)}:{target.port}:"
                                                      f"{_bracketed(address)}"))
            if target is not None and target.scheme == "ssh":
                address = _checked_address(target.host, target.port, access.allow_private)
                env["GIT_SSH_COMMAND"] = _ssh_command(home, access, target, address)
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        try:
            done = _run(["git", *args], folder if folder.exists() else None, env,
                        access.timeout, access.max_fetch_bytes if remote else 0, input)
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} took longer than {access.timeout:g} s") from exc
        except FileNotFoundError as exc:
            raise GitError("the git command is not installed where this worker runs") from exc
        except OSError as exc:
            raise GitError(f"git could not start: {exc.strerror}") from exc
        ssh = remote and target is not None and target.scheme == "ssh"
        if done.returncode != 0 and remote and access.max_fetch_bytes and \
                b"File too large" in done.stderr:
            raise GitError(f"the fetch is larger than {access.max_fetch_bytes} bytes "
                           "(GIT_FETCH_MAX_BYTES)")
        if done.returncode != 0:
            if ssh and access.host_keys and b"Host key verification failed" in done.stderr:
                raise GitError(_changed_host_key(access, target))
            raise GitError(failure(access, args[0], done.stderr, done.returncode))
        if ssh:
            access.seen_host_keys = _known_keys(Path(home) / "known_hosts")
        return done.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run(command: list[str], cwd: Path | None, env: dict[str, str], timeout: float,
         max_file_bytes: int = 0, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run git in a process group of its own: past `timeout`, the whole group is killed (git's
    ssh and remote helpers too, which would otherwise live on, connected). With
    `max_file_bytes`, git and what it starts write no file larger."""
    stdin = subprocess.DEVNULL if input is None else subprocess.PIPE
    with subprocess.Popen(command, cwd=cwd, env=env, stdin=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True,
                          # SIGXFSZ left ignored, as Python has it: a write past the limit
                          # fails ("File too large") and git says so.
                          restore_signals=not max_file_bytes) as process:
        if max_file_bytes:
            # Set before git has negotiated anything, so before it writes a pack; inherited by
            # the index-pack it starts.
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(process.pid, resource.RLIMIT_FSIZE,
                                 (max_file_bytes, max_file_bytes))
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        return subprocess.CompletedProcess(command, process.returncode, out, err)


def clean(access: Access, message: str) -> str:
    """`message` without the access's secrets or any URL user information."""
    return _redacted(access, message)[:ERROR_MAX]


def _redacted(access: Access, message: str) -> str:
    for secret in access.secrets:
        if secret:
            message = message.replace(secret, "***")
    return shown_url(message)


# What git and ssh print around the cause of a failure, saying nothing of it (ssh's banner
# about a changed host key, the paths of files in git's private home, the usual advice).
BOILERPLATE = ("Warning: Permanently added", "IT IS POSSIBLE THAT SOMEONE",
               "Someone could be eavesdropping", "It is also possible that a host key",
               "The fingerprint for the", "SHA256:", "Please contact your system administrator",
               "Add correct host key in", "Offending ", "Please make sure you have the correct",
               "and the repository exists", "hint:")


def failure(access: Access, command: str, stderr: bytes, returncode: int) -> str:
    """What a failed git command says, in ERROR_MAX characters: the lines that say what
    failed (banners and advice left out; the last ones when too many), without secrets."""
    lines = []
    for raw in stderr.decode("utf-8", "replace").splitlines():
        line = raw.strip().strip("@").strip()
        if line and not line.startswith(BOILERPLATE):
            # Secrets out before any cut: a cut must never leave part of one in view.
            lines.append(_redacted(access, line))
    head = f"git {command} failed: "
    budget = ERROR_MAX - len(head)
    kept: list[str] = []
    for line in reversed(lines):
        if len("; ".join([line, *kept])) > budget - 3:  # room for "…; "
            if not kept:
                kept = [line[:budget - 4] + "…"]
            break
        kept.insert(0, line)
    said = ("…; " if len(kept) < len(lines) else "") + "; ".join(kept)
    return (head + (said or str(returncode)))[:ERROR_MAX]


def _base_env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true",
            "GIT_PROTOCOL_FROM_USER": "0", "GIT_NO_REPLACE_OBJECTS": "1"}


def _transports(allow_private: bool, allow_file: bool) -> list[tuple[str, str]]:
    allowed = ["https", "ssh"] + (["http"] if allow_private else []) + (
        ["file"] if allow_file else [])
    return [("protocol.allow", "never"),
            *((f"protocol.{name}.allow", "always") for name in allowed)]


def _ssh_command(home: str, access: Access, target: Target, address: str) -> str:
    """ssh to the checked address, trusting the link's pinned host keys alone (the first key
    it meets when none is pinned), known by host and port, with the deploy key from a 0600
    file in the private home (removed with it)."""
    known = Path(home) / "known_hosts"
    name = known_hosts_name(target.host, target.port)
    known.write_text("".join(known_hosts_line(target.host, target.port, key) + "\n"
                             for key in access.host_keys))
    checking = "yes" if access.host_keys else "accept-new"
    parts = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"StrictHostKeyChecking={checking}", "-o", f"UserKnownHostsFile={known}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "CheckHostIP=no",
             "-o", "HashKnownHosts=no", "-o", "UpdateHostKeys=no",
             "-o", f"HostKeyAlias={name}", "-o", f"HostName={address}",
             "-o", "ConnectTimeout=15"]
    if access.deploy_key:
        key = Path(home) / "deploy_key"
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(access.deploy_key if access.deploy_key.endswith("\n")
                      else access.deploy_key + "\n")
        parts += ["-i", str(key)]
    return " ".join(_quoted(p) for p in parts)


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts names a host: `host`, or `[host]:port` for a port other than 22."""
    host = _ascii(host).lower()
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_line(host: str, port: int, key: str) -> str:
    """A known_hosts line trusting `key` ("ssh-ed25519 AAAA...") for `host` at `port`."""
    return f"{known_hosts_name(host, port)} {key}"


def _known_keys(path: Path) -> list[str]:
    """The keys ("type base64") of a known_hosts file ssh wrote, host names left out."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and not line.startswith(("#", "@")):
            found.append(f"{fields[1]} {fields[2]}")
    return list(dict.fromkeys(found))


def fingerprint(key: str) -> str:
    """A public key's SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _changed_host_key(access: Access, target: Target) -> str:
    pinned = ", ".join(f"{k.split()[0]} {fingerprint(k)}" for k in access.host_keys)
    return (f"the ssh host key of {known_hosts_name(target.host, target.port)} is not the one "
            f"pinned on the repository link ({pinned}). If the host's key was changed on "
            "purpose (ask its administrators), forget the pinned key (the Repository page's "
            "button, or PUT the link with \"forget_host_key\": true) and sync again: the next "
            "sync trusts the key it meets. Otherwise another host may be answering there.")


def _quoted(part: str) -> str:
    return part if re.fullmatch(r"[A-Za-z0-9_./=:,@+-]+", part) else "'" + part.replace(
        "'", "'\\''") + "'"


def _checked_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: every address `host` resolves to must pass."""
    host = host.strip("[]")
    try:
        found = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(_ascii(host), port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise GitError(f"{host} does not resolve") from exc
        found = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not found:
        raise GitError(f"{host} does not resolve")
    for address in found:
        problem = webhook_targets.address_problem(address, allow_private)
        if problem:
            raise GitError(f"{host} resolves to a refused address ({problem})")
    return str(found[0])


def _ascii(host: str) -> str:
    try:
        return host.strip("[]").encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()
