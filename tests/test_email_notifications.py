"""Email notifications: a workspace's notification by mail (an "email" webhook), delivered by
the workers' delivery machinery to a real SMTP server on 127.0.0.1, to the members who opted in
and have a verified address, or to the members a maintainer chose."""

from __future__ import annotations

import pytest

from chaoshub import create_app
from chaoshub.core import db
from chaoshub.experiment import webhook_delivery
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create
from tests.helpers import free_port
from tests.mail_server import bodies, link_in, mail_settings, smtp_server
from tests.test_email_addresses import path_of, set_email
from tests.test_webhooks import change

HOOKS = "/api/v1/orgs/acme/workspaces/ops/webhooks"


@pytest.fixture
def app(settings, inbox):
    hub = create_app({**settings, **mail_settings(inbox.port),
                      "PUBLIC_URL": "https://hub.example.com", "WEBHOOK_RETRY_SCALE": 0.0})
    yield hub
    db.dispose(hub)


def member(app, inbox, owner, username: str, address: str | None, opted_in: bool,
           role: str = "member"):
    """A member of acme (or no one's, role None), with a verified address, opted in or not."""
    browser = signed_up_client(app, username)
    if address:
        set_email(browser, address)
        assert browser.get(path_of(link_in(inbox.messages[-1]))).status_code == 303
    if opted_in:
        answer = browser.put("/api/v1/me/email", json={"notifications": True},
                             headers={"X-CSRF-Token": csrf(browser)})
        assert answer.status_code == 200 and answer.get_json()["notifications"] is True
    if role:
        added = post_json(owner, "/api/v1/orgs/acme/members",
                          {"username": username, "role": role})
        assert added.status_code == 201, added.get_json()
    return browser


@pytest.fixture
def team(app, inbox):
    """acme/ops, owned by olga; bob opted in, carol did not, dan opted in but is no member,
    erin opted in with an unverified address."""
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "acme"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/acme/workspaces", {"name": "ops"}).status_code == 201
    people = {"olga": olga,
              "bob": member(app, inbox, olga, "bob", "bob@example.com", True),
              "carol": member(app, inbox, olga, "carol", "carol@example.com", False),
              "dan": member(app, inbox, olga, "dan", "dan@example.com", True, role=None)}
    erin = member(app, inbox, olga, "erin", None, True)
    set_email(erin, "erin@example.com")  # never verified
    people["erin"] = erin
    inbox.messages.clear()
    inbox.envelopes.clear()
    return people


def deliver(app) -> int:
    with app.app_context():
        return webhook_delivery.deliver_due()


def deliveries(browser, hook_id: str) -> list[dict]:
    answer = browser.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["deliveries"]


def test_members_who_opted_in_get_a_formatted_mail_with_a_link(app, inbox, team):
    olga = team["olga"]
    made = post_json(olga, HOOKS, {"kind": "email", "events": ["experiment.changed"]})
    assert made.status_code == 201, made.get_json()
    hook = made.get_json()
    assert hook["url"] == "email: the members who opted in" and hook["recipients"] is None
    assert hook["secret"] is None
    experiment = create(olga, "acme", "ops")
    change(olga, experiment["id"], "Latency under load")
    assert deliver(app) == 1

    [message] = inbox.messages
    assert inbox.envelopes == [["bob@example.com"]]  # opted in, verified, a member
    assert message["To"] == "undisclosed-recipients:;"
    assert message["Subject"] == "[acme/ops] The experiment Latency under load changed"
    text, html = bodies(message)
    link = f"https://hub.example.com/acme/ops/experiment/{experiment['id']}"
    assert link in text and f'href="{link}"' in html and "Changed by: olga" in text
    [delivery] = deliveries(olga, hook["id"])
    assert delivery["status"] == "delivered"
    assert delivery["attempts"][0]["status_code"] == 250
    assert delivery["attempts"][0]["response_excerpt"] == "sent to 1 address(es)"


def test_chosen_members_get_it_without_opting_in_and_outsiders_cannot_be_chosen(
        app, inbox, team):
    olga = team["olga"]
    refused = post_json(olga, HOOKS, {"kind": "email", "events": ["experiment.changed"],
                                      "recipients": ["carol", "dan", "nobody"]})
    assert refused.status_code == 422
    assert [d["pointer"] for d in refused.get_json()["details"]] == [
        "/recipients/1", "/recipients/2"]
    made = post_json(olga, HOOKS, {"kind": "email", "events": ["experiment.changed"],
                                   "recipients": ["carol", "erin"]})
    assert made.status_code == 201
    assert made.get_json()["recipients"] == ["carol", "erin"]
    assert made.get_json()["url"] == "email: carol, erin"
    experiment = create(olga, "acme", "ops")
    change(olga, experiment["id"], "Changed")
    deliver(app)
    assert inbox.envelopes == [["carol@example.com"]]  # erin's address is not verified

    # A chosen member who leaves the workspace gets nothing more.
    assert olga.delete("/api/v1/orgs/acme/members/carol",
                       headers={"X-CSRF-Token": csrf(olga)}).status_code == 204
    change(olga, experiment["id"], "Changed again")
    deliver(app)
    assert len(inbox.messages) == 1
    latest = deliveries(olga, made.get_json()["id"])[0]
    assert latest["status"] == "delivered"
    assert "nobody to send it to" in latest["attempts"][0]["response_excerpt"]


def test_smtp_down_the_notification_is_retried_and_the_log_says_why(settings, tmp_path):
    port = free_port()
    hub = create_app({**settings, **mail_settings(port), "WEBHOOK_RETRY_SCALE": 0.0})
    try:
        with smtp_server(port) as (inbox, _):
            olga = signed_up_client(hub, "olga")
            set_email(olga, "olga@example.com")
            olga.get(path_of(link_in(inbox.messages[-1])))
        olga.put("/api/v1/me/email", json={"notifications": True},
                 headers={"X-CSRF-Token": csrf(olga)})
        hooks = "/api/v1/orgs/olga/workspaces/Personal/webhooks"
        hook = post_json(olga, hooks, {"kind": "email",
                                       "events": ["experiment.changed"]}).get_json()
        experiment = create(olga, "olga", "Personal")
        change(olga, experiment["id"], "Changed")
        assert deliver(hub) == 1  # the server is away: the attempt fails, the run goes on
        [delivery] = deliveries(olga, hook["id"])
        assert delivery["status"] == "pending"
        assert delivery["attempts"][0]["status_code"] is None
        assert "Connection" in delivery["attempts"][0]["error"]
        with smtp_server(port) as (inbox, _):
            assert deliver(hub) == 1
            assert inbox.envelopes == [["olga@example.com"]]
        [delivery] = deliveries(olga, hook["id"])
        assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 2
    finally:
        db.dispose(hub)


def test_without_smtp_an_email_notification_is_refused_clearly(settings):
    hub = create_app(settings)
    try:
        olga = signed_up_client(hub, "olga")
        answer = post_json(olga, "/api/v1/orgs/olga/workspaces/Personal/webhooks",
                           {"kind": "email", "events": ["run.deviated"]})
        assert answer.status_code == 409 and "sends no mail" in answer.get_json()["message"]
    finally:
        db.dispose(hub)


def test_recipients_are_for_email_notifications_only_and_can_be_changed(app, inbox, team):
    olga = team["olga"]
    hook = post_json(olga, HOOKS, {"kind": "email", "events": ["run.deviated"]}).get_json()
    headers = {"X-CSRF-Token": csrf(olga)}
    changed = olga.patch(f"/api/v1/webhooks/{hook['id']}", json={"recipients": ["bob"]},
                         headers=headers)
    assert changed.status_code == 200 and changed.get_json()["recipients"] == ["bob"]
    no_url = olga.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "https://x.example"},
                        headers=headers)
    assert no_url.status_code == 422
    back = olga.patch(f"/api/v1/webhooks/{hook['id']}", json={"recipients": []},
                      headers=headers)
    assert back.get_json()["recipients"] is None
    # Opting out on the settings page stops the mail to the members who opted in.
    bob = team["bob"]
    page = bob.post("/settings/email/notifications", data={"csrf_token": csrf(bob)})
    assert page.headers["Location"] == "/settings?email=unsubscribed"
    assert bob.get("/api/v1/me/email").get_json()["notifications"] is False


def test_the_notifications_page_adds_an_email_notification(app, inbox, team):
    olga = team["olga"]
    page = olga.get("/acme/ops/-/notifications").get_data(as_text=True)
    assert "New email notification" in page and 'action="/acme/ops/-/notifications/email"' in page
    refused = olga.post("/acme/ops/-/notifications/email", data={
        "recipients": "bob, dan", "events": ["run.deviated"], "csrf_token": csrf(olga)})
    assert refused.status_code == 422 and "not a member" in refused.get_data(as_text=True)
    made = olga.post("/acme/ops/-/notifications/email", data={
        "recipients": "bob, carol", "events": ["run.deviated"], "csrf_token": csrf(olga)})
    assert made.status_code == 201
    html = made.get_data(as_text=True)
    assert "Email notification added" in html and "Mail goes to bob, carol" in html
    assert "email: bob, carol" in html
