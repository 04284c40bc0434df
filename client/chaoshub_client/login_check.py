"""What `chaoshub login` asks the hub before writing the settings: the token, org and workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from chaoshub_client.tokens import hidden

TIMEOUT = (3.05, 10)  # connect, read
USER_AGENT = "chaoshub-login/1"
# What the control needs to publish a run: open it and send its events and journal, and
# publish the experiment (a new one, or a new version of an edited file).
RUN_SCOPES = {
    "executions:write": "report runs",
    "experiments:write": "publish experiments the hub does not have yet and new versions of "
                         "edited files",
}


class LoginProblem(Exception):
    """The hub cannot be used with these settings; the message says why and what to do."""


@dataclass
class LoginCheck:
    """What the hub said about the token: who it is, and what deserves a warning."""

    username: str
    warnings: list[str] = field(default_factory=list)


def check_login(url: str, token: str, org: str | None, workspace: str | None) -> LoginCheck:
    """Ask the hub at `url` who the token is (`GET /api/v1/me`), then whether the org and
    workspace exist for it; LoginProblem when something would make every run fail."""
    with requests.Session() as http:
        http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json",
                             "User-Agent": USER_AGENT})
        me = _get(http, url, "/api/v1/me")
        if me.status_code == 401:
            raise LoginProblem(f"{url} refused the token (401: {_message(me)}): check that you "
                               f"copied all of it, or make a new one at {url}/settings/tokens")
        caller = _json(me, url, "/api/v1/me")
        if not isinstance(caller.get("scopes"), list) or "username" not in caller:
            raise LoginProblem(f"{url}/api/v1/me did not answer as a ChaosHub does: is this the "
                               "hub's address?")
        check = LoginCheck(username=str(caller["username"]))
        missing = [scope for scope in RUN_SCOPES if scope not in caller["scopes"]
                   and "*" not in caller["scopes"]]
        if missing:
            needs = "; ".join(f"{scope} to {RUN_SCOPES[scope]}" for scope in missing)
            check.warnings.append(
                f"this token lacks {', '.join(missing)}: `chaos run` needs {needs}. Make a "
                f"token with them at {url}/settings/tokens and log in again")
        if org and workspace:
            _check_workspace(http, url, org, workspace, check)
        elif org:
            _check_org(http, url, org)
        return check


def _check_workspace(http: requests.Session, url: str, org: str, workspace: str,
                     check: LoginCheck) -> None:
    path = f"/api/v1/orgs/{quote(org, safe='')}/workspaces/{quote(workspace, safe='')}"
    found = _get(http, url, path)
    if found.status_code == 404:
        _check_org(http, url, org)  # says when the org itself is what is missing
        raise LoginProblem(f"the org {org!r} has no workspace {workspace!r} that this token "
                           f"may see on {url} (names are as on the hub: see {url}/{quote(org)})")
    allowed = _json(found, url, path).get("allowed")
    if isinstance(allowed, list) and "run" not in allowed:
        check.warnings.append(f"your role in {org}/{workspace} does not let you run "
                              "experiments: the hub will refuse the runs `chaos run` reports")


def _check_org(http: requests.Session, url: str, org: str) -> None:
    found = _get(http, url, f"/api/v1/orgs/{quote(org, safe='')}")
    # 403: the token may not read orgs (no orgs:read); the workspace's answer says enough.
    if found.status_code == 404:
        raise LoginProblem(f"there is no org {org!r} that this token may see on {url}")


def _get(http: requests.Session, url: str, path: str) -> requests.Response:
    try:
        return http.get(url + path, timeout=TIMEOUT, allow_redirects=False)
    except requests.Timeout as exc:
        raise LoginProblem(f"{url} did not answer in time: is the address right, and the hub "
                           "up?") from exc
    except requests.ConnectionError as exc:
        raise LoginProblem(f"cannot reach {url}: nothing answers there (is the address right, "
                           "and the hub up?)") from exc
    except requests.RequestException as exc:
        token = http.headers.get("Authorization", "").removeprefix("Bearer ")
        raise LoginProblem(f"cannot reach {url}: {hidden(str(exc), token)}") from exc


def _json(response: requests.Response, url: str, path: str) -> dict:
    if response.status_code != 200:
        raise LoginProblem(f"{url}{path} answered {response.status_code} "
                           f"({_message(response)})")
    try:
        body = response.json()
    except ValueError as exc:
        raise LoginProblem(f"{url}{path} did not answer with JSON: is this the hub's "
                           "address?") from exc
    if not isinstance(body, dict):
        raise LoginProblem(f"{url}{path} did not answer as a ChaosHub does")
    return body


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or response.reason)[:200]
    except (ValueError, AttributeError):
        return str(response.reason or response.status_code)[:200]
