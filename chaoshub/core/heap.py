"""The Python heap of a process that serves requests."""

from __future__ import annotations

import gc


def freeze_loaded() -> None:
    """Leave what this process holds once its app is loaded (modules, tables, templates) out
    of the garbage collector's later passes.

    A full pass walks every object the collector tracks, and requests that keep many objects
    alive for a while (the experiment page with 200 versions) set one off every dozen or so:
    about 75 ms each with the app's own objects in it, a few without them.
    """
    gc.collect()  # what is garbage already is not kept forever
    gc.freeze()
