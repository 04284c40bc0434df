"""What a YAML file's error says, without its text: the files read hold tokens and secrets."""

from __future__ import annotations

import yaml


def yaml_problem(exc: BaseException) -> str:
    """The error's problem and where it is (line and column), never the quoted line itself."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        # A PyYAML error without a mark quotes nothing; other errors (OSError) say their own.
        return str(exc) if not isinstance(exc, yaml.YAMLError) else type(exc).__name__
    # str() of a marked error copies the offending line, which may be `token: <the token>`.
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{exc.problem or exc.context or 'not valid YAML'}{where}"
