"""What the pages show of a document or a journal: readable activities, masked secrets."""

from __future__ import annotations

import json
from typing import Any

from chaoshub.experiment import journals

OUTPUT_LIMIT = 2000
MASK = "••••••"


def activity(entry: Any) -> dict[str, Any]:
    """One activity drawn for people: type, provider type, target, arguments, tolerance."""
    entry = entry if isinstance(entry, dict) else {}
    if "ref" in entry and "provider" not in entry:
        return {"name": str(entry["ref"]), "type": "ref", "provider": "", "target": "",
                "arguments": "", "tolerance": "", "ref": True}
    provider = entry.get("provider") if isinstance(entry.get("provider"), dict) else {}
    kind = str(provider.get("type") or "")
    if kind == "python":
        target = f"{provider.get('module', '?')}.{provider.get('func', '?')}"
    elif kind == "process":
        target = str(provider.get("path", ""))
    elif kind == "http":
        target = f"{str(provider.get('method') or 'GET').upper()} {provider.get('url', '')}"
    else:
        target = ""
    arguments = provider.get("arguments")
    return {
        "name": str(entry.get("name") or ""),
        "type": str(entry.get("type") or ""),
        "provider": kind,
        "target": target,
        "arguments": _arguments(arguments),
        "tolerance": tolerance(entry.get("tolerance")) if "tolerance" in entry else "",
        "background": entry.get("background") is True,
        "ref": False,
    }


def tolerance(value: Any) -> str:
    """A tolerance as a short sentence."""
    if isinstance(value, bool):
        return f"must be {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"must equal {value} (or exit with it)"
    if isinstance(value, str):
        return f"must equal “{value}”"
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return f"between {value[0]} and {value[1]}"
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "regex":
            return f"matches /{value.get('pattern', '')}/"
        if kind == "jsonpath":
            expect = f" = {json.dumps(value['expect'])}" if "expect" in value else ""
            return f"JSONPath {value.get('path', '')}{expect}"
        if kind == "range":
            return f"in range {json.dumps(value.get('range'))}"
        if kind == "probe":
            return f"probe {value.get('name', '')} says so"
        return json.dumps(value)
    return ""


def secrets(document: dict[str, Any]) -> list[dict[str, str]]:
    """The secrets an experiment declares: scope, key and where the value comes from, never an
    inline value."""
    listed = []
    scopes = document.get("secrets") if isinstance(document.get("secrets"), dict) else {}
    for scope, keys in scopes.items():
        for key, value in (keys.items() if isinstance(keys, dict) else []):
            if isinstance(value, dict):
                source = str(value.get("type") or "?")
                detail = value.get("key") or value.get("path") or ""
            else:
                source, detail = "inline", MASK
            listed.append({"scope": str(scope), "key": str(key), "source": source,
                           "detail": str(detail)})
    return listed


def configuration(document: dict[str, Any]) -> list[dict[str, str]]:
    """The configuration keys and where each value comes from (environment values unread)."""
    listed = []
    config = document.get("configuration")
    for key, value in (config.items() if isinstance(config, dict) else []):
        if isinstance(value, dict) and value.get("type") == "env":
            shown = f"from the environment: {value.get('key', '')}"
        elif isinstance(value, dict) and value.get("type") == "probe":
            shown = f"from the probe {value.get('name', '')}"
        else:
            shown = _short(value)
        listed.append({"key": str(key), "value": shown})
    return listed


def run_entries(entries: Any) -> list[dict[str, Any]]:
    """Journal entries (activity runs) for the timeline: output capped, exception tail."""
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        entry = entry if isinstance(entry, dict) else {}
        exception = entry.get("exception")
        if isinstance(exception, list):
            error = "".join(str(e) for e in exception[-2:]).strip()
        else:
            error = str(exception or "").strip()
        met = entry.get("tolerance_met")
        rows.append({
            **activity(entry.get("activity")),
            "status": journals.text(entry.get("status"), 40) or "unknown",
            "start": journals.timestamp(entry.get("start")),
            "duration": journals.number(entry.get("duration")),
            "output": _short(entry.get("output"), OUTPUT_LIMIT) if "output" in entry else "",
            "error": error[-OUTPUT_LIMIT:],
            "tolerance_met": met if isinstance(met, bool) else None,
        })
    return rows


def _arguments(arguments: Any) -> str:
    if arguments in (None, {}, []):
        return ""
    if isinstance(arguments, list):
        return " ".join(str(a) for a in arguments)
    return _short(arguments)


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                           ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more)"
