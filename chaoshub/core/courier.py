"""Delivery after the answer: what a commit put into an outbox (feed entries, mail) goes out
never before the answer, either from a thread of each process or right after the answer.

With `every` > 0, a thread (started with the process's first request, or by the first commit)
delivers at most every `every` seconds after a commit woke it, so that what is committed
meanwhile goes in the same round, and every `poll` seconds anyway (what an earlier process or a
failed round left), backing off while rounds keep failing. With 0 there is no thread: a
request's outbox goes right after its answer is sent (the response's close), and a commit
outside a request (a worker, a command) delivers at once: nobody waits for an answer there.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable

from flask import Flask, Response, current_app, g, has_app_context, has_request_context

from chaoshub.core import events
from chaoshub.core.process_thread import ProcessThread


class Courier:
    """One app's delivery of one outbox: `deliver()` (in an app context) sends what is
    pending and says whether the round went well."""

    def __init__(self, name: str, every: float, poll: float, deliver: Callable[[], bool]):
        self.every = every
        self.poll = poll
        self.deliver = deliver
        self.woken = threading.Event()
        self.thread = ProcessThread(name, self._run)
        self._pending = f"{name}_pending"  # on flask.g: this request's commits fed the outbox

    def init_app(self, app: Flask) -> None:
        """Deliver after `app`'s answers, or from its thread once it serves a request."""
        app.after_request(self._after_request)
        app.teardown_request(self._teardown_request)
        # Started with a process's first request: what an earlier process left goes out.
        app.before_request(functools.partial(self.start, app))

    def committed(self) -> None:
        """Have what a commit just put into the outbox delivered (after the answer)."""
        if not has_app_context():
            return
        if self.every > 0:
            self.start(current_app._get_current_object())
            self.woken.set()
        elif has_request_context():
            g.setdefault(self._pending, True)  # delivered once the answer is sent
        else:
            self.deliver()

    def again_soon(self) -> None:
        """Have the thread look again after `every` seconds rather than `poll` (another
        process was delivering while this one's entries may have gone in)."""
        if self.every > 0:
            self.woken.set()

    def start(self, app: Flask) -> None:
        """Start this process's delivery thread, if the app delivers from one."""
        if self.every > 0 and self.thread.start(app):
            self.woken.set()  # a first look at once: entries may wait from before

    def stop(self) -> None:
        """Stop this process's delivery thread and wait for its round to end."""
        self.thread.stopped.set()
        self.woken.set()  # out of its wait at once
        self.thread.stop()

    def _after_request(self, response: Response) -> Response:
        if g.pop(self._pending, False):
            # Once the server has sent the answer and closes it: outside the request by then.
            response.call_on_close(functools.partial(self._deliver_in,
                                                     current_app._get_current_object()))
        return response

    def _teardown_request(self, error: BaseException | None) -> None:
        # A request that made no answer (a test's request context alone): deliver now.
        if g.pop(self._pending, False):
            self.deliver()

    def _deliver_in(self, app: Flask) -> None:
        with app.app_context():
            self.deliver()

    def _run(self, app_ref: weakref.ref, stopped: threading.Event) -> None:
        failures = 0
        while not stopped.is_set():
            if failures:
                # Failing (a database away): asked again later, however many commits wake it.
                stopped.wait(min(self.poll, events.backoff(failures, self.every)))
            else:
                self.woken.wait(self.poll)
            stopped.wait(self.every)  # what is committed meanwhile goes in the same round
            self.woken.clear()
            if stopped.is_set():
                return
            app = app_ref()  # weak: an app that is gone (tests make many) ends its thread
            if app is None:
                return
            with app.app_context():
                failures = 0 if self.deliver() else failures + 1
            del app
