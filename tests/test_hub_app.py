"""The hub's Flask app class: views and hooks are checked once for being coroutines."""

from __future__ import annotations

from chaoshub.core.web import Hub


def test_a_plain_function_is_called_as_it_is_and_checked_once(monkeypatch):
    app = Hub(__name__)
    asked = []
    original = Hub.__mro__[1].ensure_sync

    def counting(self, func):
        asked.append(func)
        return original(self, func)

    monkeypatch.setattr(Hub.__mro__[1], "ensure_sync", counting)

    def view():
        return "ok"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
    assert asked == [view]


def test_a_coroutine_function_is_never_taken_for_a_plain_one():
    app = Hub(__name__)

    async def view():
        return "ok"

    for _ in range(2):  # nor the second time
        try:
            wrapped = app.ensure_sync(view)
        except RuntimeError as exc:  # Flask without its async extra says how to get it
            assert "async" in str(exc)
        else:
            assert wrapped is not view


def test_requests_are_served_by_the_hub_class(app):
    assert isinstance(app, Hub)
    response = app.test_client().get("/status/live")
    assert response.status_code == 200
