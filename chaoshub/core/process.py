"""This process as the operating system sees it: what the processes it starts may read of it."""

from __future__ import annotations

import ctypes

PR_SET_DUMPABLE = 4  # prctl(2)


def hide_from_children() -> None:
    """Make this process non-dumpable (Linux): processes of the same user, such as the runs'
    children, can no longer read its environment or memory under /proc."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to hide this way
        pass
