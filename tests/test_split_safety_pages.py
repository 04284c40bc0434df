"""The kill switch's banner with one process per service: experiment's pages ask dashboard for
the org's kill switch over its public interface, and show it to the org's members alone."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment
from tests.test_split import form, hub, post_experiment, signed_in  # noqa: F401  (hub: fixture)

pytestmark = pytest.mark.split

BANNER = 'data-testid="kill-switch-banner"'
HTML = {"Accept": "text/html"}


def test_the_banner_shows_on_both_services_pages(hub):  # noqa: F811
    urls, root = hub
    dashboard = urls["dashboard"]
    alice, bob, eve = (signed_in(urls, name) for name in ("ks-alice", "ks-bob", "ks-eve"))
    csrf = {"X-CSRF-Token": alice.cookies.get("chaoshub_csrf")}
    assert alice.post(f"{dashboard}/api/v1/orgs", json={"name": "ks-team"},
                      headers=csrf).status_code == 201
    assert alice.post(f"{dashboard}/api/v1/orgs/ks-team/workspaces",
                      json={"name": "ops", "visibility": "public"}, headers=csrf).status_code == 201
    assert alice.post(f"{dashboard}/api/v1/orgs/ks-team/members",
                      json={"username": "ks-bob", "role": "member"}, headers=csrf
                      ).status_code == 201
    created = post_experiment(alice, urls, "ks-team", "ops", experiment())
    assert created.status_code == 201, created.text
    pages = [f"{dashboard}/ks-team", f"{urls['experiment']}/ks-team/ops",
             f"{urls['experiment']}/ks-team/ops/experiment/{created.json()['id']}"]
    assert all(BANNER not in alice.get(page, headers=HTML).text for page in pages)

    engaged = form(bob, f"{dashboard}/ks-team/-/kill-switch/engage", reason="split brain")
    assert engaged.status_code == 303, engaged.text
    for page in pages:
        answer = alice.get(page, headers=HTML)
        assert answer.status_code == 200 and BANNER in answer.text, page
        assert "split brain" in answer.text
    # An outsider of the public workspace reads experiment's pages without it.
    assert all(BANNER not in eve.get(page, headers=HTML).text for page in pages[1:])
    assert "could not be learnt" not in (root / "experiment.log").read_text()

    released = form(alice, f"{dashboard}/ks-team/-/kill-switch/release")
    assert released.status_code == 303, released.text
    assert BANNER not in alice.get(pages[1], headers=HTML).text
