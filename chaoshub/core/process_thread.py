"""A background thread an app runs once in each process: started on demand, started again in a
process forked after it started (a server's workers inherit no threads), stopped with a join."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from flask import Flask


class ProcessThread:
    """One app's background thread; `work(app_ref, stopped)` runs in it until `stopped` is set
    or the app is gone (`app_ref` is weak: tests make many apps)."""

    def __init__(self, name: str, work: Callable[[weakref.ref, threading.Event], None]):
        self.name = name
        self.work = work
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None

    def start(self, app: Flask) -> bool:
        """Start the thread unless this process runs it already; True when it started now."""
        if self.pid == os.getpid():
            return False
        with self.lock:
            if self.pid == os.getpid():
                return False
            self.pid = os.getpid()
            self.stopped.clear()
            self.thread = threading.Thread(target=self.work,
                                           args=(weakref.ref(app), self.stopped),
                                           name=self.name, daemon=True)
            self.thread.start()
            return True

    def stop(self) -> None:
        """Ask the thread to stop and wait for its round to end."""
        if self.thread is None:
            return
        self.stopped.set()
        self.thread.join(timeout=30)
        self.pid = self.thread = None


def start_in(app: Flask, key: str, name: str,
             work: Callable[[weakref.ref, threading.Event], None]) -> bool:
    """Start `app`'s thread kept under `key` in its extensions (made on first use) in this
    process; True when it started now."""
    thread = app.extensions.get(key)
    if thread is None:
        thread = app.extensions[key] = ProcessThread(name, work)
    return thread.start(app)


def stop_in(app: Flask, key: str) -> None:
    """Stop `app`'s thread kept under `key`, if any, once its round ends."""
    thread = app.extensions.get(key)
    if thread is not None:
        thread.stop()
