"""Operator accounts in real Chromium: "Забыли пароль?" → the mail (real SMTP capture) →
the reset page → login; then turning two-factor login on and logging in with a code."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.api.test_customers import Mailbox
from tests.browser.conftest import shot
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess

pytestmark = pytest.mark.browser

EMAIL = "olga@trust.store"
OLD_PASSWORD = "olga's first password"  # noqa: S105 - test fixture
NEW_PASSWORD = "olga's brand new password"  # noqa: S105 - test fixture


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("browser-account"),
        extra_env={
            "TRUSTDESK_SMTP_HOST": "127.0.0.1",
            "TRUSTDESK_SMTP_PORT": str(mailbox.port),
            "TRUSTDESK_SMTP_STARTTLS": "false",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.create_operator(EMAIL, "Ольга", OLD_PASSWORD, role="agent")
    srv.start()
    yield srv
    srv.stop()


def password_login(page: Page, server: ServerProcess, password: str) -> None:
    page.goto(server.url + "/admin")
    page.locator("#login-email").fill(EMAIL)
    page.locator("#login-password").fill(password)
    page.get_by_role("button", name="Войти").click()


def inbox_shown(page: Page) -> None:
    expect(page.get_by_role("heading", name="Тикеты")).to_be_visible()


def test_forgot_reset_login_and_two_factor(
    new_page: Callable[..., Page], server: ServerProcess, mailbox: Mailbox
) -> None:
    page = new_page()
    page.goto(server.url + "/admin")
    page.get_by_role("button", name="Забыли пароль?").click()
    page.locator("#forgot-email").fill(EMAIL)
    page.get_by_role("button", name="Отправить ссылку").click()
    expect(page.get_by_role("alert")).to_contain_text("Ссылка действует 30 мин.")
    shot(page, "account-forgot")

    mail = mailbox.wait_for(1)[0]
    assert mail["To"] == EMAIL
    link = re.search(r"http://\S+/admin#/reset/\S+", mail.get_payload(decode=True).decode())
    assert link, mail.as_string()
    page = new_page()
    page.goto(link.group(0))
    expect(page.get_by_role("heading", name="Новый пароль")).to_be_visible()
    expect(page.locator("#reset-rule")).to_have_text("Не короче 8 и не длиннее 256 символов.")
    page.locator("#reset-password").fill("short")
    page.locator("#reset-again").fill("short")
    page.get_by_role("button", name="Сохранить пароль").click()
    expect(page.get_by_role("alert")).to_have_text("Не короче 8 и не длиннее 256 символов.")
    page.locator("#reset-password").fill(NEW_PASSWORD)
    page.locator("#reset-again").fill(NEW_PASSWORD)
    shot(page, "account-reset")
    page.get_by_role("button", name="Сохранить пароль").click()
    expect(page.get_by_role("alert")).to_have_text("Пароль изменён. Войдите с новым паролем.")
    assert "#/reset/" not in page.url  # the token left the address bar
    shot(page, "account-reset-done")

    page.locator("#login-email").fill(EMAIL)
    page.locator("#login-password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    inbox_shown(page)

    # Two-factor login, from the settings page's "Аккаунт" card.
    page.set_viewport_size({"width": 1280, "height": 1500})  # the whole card in the shots
    page.goto(server.url + "/admin#/settings")
    card = page.locator("#account-card")
    expect(card.get_by_role("heading", name="Аккаунт")).to_be_visible()
    card.get_by_role("button", name="Включить").click()
    expect(card.locator("img.totp-qr")).to_be_visible()
    secret = card.locator("#totp-secret").input_value()
    totp = pyotp.TOTP(secret)
    shot(page, "account-totp-setup")
    card.locator("#totp-confirm").fill("000000")
    card.get_by_role("button", name="Подтвердить и включить").click()
    expect(card.get_by_text("Код неверен или уже использован.")).to_be_visible()
    card.locator("#totp-confirm").fill(totp.now())
    card.get_by_role("button", name="Подтвердить и включить").click()
    expect(card.locator("#recovery-codes li")).to_have_count(10)
    shot(page, "account-recovery-codes")
    card.get_by_role("button", name="Я сохранил(а) коды").click()
    expect(card.get_by_text("Включён. Осталось кодов восстановления: 10.")).to_be_visible()

    # A new browser: the password alone leads to the code step, the code to the inbox.
    page = new_page()
    password_login(page, server, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Код подтверждения")).to_be_visible()
    shot(page, "account-totp-login")
    page.locator("#totp-code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Подтвердить").click()
    inbox_shown(page)
