"""The borders between services: imports, and a verified claim on every public function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chaoshub.core.errors import Unauthorized
from chaoshub.core.transport import INTERFACES

PACKAGE = Path(__file__).resolve().parents[1] / "chaoshub"
SERVICES = ("auth", "dashboard", "experiment")


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


def test_core_does_not_import_services_at_module_level():
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # top level only: a lazy import of a service.py is the seam
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for module in imported_modules(ast.unparse(node)):
                    assert not any(module.startswith(f"chaoshub.{s}") for s in SERVICES), path


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
