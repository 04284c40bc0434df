"""The Python heap of a process that serves requests."""

from __future__ import annotations

import gc


def freeze_loaded() -> None:
    """Leave what this process holds once its app is loaded (modules, tables, templates) out
    of the garbage collector's later passes.

    A full pass walks every object the collector tracks, and a request that keeps many objects
    alive for a while (the experiment page with 200 versions) sets one off every dozen or so:
    without this, a pass of about 75 ms each time, all but the app's own objects left alone.
    """
    gc.collect()  # what is garbage already is not kept forever
    gc.freeze()
