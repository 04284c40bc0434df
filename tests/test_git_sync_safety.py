"""Experiments from git, against what a repository's contributors or a careless link could
send: globs made to backtrack, files that are no files, paths that are not UTF-8, and the
cache folder's permissions."""

from __future__ import annotations

from chaoshub.experiment import git_mirror


def test_globs_that_would_backtrack_match_at_once():
    # A depends_on glob comes from any commit to the repository; matched by a regular
    # expression, these took hours of the worker's sync thread.
    deep = "**/" * 20 + "x"
    assert not git_mirror.matches("a/" * 40 + "y", [deep])
    assert git_mirror.matches("a/" * 40 + "x", [deep])
    stars = "*a" * 30 + "b"
    assert not git_mirror.matches("a" * 200, [stars])
    assert git_mirror.matches("a" * 200 + "b", [stars])
    assert git_mirror.glob_problem("[z-a].json") == "not a valid glob"
    assert git_mirror.matches("chaos/x/a.json", ["chaos/**/[!b].json"])
