"""In Chromium, against a real hub sending to a real SMTP server: an address set on the
settings page (with the current password) and verified by its link, a new password chosen there
(the address told, another browser signed out), then "Forgot password?" on the sign-in page, the
link from the mail, a new password, and signing in with it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.helpers import running_hub, sign_in_browser, sign_up_over_http
from tests.mail_server import LINK, bodies, link_in, mail_settings, smtp_server

NEW_PASSWORD = "a brand new passphrase"
SETTINGS_PASSWORD = "a passphrase chosen in the settings"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with smtp_server() as (inbox, port):
        env = {key: str(value) for key, value in mail_settings(port).items()}
        with running_hub(tmp_path_factory.mktemp("reset-hub"), MAIL_DELIVERY_SECONDS="0.05",
                         **env) as url:
            sign_up_over_http(url, "ada")
            yield url, inbox


@pytest.mark.e2e
def test_verify_an_address_then_reset_the_password_through_the_mailed_link(page, hub, tmp_path):
    url, inbox = hub
    sign_in_browser(page, url, "ada")
    page.goto(f"{url}/settings")
    assert page.get_by_test_id("email-status").inner_text() == "No address yet."
    email_form = page.get_by_test_id("email-form")
    email_form.get_by_label("Email address").fill("ada@example.com")
    # A wrong current password: refused beside its field, the address typed kept.
    email_form.get_by_label("Current password").fill("not my password at all")
    email_form.get_by_role("button", name="Save and verify").click()
    current = page.get_by_test_id("email-form").get_by_label("Current password")
    assert current.get_attribute("aria-invalid") == "true"
    assert page.locator("#email-current-error").text_content() == \
        "this is not your current password"
    assert "No address yet." == page.get_by_test_id("email-status").inner_text()
    email_form = page.get_by_test_id("email-form")
    assert email_form.get_by_label("Email address").input_value() == "ada@example.com"
    current.fill(PASSWORD)
    email_form.get_by_role("button", name="Save and verify").click()
    page.wait_for_url(f"{url}/settings?email=sent")
    notice = page.get_by_test_id("settings-notice").inner_text()
    assert "We sent a link to ada@example.com" in notice
    assert "not verified" in page.get_by_test_id("email-status").inner_text()
    [verify_mail] = inbox.wait_for(1)
    page.goto(link_in(verify_mail))
    page.wait_for_url(f"{url}/settings?email=verified")
    assert page.get_by_test_id("email-status").inner_text().split() == [
        "ada@example.com", "verified"]

    # A new password in the settings, with the current one: another browser's session ends,
    # and the verified address is told (with no link that resets anything).
    other = page.context.browser.new_context().new_page()
    sign_in_browser(other, url, "ada")
    password_form = page.get_by_test_id("password-form")
    password_form.get_by_label("Current password").fill(PASSWORD)
    password_form.get_by_label("New password").fill(SETTINGS_PASSWORD)
    password_form.get_by_role("button", name="Save password").click()
    page.wait_for_url(f"{url}/settings?password=set")
    assert "other sessions have ended" in page.get_by_test_id("settings-notice").inner_text()
    notice_mail = inbox.wait_for(2)[1]
    assert notice_mail["Subject"] == "Your ChaosHub password was changed"
    assert not any(LINK.search(body) for body in bodies(notice_mail))
    other.goto(f"{url}/settings")
    other.wait_for_url(f"{url}/signin?next=/settings")
    other.context.close()

    # Another browser, signed out, that forgot the password.
    visitor = page.context.browser.new_context().new_page()
    visitor.goto(f"{url}/signin")
    visitor.get_by_role("link", name="Forgot password?").click()
    visitor.wait_for_url(f"{url}/password/forgot")
    visitor.get_by_label("Username or email").fill("ada@example.com")
    visitor.get_by_role("button", name="Send me a link").click()
    assert "If an account matches, we sent a link" in visitor.get_by_test_id(
        "reset-sent").inner_text()
    visitor.screenshot(path=str(tmp_path / "reset-sent.png"), full_page=True)
    reset_mail = inbox.wait_for(3)[2]
    assert reset_mail["Subject"] == "Reset your ChaosHub password"

    link = link_in(reset_mail)
    visitor.goto(link)
    assert visitor.get_by_test_id("reset-username").inner_text() == "ada"
    visitor.get_by_label("New password").fill(NEW_PASSWORD)
    visitor.screenshot(path=str(tmp_path / "reset-form.png"), full_page=True)
    visitor.get_by_role("button", name="Save the new password").click()
    visitor.wait_for_url(f"{url}/signin?reset=1")
    assert "every session of the account has ended" in visitor.get_by_test_id(
        "reset-done").inner_text()

    # The old password no longer signs in; the new one does.
    visitor.get_by_label("Username").fill("ada")
    for old in (PASSWORD, SETTINGS_PASSWORD):
        visitor.get_by_label("Password").fill(old)
        visitor.get_by_role("button", name="Sign in").click()
        assert "wrong" in visitor.get_by_role("alert").inner_text()
    visitor.get_by_label("Password").fill(NEW_PASSWORD)
    visitor.get_by_role("button", name="Sign in").click()
    visitor.wait_for_url(f"{url}/")
    assert visitor.get_by_test_id("viewer").inner_text() == "ada"

    # The first browser's session ended with the reset.
    page.goto(f"{url}/settings")
    page.wait_for_url(f"{url}/signin?next=/settings")

    # The link works once: a clear page, and a way to ask again.
    answer = visitor.goto(link)
    assert answer.status == 410
    assert "used already" in visitor.get_by_role("alert").inner_text()
    visitor.get_by_role("link", name="Ask for a new link").click()
    visitor.wait_for_url(f"{url}/password/forgot")
    visitor.context.close()
