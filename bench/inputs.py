"""CPU seconds the edge spends on hostile or large bodies (chaoshub.core.inputs).

Usage: .venv/bin/python bench/inputs.py
Prints the CPU time of parsing (or refusing) each body beside its goal: every refusal, and a
plain YAML experiment just under the YAML cap, under 0.5 s of CPU on one core.
"""

from __future__ import annotations

import time

from chaoshub.core import inputs
from chaoshub.core.errors import HubError

GOAL_SECONDS = 0.5


def laughs(levels: int, width: int) -> str:
    """The billion-laughs family: each level refers `width` times to the one below."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def bodies() -> dict[str, tuple[str, str]]:
    """Each body, as (its kind, its text)."""
    plain = "".join(f"key{i}: a plain value {i}\n" for i in range(40_000))
    return {
        "billion-laughs-10^8": ("yaml", laughs(8, 10)),
        "quadratic-blowup": ("yaml", f"a: &a {'x' * 100_000}\nb: [{', '.join(['*a'] * 30_000)}]\n"),
        "50k-anchors": ("yaml", "".join(f"- &a{i} {i}\n" for i in range(50_000))),
        "base-60-int": ("yaml", "x: " + ":".join(["1"] * 80_000) + "\n"),
        "plain YAML under the cap": (
            "yaml", plain[:inputs.YAML_MAX_BYTES - 100].rsplit("\n", 1)[0] + "\n"),
        "100k-deep JSON arrays": ("json", "[" * 100_000 + "]" * 100_000),
        "50k-deep YAML flow": ("yaml", "[" * 50_000 + "]" * 50_000),
    }


def main() -> None:
    print(f"{'body':<28} {'answer':<10} {'CPU s':>7}  goal < {GOAL_SECONDS} s")
    for name, (kind, text) in bodies().items():
        parse = inputs.parse_yaml if kind == "yaml" else inputs.parse_json
        start = time.process_time()
        try:
            parse(text)
            answer = "parsed"
        except HubError as exc:
            answer = str(exc.status)
        cpu = time.process_time() - start
        verdict = "ok" if cpu < GOAL_SECONDS else "OVER"
        print(f"{name:<28} {answer:<10} {cpu:>7.3f}  {verdict}")


if __name__ == "__main__":
    main()
