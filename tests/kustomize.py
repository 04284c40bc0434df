"""A small kustomize for the subset k8s/ uses, so that the manifest tests need no kubectl.

Supported: `resources` (files and folders), `components`, and `patches` of JSON 6902 operations
(inline or in a file) whose target names a kind, a name (a regular expression) and labels
(`key=value`, comma-separated). Anything else fails loudly: extend this file before using another
kustomize feature in k8s/. tests/test_deploy.py compares its output with `kubectl kustomize`
wherever kubectl is installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "components", "patches"}
PATCH_KEYS = {"target", "patch", "path"}
TARGET_KEYS = {"kind", "name", "labelSelector"}
LABEL = re.compile(r"^\s*([\w./-]+)\s*=\s*([\w.-]+)\s*$")


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or is wrong."""


def render(folder: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize folder` prints, in the order they were declared."""
    return _build(Path(folder), [], "Kustomization")


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of a file, anchors expanded into independent copies."""
    # The JSON round trip matters: PyYAML shares one object between an anchor and its aliases,
    # so a patch of one would silently change the others; kustomize copies them.
    return [json.loads(json.dumps(doc)) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _build(folder: Path, accumulated: list[dict], kind: str) -> list[dict]:
    kustomization = _kustomization(folder, kind)
    resources = list(accumulated)
    for entry in kustomization.get("resources", []):
        path = folder / entry
        loaded = _build(path, [], "Kustomization") if path.is_dir() else load_documents(path)
        for resource in loaded:
            _add(resources, resource)
    # A component adds its resources to what the including kustomization has so far, then
    # patches all of it.
    for entry in kustomization.get("components", []):
        resources = _build(folder / entry, resources, "Component")
    for patch in kustomization.get("patches", []):
        _patch(folder, patch, resources)
    return resources


def _kustomization(folder: Path, kind: str) -> dict:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder} has no kustomization.yaml")
    kustomization = yaml.safe_load(path.read_text()) or {}
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    if unsupported:
        raise KustomizeError(f"{path}: {sorted(unsupported)} not supported by tests/kustomize.py")
    if kustomization.get("kind", "Kustomization") != kind:
        raise KustomizeError(f"{path}: expected kind {kind}")
    return kustomization


def _add(resources: list[dict], resource: dict) -> None:
    key = _identity(resource)
    if any(_identity(existing) == key for existing in resources):
        raise KustomizeError(f"{key} is declared twice")
    resources.append(resource)


def _identity(resource: dict) -> tuple[str, str, str]:
    metadata = resource["metadata"]
    return resource["kind"], metadata.get("namespace", ""), metadata["name"]


def _patch(folder: Path, patch: dict, resources: list[dict]) -> None:
    target = patch.get("target") or {}
    if set(patch) - PATCH_KEYS or set(target) - TARGET_KEYS or not target:
        raise KustomizeError(f"unsupported patch {patch}")
    if "path" in patch:
        operations = yaml.safe_load((folder / patch["path"]).read_text())
    else:
        operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise KustomizeError(f"only JSON 6902 patches are supported, got {patch}")
    matched = [r for r in resources if _matches(r, target)]
    if not matched:
        raise KustomizeError(f"the patch target {target} matches nothing")
    for resource in matched:
        for operation in operations:
            _apply(resource, operation)


def _matches(resource: dict, target: dict) -> bool:
    if "kind" in target and resource["kind"] != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], resource["metadata"]["name"]):
        return False
    labels = resource["metadata"].get("labels") or {}
    for requirement in filter(None, target.get("labelSelector", "").split(",")):
        label = LABEL.match(requirement)
        if label is None:
            raise KustomizeError(f"only key=value label selectors are supported: {requirement}")
        if labels.get(label[1]) != label[2]:
            return False
    return True


def _apply(document: dict, operation: dict) -> None:
    """One JSON Patch (RFC 6902) operation: add, replace or remove."""
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    value = json.loads(json.dumps(operation.get("value")))
    if isinstance(node, list):
        if op == "add":
            node.insert(len(node) if last == "-" else int(last), value)
        elif op == "replace":
            node[int(last)] = value
        elif op == "remove":
            del node[int(last)]
        else:
            raise KustomizeError(f"unsupported operation {op}")
    elif op == "add":
        node[last] = value
    elif op in ("replace", "remove"):
        if last not in node:
            raise KustomizeError(f"{op} {operation['path']}: no such member")
        if op == "replace":
            node[last] = value
        else:
            del node[last]
    else:
        raise KustomizeError(f"unsupported operation {op}")
