"""Real git servers on 127.0.0.1 for tests, and repositories to serve.

`git_http_server(root)` runs git's own smart-HTTP server program (`git http-backend`, as CGI)
behind a small threaded HTTP server, optionally asking for a token (HTTP Basic, the token as
password); `git_daemon(root)` runs `git daemon` (git://). Both serve every bare repository
under `root`. `ssh_server(folder)` runs OpenSSH's sshd (Debian's openssh-server) with a
configuration and host key of its own, letting in the current user with the public keys a test
authorizes: git reaches any repository by its absolute path (`git-upload-pack` through the
user's shell, as on any ssh host). `Repository` makes one: a bare repository under the served
root plus a working copy next to it, where a test commits files with a given author and
message, pushes, and rewrites history (a forced push).

    with git_http_server(tmp_path / "served", token="s3cret") as server:
        repo = Repository.create(server.root, "experiments")
        sha = repo.commit({"chaos/a.json": "{}"}, "Add a", author=("Ann", "ann@example.com"))
        repo.push()
        url = server.url_for("experiments")        # http://127.0.0.1:PORT/experiments.git
        # ...clone with http://x-access-token:s3cret@127.0.0.1:PORT/experiments.git
"""

from __future__ import annotations

import base64
import binascii
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
DEFAULT_AUTHOR = ("Test Author", "author@example.com")
DEFAULT_COMMITTER = ("Test Committer", "committer@example.com")
_CHUNK = 64 * 1024


def git_env(home: Path, author: tuple[str, str] = DEFAULT_AUTHOR,
            committer: tuple[str, str] = DEFAULT_COMMITTER, **extra: str) -> dict[str, str]:
    """A minimal, fixed environment for the `git` command: no system or user configuration
    (HOME is `home`), never a prompt, the given author and committer, plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C", "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1],
    }
    env.update(extra)
    return env


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `git args...` (text output captured); raises with git's own message on failure."""
    result = subprocess.run(["git", *args], cwd=cwd, env=dict(env) if env else None,
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


# --- repositories --------------------------------------------------------------------------


@dataclass
class Repository:
    """A bare repository (`bare`, what the servers serve) and a working copy (`work`) whose
    `main` branch pushes to it."""

    name: str
    bare: Path
    work: Path
    home: Path
    branch: str = "main"

    @classmethod
    def create(cls, root: Path, name: str, branch: str = "main") -> Repository:
        """A new empty repository `name` served from `root` (`root/name.git`), its working
        copy beside `root` (`root.parent/work/name`)."""
        root.mkdir(parents=True, exist_ok=True)
        bare = root / f"{name}.git"
        work = root.parent / "work" / name
        home = root.parent / "home"
        repo = cls(name=name, bare=bare, work=work, home=home, branch=branch)
        env = repo.env()
        git("init", "--bare", "-q", "-b", branch, str(bare), env=env)
        work.mkdir(parents=True)
        git("init", "-q", "-b", branch, env=env, cwd=work)
        git("remote", "add", "origin", str(bare), env=env, cwd=work)
        return repo

    def env(self, author: tuple[str, str] = DEFAULT_AUTHOR,
            committer: tuple[str, str] | None = None) -> dict[str, str]:
        """The git environment of this repository's commands, with `author`."""
        return git_env(self.home, author=author, committer=committer or DEFAULT_COMMITTER)

    @property
    def file_url(self) -> str:
        """The bare repository as a file:// URL."""
        return self.bare.resolve().as_uri()

    def commit(self, files: Mapping[str, str | bytes | None], message: str,
               author: tuple[str, str] = DEFAULT_AUTHOR, date: str | None = None) -> str:
        """Write `files` (path -> text or bytes; None removes the file) in the working copy,
        commit them all with `message` by `author` (at `date`, git's format, if given); the
        new commit's sha."""
        env = self.env(author)
        if date:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        for path, content in files.items():
            target = self.work / path
            if content is None:
                git("rm", "-q", "--", path, cwd=self.work, env=env)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            git("add", "--", path, cwd=self.work, env=env)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work, env=env)
        return self.head()

    def head(self) -> str:
        """The working copy's current commit sha."""
        return git("rev-parse", "HEAD", cwd=self.work, env=self.env()).stdout.strip()

    def served_head(self) -> str:
        """The sha the served (bare) repository's branch points at."""
        return git("rev-parse", f"refs/heads/{self.branch}", cwd=self.bare,
                   env=self.env()).stdout.strip()

    def push(self, force: bool = False) -> None:
        """Push the working copy's branch to the served repository (`force` for rewritten
        history)."""
        args = ["push", "-q", *(["--force"] if force else []), "origin",
                f"{self.branch}:{self.branch}"]
        git(*args, cwd=self.work, env=self.env())

    def reset(self, to: str) -> None:
        """Move the working copy's branch to `to` (a sha or `HEAD~n`), dropping later commits."""
        git("reset", "-q", "--hard", to, cwd=self.work, env=self.env())

    def rewrite(self, back: int, files: Mapping[str, str | bytes | None], message: str,
                author: tuple[str, str] = DEFAULT_AUTHOR) -> str:
        """Rewrite history: drop the last `back` commits, commit `files` instead and force-push;
        the new head's sha (the old commits are then gone from the served branch)."""
        self.reset(f"HEAD~{back}")
        sha = self.commit(files, message, author=author)
        self.push(force=True)
        return sha


# --- smart HTTP (git http-backend as CGI) -------------------------------------------------


@dataclass
class Request:
    """One request the HTTP server answered."""

    method: str
    path: str
    user: str | None  # the Basic user name given, if any
    status: int
    chunked: bool = False  # the body came with Transfer-Encoding: chunked


@dataclass
class GitHttpServer:
    """A running smart-HTTP git server: `url` (no trailing slash), the `root` it serves, the
    `token` it asks for (None: anyone), and what it answered so far."""

    root: Path
    url: str
    token: str | None
    receive_pack: bool
    requests: list[Request] = field(default_factory=list)
    challenged: int = 0  # 401s to requests without credentials (git's first try)
    auth_failures: int = 0  # 401s to requests with wrong credentials
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, name: str, token: str | None = None, user: str = "x-access-token") -> str:
        """The clone URL of repository `name`, with `user:token@` in it if `token` is given."""
        if token is None:
            return f"{self.url}/{name}.git"
        host = self.url.removeprefix("http://")
        return f"http://{user}:{token}@{host}/{name}.git"

    @property
    def request_count(self) -> int:
        """How many requests the server answered so far."""
        with self.lock:
            return len(self.requests)

    def _record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)
            if request.status == 401:
                if request.user is None:
                    self.challenged += 1
                else:
                    self.auth_failures += 1

    def reset_counts(self) -> None:
        """Forget the requests answered so far."""
        with self.lock:
            self.requests.clear()
            self.challenged = self.auth_failures = 0


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    user, _, password = decoded.partition(":")
    return user, password


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the answer ends when the connection closes, so the CGI's output streams
        # through as it comes, without a length or chunks.
        protocol_version = "HTTP/1.0"

        def do_GET(self):  # noqa: N802 (http.server's name)
            self._serve()

        def do_POST(self):  # noqa: N802
            self._serve()

        def log_message(self, *args):
            pass

        def _serve(self) -> None:
            credentials = _basic_credentials(self.headers.get("Authorization"))
            user = credentials[0] if credentials else None
            if server.token is not None and (credentials is None
                                             or credentials[1] != server.token):
                self._drain()
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "13")
                self.end_headers()
                self.wfile.write(b"Unauthorized\n")
                server._record(Request(self.command, self.path, user, 401))
                return
            status = self._cgi(user)
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            server._record(Request(self.command, self.path, user, status, chunked))

        def _drain(self) -> None:
            # Read what the client sent so that it sees the 401, not a reset connection.
            for _ in self._body():
                pass

        def _body(self) -> Iterator[bytes]:
            """The request body as it arrives (Content-Length or chunked)."""
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return
                    yield self.rfile.read(size)
                    self.rfile.readline()  # the chunk's CRLF
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

        def _cgi(self, user: str | None) -> int:
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "HOME": str(server.root),
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": str(self.server.server_address[1]),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            }
            if self.headers.get("Content-Length") and \
                    self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                env["CONTENT_LENGTH"] = self.headers["Content-Length"]
            for name in ("Content-Encoding", "Git-Protocol", "Accept"):
                if self.headers.get(name):
                    env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
            if user is not None:
                env["REMOTE_USER"] = user
            if server.receive_pack:
                # http-backend refuses pushes from anonymous users unless the repository says
                # otherwise; configuration by environment keeps the served repositories plain.
                env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.receivepack",
                           GIT_CONFIG_VALUE_0="true")
            process = subprocess.Popen([HTTP_BACKEND], env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

            def feed():
                try:
                    for chunk in self._body():
                        process.stdin.write(chunk)
                except (BrokenPipeError, OSError):
                    pass
                finally:
                    try:
                        process.stdin.close()
                    except OSError:
                        pass

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            status, headers = 200, []
            while True:
                line = process.stdout.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                value = value.strip()
                if name.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((name, value))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            try:
                while chunk := process.stdout.read1(_CHUNK):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            feeder.join(timeout=30)
            process.stdout.close()
            process.wait(timeout=30)
            return status

    return Handler


@contextmanager
def git_http_server(root: Path, token: str | None = None,
                    receive_pack: bool = True) -> Iterator[GitHttpServer]:
    """A smart-HTTP git server on 127.0.0.1 (a free port) serving the bare repositories under
    `root` for the block; with `token`, every request needs HTTP Basic credentials whose
    password is the token (any user name, e.g. `x-access-token`), others get 401 with
    `WWW-Authenticate: Basic`. `receive_pack=False` refuses pushes."""
    root.mkdir(parents=True, exist_ok=True)
    state = GitHttpServer(root=root, url="", token=token, receive_pack=receive_pack)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True,
                              name="git-http-server")
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# --- git daemon (git://) ----------------------------------------------------------------


@dataclass
class GitDaemon:
    """A running `git daemon`: `url` (git://127.0.0.1:PORT) and the `root` it serves."""

    root: Path
    url: str

    def url_for(self, name: str) -> str:
        """The clone URL of repository `name`."""
        return f"{self.url}/{name}.git"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def git_daemon(root: Path, receive_pack: bool = False) -> Iterator[GitDaemon]:
    """`git daemon` on 127.0.0.1 (a free port) exporting every repository under `root` for
    the block (`receive_pack=True` also takes pushes)."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={root}",
            "--listen=127.0.0.1", f"--port={port}",
            *(["--enable=receive-pack"] if receive_pack else []), str(root)]
    log = root.parent / f"git-daemon-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=git_env(root.parent / "daemon-home"),
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"git daemon did not start:\n{log.read_text()}") from None
                time.sleep(0.05)
        yield GitDaemon(root=root, url=f"git://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def clone(url: str, into: Path, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`git clone url into` with the fixed test environment (never prompts)."""
    if into.exists():
        shutil.rmtree(into)
    return git("clone", "-q", url, str(into), env=git_env(home), check=check)


# --- ssh --------------------------------------------------------------------------------------

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    """An sshd on 127.0.0.1:`port` letting `user` in with the keys in `authorized_keys`."""

    port: int
    user: str
    authorized_keys: Path
    host_public_key: str  # "ssh-ed25519 AAAA..."
    log: Path
    folder: Path
    process: subprocess.Popen | None = None

    def url_for(self, repo: Repository) -> str:
        """The ssh:// URL of a repository, by its bare copy's absolute path."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo.bare.resolve()}"

    def authorize(self, public_key: str) -> None:
        """Let in whoever holds the private half of `public_key` (an OpenSSH public key line)."""
        with open(self.authorized_keys, "a") as out:
            out.write(public_key.strip() + "\n")

    def new_host_key(self) -> str:
        """Restart sshd on the same port with a fresh host key (as a host whose key changed,
        or another host at its address, would be); the new public key line."""
        _stop(self.process)
        self.host_public_key = _host_key(self.folder)
        self.process = _start_sshd(self.folder, self.port, self.log)
        return self.host_public_key


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """sshd on 127.0.0.1 (a free port) for the block, its files under `folder`: a fresh ed25519
    host key, an empty authorized_keys, keys only (no password, no PAM). Runs as the current
    user: as root it lets root in (`PermitRootLogin prohibit-password`), else that user alone.
    FileNotFoundError when sshd is not installed."""
    if not os.access(SSHD, os.X_OK):
        raise FileNotFoundError(f"{SSHD} (Debian's openssh-server) is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    public = _host_key(folder)
    keys = folder / "authorized_keys"
    keys.write_text("")
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}", "PidFile none",
        f"AuthorizedKeysFile {keys}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
        "AllowTcpForwarding no", "X11Forwarding no", "PrintMotd no", ""]))
    if os.geteuid() == 0:
        # The privilege separation folder sshd wants when it starts as root.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = _free_port()
    log = folder / "sshd.log"
    server = SshServer(port=port, user=pwd.getpwuid(os.geteuid()).pw_name,
                       authorized_keys=keys, host_public_key=public, log=log, folder=folder)
    try:
        server.process = _start_sshd(folder, port, log)
        yield server
    finally:
        _stop(server.process)


def _host_key(folder: Path) -> str:
    """A fresh ed25519 host key in `folder`/host_key; its public key line."""
    for name in ("host_key", "host_key.pub"):
        (folder / name).unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f",
                    str(folder / "host_key")], check=True, capture_output=True, timeout=30)
    return (folder / "host_key.pub").read_text().strip()


def _start_sshd(folder: Path, port: int, log: Path) -> subprocess.Popen:
    """sshd with `folder`'s configuration on `port`, once it accepts connections."""
    with open(log, "ab") as out:
        # -D: in the foreground (a child of this test), -e: its log to stderr (the file).
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config"), "-p",
                                    str(port)],
                                   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(f"sshd did not start:\n{log.read_text()}") from None
            time.sleep(0.02)


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
