"""The rules names and settings of orgs and workspaces follow."""

from __future__ import annotations

import re
import unicodedata

from chaoshub.auth import service as auth
from chaoshub.core.errors import ValidationFailed
from chaoshub.dashboard.permissions import ROLES

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}$")
NAME_RULE = "2 to 39 letters, digits, '-' or '_', starting with a letter or digit"
RESERVED_NAMES = auth.RESERVED_NAMES  # usernames share the namespace: auth keeps the list
VISIBILITIES = ("private", "internal", "public")
OUTSIDER_EXECUTIONS = ("none", "status", "full")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DESCRIPTION_MAX = 1000
DISPLAY_NAME_MAX = 100


def org_name_problem(name: str) -> str | None:
    """Why `name` cannot name an org, or None when it can."""
    if not NAME.match(name or ""):
        return NAME_RULE
    if name.lower() in RESERVED_NAMES:
        return "this name is reserved by the hub"
    return None


def check_org_name(name: str) -> None:
    """Raise ValidationFailed unless `name` can name an org."""
    problem = org_name_problem(name)
    if problem:
        raise ValidationFailed(f"{name!r} cannot name an org",
                               [{"pointer": "/name", "message": problem}])


def org_name_from(display_name: str) -> str:
    """The address an org named `display_name` gets: itself when it is a valid name, else a
    slug of it ("Acme Platform Team" -> "acme-platform-team"), cut to the longest name."""
    text = (display_name or "").strip()
    if NAME.match(text):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:39].rstrip("-")


def checked_display_name(display_name: str | None) -> str:
    """`display_name` trimmed, or ValidationFailed when it is too long or holds control
    characters."""
    text = " ".join((display_name or "").split())
    if len(text) > DISPLAY_NAME_MAX or any(unicodedata.category(c) == "Cc" for c in text):
        raise ValidationFailed("the display name cannot be used", [
            {"pointer": "/display_name",
             "message": f"{DISPLAY_NAME_MAX} characters at most, no control characters"}])
    return text


def check_role(role: str) -> None:
    """Raise ValidationFailed unless `role` is one of the roles."""
    if role not in ROLES:
        raise ValidationFailed("no such role", [{"pointer": "/role", "message":
                                                 "one of " + ", ".join(ROLES)}])


def workspace_problems(
    name: str | None, visibility: str | None, outsider_executions: str | None
) -> list[dict]:
    """What is wrong with a workspace's fields (None: left as they are)."""
    problems = []
    if name is not None and not NAME.match(name):
        problems.append({"pointer": "/name", "message": NAME_RULE})
    if visibility is not None and visibility not in VISIBILITIES:
        problems.append({"pointer": "/visibility", "message": "one of " + ", ".join(VISIBILITIES)})
    if outsider_executions is not None and outsider_executions not in OUTSIDER_EXECUTIONS:
        problems.append({"pointer": "/outsider_executions",
                         "message": "one of " + ", ".join(OUTSIDER_EXECUTIONS)})
    return problems


def description_problems(
    description: str | None, url: str | None, email: str | None
) -> list[dict]:
    """What is wrong with an org's description, address and email."""
    problems = []
    if description is not None and len(description.strip()) > DESCRIPTION_MAX:
        problems.append({"pointer": "/description",
                         "message": f"{DESCRIPTION_MAX} characters at most"})
    if url and (len(url.strip()) > 200 or not URL.match(url.strip())):
        problems.append({"pointer": "/url", "message": "an http:// or https:// address"})
    if email and (len(email.strip()) > 200 or not EMAIL.match(email.strip())):
        problems.append({"pointer": "/email", "message": "an email address"})
    return problems
