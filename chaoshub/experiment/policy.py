"""A workspace's run policy applied to an experiment: every activity, control and dynamic
configuration entry it would execute, each violation with its JSON pointer.

Static checks only: nothing the experiment names is imported or run here.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from chaoshub.core.errors import problem
from chaoshub.dashboard.service import (
    DENIED_MODULES,
    SHELL_PREFIXES,
    SHELL_SUFFIXES,
    SHELLS,
    SYSTEM_PROGRAMS,
    RunPolicy,
)

# Programs whose names end as a shell's do but run none.
NOT_SHELLS = frozenset({"sha1sum", "refresh", "fresh", "flush", "ssh-keygen"})

Where = tuple[str | int, ...]
FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Names under which a module commonly holds what it imported from os, subprocess, builtins or
# pickle: an allowed module's attribute of that name runs a shell or loads code.
DENIED_FUNCTIONS = frozenset({
    "system", "popen", "Popen", "run", "call", "check_call", "check_output", "getoutput",
    "getstatusoutput", "exec", "eval", "compile", "execl", "execle", "execlp", "execlpe",
    "execv", "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
    "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp", "fork",
    "import_module", "load", "loads", "open", "remove", "rmtree", "kill", "killpg"})
METADATA_NAMES = ("metadata.google.internal", "metadata", "instance-data")
METADATA_ADDRESSES = (ipaddress.ip_address("fd00:ec2::254"),)  # AWS's, over IPv6


def violations(document: dict[str, Any], policy: RunPolicy,
               extensions: frozenset[str] | None = None) -> list[dict[str, str]]:
    """What in `document` the policy does not allow, each with its pointer; empty: none.

    `extensions` are the top-level modules of the Chaos Toolkit extensions the workers have,
    which a policy without python_modules allows; None: not known yet (any module of an
    extension's kind, "chaos...", passes until a worker knows better).
    """
    found = []
    for where, provider in providers(document):
        found.extend(_provider(where, provider, policy, extensions))
    runtime = document.get("runtime")
    if isinstance(runtime, dict) and "python" in runtime and not policy.allow_runtime_python:
        found.append(problem(("runtime", "python"),
                             "runtime.python (installing packages) is not allowed here"))
    if not policy.allow_vault:
        found.extend(problem(where, "Vault secrets are not allowed here")
                     for where in _vault_entries(document))
    return found


def providers(document: dict[str, Any]) -> Iterator[tuple[Where, dict[str, Any]]]:
    """Every provider the experiment would call, with where it sits."""
    hypothesis = document.get("steady-state-hypothesis")
    if isinstance(hypothesis, dict):
        yield from _activities(("steady-state-hypothesis", "probes"), hypothesis.get("probes"))
    yield from _activities(("method",), document.get("method"))
    yield from _activities(("rollbacks",), document.get("rollbacks"))
    configuration = document.get("configuration")
    if isinstance(configuration, dict):
        for key, value in configuration.items():
            # A dynamic configuration value is a probe, run before anything else.
            if isinstance(value, dict) and value.get("type") == "probe":
                yield from _provided(("configuration", key), value)
    yield from _controls(("controls",), document.get("controls"))
    for kind in ("steady-state-hypothesis",):
        if isinstance(hypothesis, dict):
            yield from _controls((kind, "controls"), hypothesis.get("controls"))


def _activities(where: Where, activities: Any) -> Iterator[tuple[Where, dict[str, Any]]]:
    if not isinstance(activities, list):
        return
    for position, activity in enumerate(activities):
        if isinstance(activity, dict):
            yield from _provided((*where, position), activity)
            yield from _controls((*where, position, "controls"), activity.get("controls"))


def _provided(where: Where, holder: dict[str, Any]) -> Iterator[tuple[Where, dict[str, Any]]]:
    provider = holder.get("provider")
    if isinstance(provider, dict):
        yield (*where, "provider"), provider


def _controls(where: Where, controls: Any) -> Iterator[tuple[Where, dict[str, Any]]]:
    if isinstance(controls, list):
        for position, control in enumerate(controls):
            if isinstance(control, dict):
                yield from _provided((*where, position), control)


def _provider(where: Where, provider: dict[str, Any], policy: RunPolicy,
              extensions: frozenset[str] | None) -> list[dict]:
    kind = provider.get("type")
    if kind not in policy.provider_types:
        return [problem((*where, "type"), f"{kind!r} providers are not allowed here")]
    if kind == "python":
        return _python(where, provider, policy, extensions)
    if kind == "process":
        return _process(where, provider, policy)
    return _http(where, provider, policy)


def _python(where: Where, provider: dict[str, Any], policy: RunPolicy,
            extensions: frozenset[str] | None) -> list[dict]:
    module = provider.get("module")
    if not isinstance(module, str) or not module:
        return [problem((*where, "module"), "a python provider names its module")]
    if _within(module, DENIED_MODULES):
        return [problem((*where, "module"), f"the python module {module} is never allowed")]
    if policy.python_modules:
        allowed = _within(module, policy.python_modules)
    else:
        top = module.split(".")[0]
        allowed = top in extensions if extensions is not None else top.startswith("chaos")
    if not allowed:
        return [problem((*where, "module"),
                        f"the python module {module} is not among those the policy allows")]
    if where[0] != "configuration" and "controls" in where:
        # A control's module is called by the hook names chaoslib knows. (Configuration keys
        # are the experiment's own words: a key named "controls" is no control.)
        return []
    func = provider.get("func")
    if not isinstance(func, str) or not FUNCTION_NAME.fullmatch(func):
        return [problem((*where, "func"), "a python provider names a public function")]
    if func in DENIED_FUNCTIONS:
        return [problem((*where, "func"),
                        f"{func} is what modules import from os or subprocess: never allowed")]
    return []


def _process(where: Where, provider: dict[str, Any], policy: RunPolicy) -> list[dict]:
    found = []
    path = provider.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        found.append(problem((*where, "path"), "a process provider names an absolute path"))
    elif policy.process_paths and posixpath.normpath(path) not in policy.process_paths:
        found.append(problem((*where, "path"), f"{path} is not among the programs the policy "
                                               "allows"))
    elif not policy.process_paths and (posixpath.normpath(path) != path
                                       or posixpath.dirname(path) not in SYSTEM_PROGRAMS):
        found.append(problem((*where, "path"), f"{path} is not one of the system's programs ("
                                               f"{', '.join(SYSTEM_PROGRAMS)}): list it in "
                                               "the workspace's policy to run it"))
    elif not policy.process_paths and _is_shell(path):
        found.append(problem((*where, "path"), f"{path} runs other commands: shells, "
                                               "interpreters and their like are not allowed"))
    arguments = provider.get("arguments")
    if isinstance(arguments, str):
        found.append(problem((*where, "arguments"),
                             "arguments as one string run in a shell: give them as a list"))
    return found


def _http(where: Where, provider: dict[str, Any], policy: RunPolicy) -> list[dict]:
    url = provider.get("url")
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts else None
    except ValueError:
        host = None
    origin = "/".join(url.split("/", 3)[:3]) if isinstance(url, str) else ""
    if "${" in origin:
        # Substituted in the run, where nothing checks it again: a list of hosts must see it.
        if policy.http_hosts:
            return [problem((*where, "url"), "write the host out: the policy lists the hosts "
                                             "runs may call")]
        return []  # the workers' network policy keeps cloud metadata out of reach
    if not host or parts.scheme not in ("http", "https"):
        return [problem((*where, "url"), "an http provider calls an http(s) URL")]
    if policy.http_hosts:
        if host.lower() not in [h.lower() for h in policy.http_hosts]:
            return [problem((*where, "url"), f"{host} is not among the hosts the policy allows")]
        return []
    address = _address(host)
    if address is None:
        return [] if host.lower().rstrip(".") not in METADATA_NAMES else [
            problem((*where, "url"), "cloud metadata endpoints are not allowed")]
    mapped = getattr(address, "ipv4_mapped", None)
    if address.is_link_local or (mapped and mapped.is_link_local) or address in METADATA_ADDRESSES:
        return [problem((*where, "url"), "link-local addresses (cloud metadata) are not allowed")]
    return []


def _address(host: str):
    """The IP address `host` names, however it is written (resolvers take 2852039166 and
    0xa9.0xfe.0xa9.0xfe for 169.254.169.254), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _vault_entries(document: dict[str, Any]) -> Iterator[Where]:
    secrets = document.get("secrets")
    if isinstance(secrets, dict):
        for scope, values in secrets.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    if isinstance(value, dict) and value.get("type") == "vault":
                        yield ("secrets", scope, key)
    configuration = document.get("configuration")
    if isinstance(configuration, dict):
        for key in configuration:
            if key.startswith("vault_"):
                yield ("configuration", key)


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p if p.endswith(("_", ".")) else p + ".")
               for p in prefixes)


def _is_shell(path: str) -> bool:
    name = posixpath.basename(path)
    return (name in SHELLS or name.startswith(SHELL_PREFIXES)
            or (name.endswith(SHELL_SUFFIXES) and name not in NOT_SHELLS))
