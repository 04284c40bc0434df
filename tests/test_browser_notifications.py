"""The Notifications page in a real Chromium, against `chaoshub run` (its embedded worker sends
the deliveries): a webhook added from the form shows its secret once, a receiver on 127.0.0.1
that fails once gets the change on the second attempt, the log shows both codes, and the
Redeliver button sends it again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.experiment_data import experiment
from tests.helpers import running_hub, sign_in_browser, signed_in_session
from tests.run_data import wait_for
from tests.test_webhooks import verified
from tests.webhook_receiver import start as start_receiver
from tests.webhook_receiver import stop as stop_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver():
    found = start_receiver()
    yield found
    stop_receiver(found)


def test_a_webhook_added_on_the_page_is_delivered_and_redelivered(page, tmp_path, receiver):
    receiver.codes = [500, 200]
    with running_hub(tmp_path, ALLOW_PRIVATE_TARGETS="true", WEBHOOK_RETRY_SCALE="0.0001",
                     WEBHOOK_POLL_SECONDS="0.2") as url:
        alice = signed_in_session(url, "alice")
        made = alice.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                          json=experiment())
        assert made.status_code == 201, made.text
        sign_in_browser(page, url, "alice")
        page.goto(f"{url}/alice/Personal/-/settings")
        page.get_by_role("link", name="Notifications").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
        expect(page.get_by_test_id("no-webhooks")).to_be_visible()

        page.get_by_role("textbox", name="URL").fill(receiver.url)
        page.get_by_label("experiment.changed").check()
        page.get_by_role("button", name="Add the webhook").click()
        secret = page.get_by_test_id("secret").input_value()
        assert secret.startswith("whsec_")
        expect(page.get_by_test_id("webhook")).to_have_count(1)
        page.goto(f"{url}/alice/Personal/-/notifications")
        assert secret not in page.content()  # shown once, never again

        changed = alice.put(f"{url}/api/v1/experiments/{made.json()['id']}",
                            json={**experiment(), "title": "Changed from the API"})
        assert changed.status_code == 200, changed.text
        wait_for(lambda: len(receiver.received) == 2, 30, "the second attempt")
        body = verified(secret, receiver.received[1])
        assert body["type"] == "experiment.changed"
        assert body["data"]["experiment"]["title"] == "Changed from the API"

        page.get_by_role("link", name="Deliveries").click()
        delivery = page.get_by_test_id("delivery")
        expect(delivery).to_have_count(1)
        expect(delivery.get_by_test_id("delivery-status")).to_have_text("delivered")
        expect(delivery.get_by_test_id("attempt-code")).to_have_text(["500", "200"])

        delivery.get_by_role("button", name="Redeliver").click()
        expect(page.get_by_role("status")).to_contain_text("Sent again")
        wait_for(lambda: len(receiver.received) == 3, 30, "the redelivery")
        page.reload()
        expect(page.get_by_test_id("attempt-code")).to_have_text(["500", "200", "200"])
        assert verified(secret, receiver.received[2])["data"] == body["data"]
