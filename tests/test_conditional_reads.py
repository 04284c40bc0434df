"""Conditional reads: experiment documents and API answers carry an ETag, and a client that kept
one gets a 304 until the answer changes; authorization still comes first."""

from __future__ import annotations

import pytest

from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, experiment, make_token

CLI_ACCEPT = "application/json, application/x-yaml"  # what chaoslib asks for


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def test_the_cli_document_is_revalidated_by_etag_until_a_new_version(app, alice):
    saved = create(alice)
    token = make_token(alice, ["experiments:read", "experiments:write"])
    cli = {"Authorization": f"Bearer {token}", "Accept": CLI_ACCEPT}
    url = f"/alice/Personal/experiment/{saved['id']}"
    first = app.test_client().get(url, headers=cli)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag and first.get_json()["title"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = app.test_client().get(url, headers={**cli, "If-None-Match": etag})
    assert (again.status_code, again.get_data()) == (304, b"")
    assert again.headers["ETag"] == etag
    yaml = app.test_client().get(url, headers={**cli, "Accept": "application/x-yaml",
                                               "If-None-Match": etag})
    assert yaml.status_code == 200 and yaml.headers["ETag"] != etag  # another answer

    changed = {**experiment(), "title": "A new title"}
    assert alice.put(f"/api/v1/experiments/{saved['id']}", json=changed,
                     headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    fresh = app.test_client().get(url, headers={**cli, "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.get_json()["title"] == "A new title"
    assert fresh.headers["ETag"] != etag


def test_api_answers_are_revalidated_and_strangers_still_see_nothing(app, alice):
    saved = create(alice)
    url = f"/api/v1/experiments/{saved['id']}"
    first = alice.get(url)
    etag = first.headers["ETag"]
    assert alice.get(url, headers={"If-None-Match": etag}).status_code == 304
    bob = signed_up_client(app, "bob")
    assert bob.get(url, headers={"If-None-Match": etag}).status_code == 404
    assert app.test_client().get(url, headers={"If-None-Match": etag}).status_code in (401, 404)
    # Pages carry a form token each time: no ETag there.
    page = alice.get(f"/alice/Personal/experiment/{saved['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "ETag" not in page.headers
