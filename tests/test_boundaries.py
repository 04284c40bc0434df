"""The borders between services: imports, and a verified claim on every public function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chaoshub.core.errors import Unauthorized
from chaoshub.core.transport import INTERFACES

PACKAGE = Path(__file__).resolve().parents[1] / "chaoshub"
SERVICES = ("auth", "dashboard", "experiment")  # in their order: each may call only those before
# No arrow goes against that order (issue 18, item 1): what flows upward is a domain event
# (core/events.py).


def imported_modules(source: str) -> set[str]:
    """Every module a source file imports, `from a import b` counted as a and a.b."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(owner: str | None, source: str) -> list[str]:
    """Imports of another service that go past its public `service` module."""
    bad = []
    for module in imported_modules(source):
        parts = module.split(".")
        if len(parts) < 2 or parts[0] != "chaoshub" or parts[1] not in SERVICES:
            continue
        other = parts[1]
        if other == owner:
            continue
        if len(parts) == 2 or parts[2] == "service":
            # `from chaoshub.auth import service` lists chaoshub.auth too: that alone is harmless
            continue
        bad.append(module)
    return bad


def package_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).parts
        owner = relative[0] if relative[0] in SERVICES else None
        yield path, owner


@pytest.mark.parametrize("path,owner", list(package_files()),
                         ids=lambda v: str(v.relative_to(PACKAGE)) if isinstance(v, Path) else "")
def test_no_module_reaches_into_another_service(path, owner):
    assert violations(owner, path.read_text()) == []


def service_uses(source: str) -> dict[str, set[str]]:
    """The names a source uses of each service it imports, at any depth ("*" when unknown)."""
    tree = ast.parse(source)
    used: dict[str, set[str]] = {}
    aliases: dict[str, str] = {}  # a local name bound to a service's module -> that service
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "chaoshub" or len(parts) < 2 or parts[1] not in SERVICES:
                continue
            for alias in node.names:
                if len(parts) == 2:  # from chaoshub.dashboard import service as dashboard
                    aliases[alias.asname or alias.name] = parts[1]
                    used.setdefault(parts[1], set())
                else:  # from chaoshub.dashboard.service import authorize
                    used.setdefault(parts[1], set()).add(alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "chaoshub" and len(parts) > 1 and parts[1] in SERVICES:
                    used.setdefault(parts[1], set()).add("*")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases:
            used[aliases[node.value.id]].add(node.attr)
    return used


def reverse_arrows(path: str, source: str) -> list[str]:
    """What a file of chaoshub/ uses against auth <- dashboard <- experiment: core may use no
    service, a service only those before it."""
    owner = path.split("/")[0]
    if owner not in SERVICES and owner != "core":
        return []  # the app factory and the command line put the services together
    rank = SERVICES.index(owner) if owner in SERVICES else -1
    bad = []
    for service in service_uses(source):
        if service == owner or (owner in SERVICES and SERVICES.index(service) < rank):
            continue
        bad.append(f"{path} -> {service}")
    return bad


@pytest.mark.parametrize("path", [p for p, _ in package_files()],
                         ids=lambda v: str(v.relative_to(PACKAGE)))
def test_calls_go_only_down_auth_dashboard_experiment(path):
    relative = path.relative_to(PACKAGE).as_posix()
    assert reverse_arrows(relative, path.read_text()) == []


def test_the_direction_check_catches_a_reverse_arrow():
    inside_a_function = "def f():\n    from chaoshub.experiment import service as e\n    e.g()\n"
    assert reverse_arrows("dashboard/service.py", inside_a_function) == [
        "dashboard/service.py -> experiment"]
    assert reverse_arrows("dashboard/pages.py", "import chaoshub.experiment.service\n") == [
        "dashboard/pages.py -> experiment"]
    assert reverse_arrows("core/db.py", "from chaoshub.auth.service import x\n") == [
        "core/db.py -> auth"]
    account_event = "from chaoshub.dashboard import service as d\nd.record_account_event(c)\n"
    assert reverse_arrows("auth/service.py", account_event) == ["auth/service.py -> dashboard"]
    listing = "from chaoshub.experiment import service as e\ne.list_experiments(c)\n"
    # The last reverse arrow, gone with the workspace page to experiment: it may not come back.
    assert reverse_arrows("dashboard/routes.py", listing) == ["dashboard/routes.py -> experiment"]
    # Downward arrows, and the app factory, are fine.
    assert reverse_arrows("experiment/service.py", "from chaoshub.auth import service\n") == []
    assert reverse_arrows("__init__.py", "from chaoshub import experiment\n") == []


def test_the_check_catches_a_crossing():
    source = "from chaoshub.auth.models import Account\nimport chaoshub.experiment.routes\n"
    assert sorted(violations("dashboard", source)) == [
        "chaoshub.auth.models", "chaoshub.auth.models.Account", "chaoshub.experiment.routes"]
    assert violations("dashboard", "from chaoshub.auth import service as auth\n") == []
    assert violations("dashboard", "from chaoshub.auth import models\n") == ["chaoshub.auth.models"]
    assert violations("auth", "from chaoshub.auth.models import Account\n") == []


def test_models_have_one_metadata_each_and_no_foreign_key_leaves_it():
    from chaoshub.core.migrate import metadata

    tables = {service: set(metadata(service).tables) for service in SERVICES}
    for service, names in tables.items():
        others = set().union(*(t for s, t in tables.items() if s != service))
        assert not names & others
        for table in metadata(service).tables.values():
            for fk in table.foreign_keys:
                assert fk.column.table.name in names, f"{table.name} -> {fk.column.table.name}"


def public_functions():
    import chaoshub.auth.service  # noqa: F401  (registers the interfaces)
    import chaoshub.dashboard.service  # noqa: F401
    import chaoshub.experiment.service  # noqa: F401

    return [fn for iface in INTERFACES.values() for fn in iface.functions.values()]


def test_every_service_has_a_public_interface():
    assert {fn.service for fn in public_functions()} == set(SERVICES)


@pytest.mark.parametrize("function", [f for f in public_functions() if f.takes_claim],
                         ids=lambda f: f"{f.service}.{f.name}")
def test_public_functions_refuse_a_forged_claim(app, function):
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
    arguments = {name: None for name in list(function.signature.parameters)[1:]}
    with app.app_context(), pytest.raises(Unauthorized):
        function(forged, **arguments)


def route_modules() -> dict[str, Path]:
    """Every module of a service that serves routes (it decorates view functions)."""
    found = {}
    for path in sorted(p for service in SERVICES for p in (PACKAGE / service).rglob("*.py")):
        if re.search(r"^@\w+\.(get|post|put|patch|delete|route)\(", path.read_text(), re.M):
            dotted = ".".join(("chaoshub", *path.relative_to(PACKAGE).with_suffix("").parts))
            found[dotted] = path
    return found


def test_route_modules_import_nothing_from_each_other():
    routes = route_modules()
    assert len(routes) > 10  # the check reads what it should
    for name, path in routes.items():
        imported = imported_modules(path.read_text())
        assert not (imported & set(routes)) - {name}, name
