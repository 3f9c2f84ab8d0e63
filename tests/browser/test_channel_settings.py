"""Settings → Каналы in a real browser (channel-settings.js): the bot connected with its
token (getMe shows @username), the IMAP settings checked against a real Dovecot (a wrong
password in the server's words), saved, and the source badge saying where values come from."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_dashboard import login, watch_errors
from tests.support.dovecot import Dovecot, dovecot_available
from tests.support.server import ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, ServerProcess
from tests.support.telegram_api import TOKEN, BotApi

IMAP_USER = "inbox@trust.store"  # the Dovecot mailbox (tests/conftest.py imap)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not dovecot_available(), reason="dovecot-imapd not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, bot_api: BotApi) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("browser-chanset"),
        extra_env={
            "TRUSTDESK_TELEGRAM_API_URL": bot_api.url,
            "TRUSTDESK_TELEGRAM_POLL_SECONDS": "1",
        },
    )
    srv.create_operator(ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD, role="admin")
    srv.start()
    yield srv
    srv.stop()


def test_channels_page_connects_the_bot_and_checks_the_mailbox(
    server: ServerProcess, imap: Dovecot, bot_api: BotApi, new_page: Callable[..., Page]
) -> None:
    page = new_page(viewport={"width": 1280, "height": 1500})
    errors = watch_errors(page)
    login(page, server)
    page.goto(page.url.split("#")[0] + "#/settings")
    card = page.locator("#channel-settings")
    expect(card).to_be_visible()
    tg = card.locator(".chs-telegram")
    expect(tg.locator(".chs-badge")).to_have_text("из переменных окружения · выключено")

    # Telegram: a wrong token is refused at its field; the right one shows the bot
    tg.get_by_label("Токен бота (от @BotFather)").fill("999:" + "A" * 30)
    tg.get_by_role("button", name="Подключить").click()
    expect(tg.locator("#chs-telegram-bot_token-error")).to_contain_text("Unauthorized")
    tg.get_by_label("Токен бота (от @BotFather)").fill(TOKEN)
    tg.get_by_role("button", name="Подключить").click()
    expect(tg.locator(".chs-status")).to_have_text("Бот подключён: @trust_store_bot")
    expect(tg.locator(".chs-badge")).to_have_text("сохранено в панели · включено")
    token_box = tg.get_by_label("Токен бота (от @BotFather)")
    expect(token_box).to_have_value("")  # the token never comes back…
    expect(token_box).to_have_attribute("placeholder", "пусто — не менять")
    expect(tg.locator("#chs-telegram-bot_token-hint")).to_have_text(f"задан · …{TOKEN[-4:]}")
    assert TOKEN not in page.content()  # …not even in the page

    # IMAP: "Проверить" really logs in; a wrong password in the server's words
    box = card.locator(".chs-imap")
    box.get_by_label("Сервер").fill("127.0.0.1")
    box.get_by_label("Порт").fill(str(imap.port))
    box.get_by_label("Шифрование").select_option("none")
    box.get_by_label("Логин").fill(imap.user)
    box.get_by_label("Пароль").fill("wrong-password")
    box.get_by_role("button", name="Проверить").click()
    expect(box.locator(".chs-status")).to_contain_text("Ошибка:")
    expect(box.locator(".chs-status")).to_contain_text("uthentication")
    box.get_by_label("Пароль").fill(imap.password)
    box.get_by_role("button", name="Проверить").click()
    expect(box.locator(".chs-status")).to_contain_text("Успешно:")
    box.get_by_label("Порт").fill("70000")
    box.get_by_role("button", name="Сохранить").click()
    expect(box.locator("#chs-imap-port-error")).to_contain_text("1-65535")
    box.get_by_label("Порт").fill(str(imap.port))
    box.get_by_role("button", name="Сохранить").click()
    box = card.locator(".chs-imap")
    expect(box.locator(".chs-status")).to_have_text("Сохранено.")
    expect(box.locator(".chs-badge")).to_have_text("сохранено в панели · включено")
    expect(
        box.get_by_role("button", name="Вернуть значения из переменных окружения")
    ).to_be_visible()
    card.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(SCREENSHOTS / "channel-settings.png"))

    # Отключить
    card.locator(".chs-telegram").get_by_role("button", name="Отключить").click()
    expect(card.locator(".chs-telegram .chs-status")).to_have_text("Бот отключён.")
    expect(card.locator(".chs-telegram .chs-badge")).to_have_text("сохранено в панели · выключено")
    assert not errors
