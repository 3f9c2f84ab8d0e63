"""The spec's user-visible texts (Russian is the product's default locale).

System notices are stored twice over: as the Russian sentence (`message`: what old clients,
webhooks, email and every export show) and as a code with arguments (`notice`), from which
the dashboard and the widget word them in their own locale (web/admin/i18n-ru.js, i18n-en.js
`notice.<code>`, web/widget/i18n.js NOTICES_EN). Every notice code lives here: a new one
gets a Russian wording below and an English one in both front-end tables.
"""

from __future__ import annotations

from typing import Any

GREETING = "Привет! Чем могу помочь? 😊"
BOT_NAME = "Бот"
SYSTEM_NAME = "Система"

GENDERS = frozenset({"female", "male"})

# A notice as stored and sent: {"code": ..., "args": {...}} (args: short strings or None).
Notice = dict[str, Any]


def _verb(gender: str | None, male: str, female: str) -> str:
    """The past-tense verb agreeing with an operator's gender. Unset reads as the spec's own
    wording ("Оператор Артём подключился к диалогу"), the masculine: Russian's default, and
    what every notice said before operators had a gender."""
    return female if gender == "female" else male


def operator_joined(name: str, gender: str | None = None) -> str:
    verb = _verb(gender, "подключился", "подключилась")
    return f"👨‍💼 Оператор {name} {verb} к диалогу"


def ticket_taken(actor: str, gender: str | None) -> str:
    verb = _verb(gender, "взял", "взяла")
    return f"{actor} {verb} тикет"


def ticket_assigned(actor: str, gender: str | None, target: str) -> str:
    verb = _verb(gender, "назначил", "назначила")
    return f"{actor} {verb} тикет: {target}"


def ticket_unassigned(actor: str, gender: str | None) -> str:
    verb = _verb(gender, "снял", "сняла")
    return f"{actor} {verb} назначение"


def guest_name(n: int) -> str:
    """A customer with neither name nor email (actions/customers.py display_name)."""
    return f"Гость #{n}"


TICKET_CLOSED = "✅ Тикет закрыт. Спасибо за обращение!"
TICKET_REOPENED = "Тикет открыт повторно"


def ticket_merged(src: str, dst: str) -> str:
    return f"🔗 Тикет {src} объединён с {dst}"


PRIORITY_RU = {"low": "низкий", "normal": "обычный", "high": "высокий", "urgent": "срочный"}


def priority_changed(actor: str, gender: str | None, priority: str) -> str:
    verb = _verb(gender, "изменил", "изменила")
    shown = PRIORITY_RU.get(priority, priority)
    return f"{actor} {verb} приоритет: {shown}"


def ticket_snoozed(actor: str, gender: str | None, until: str) -> str:
    """`until`: ISO 8601 (the dashboard shows it in the reader's time zone)."""
    from datetime import UTC, datetime

    when = datetime.fromisoformat(until).astimezone(UTC).strftime("%d.%m.%Y %H:%M UTC")
    verb = _verb(gender, "отложил", "отложила")
    return f"⏸ {actor} {verb} тикет до {when}"


SNOOZE_ENDED = {
    "time": "⏰ Время отложенного тикета пришло: он снова в работе",
    "customer": "⏰ Клиент написал: отложенный тикет снова в работе",
    "operator": "Тикет больше не отложен",
}


def team_changed(actor: str, gender: str | None, team: str) -> str:
    verb = _verb(gender, "перевёл", "перевела")
    return f"{actor} {verb} тикет в отдел {team}"


def team_cleared(actor: str, gender: str | None) -> str:
    verb = _verb(gender, "убрал", "убрала")
    return f"{actor} {verb} отдел у тикета"


# code -> the Russian sentence from the notice's args (the stored `message`).
_RU: dict[str, Any] = {
    "operator_joined": lambda a: operator_joined(a["name"], a.get("gender")),
    "ticket_taken": lambda a: ticket_taken(a["actor"], a.get("gender")),
    "ticket_assigned": lambda a: ticket_assigned(a["actor"], a.get("gender"), a["target"]),
    "ticket_unassigned": lambda a: ticket_unassigned(a["actor"], a.get("gender")),
    "ticket_closed": lambda a: TICKET_CLOSED,
    "ticket_reopened": lambda a: TICKET_REOPENED,
    "ticket_merged": lambda a: ticket_merged(a["from"], a["into"]),
    "priority_changed": lambda a: priority_changed(a["actor"], a.get("gender"), a["priority"]),
    "ticket_snoozed": lambda a: ticket_snoozed(a["actor"], a.get("gender"), a["until"]),
    "snooze_ended": lambda a: SNOOZE_ENDED[a.get("by") or "time"],
    # What the widget suggested before the customer asked (actions/kb.py).
    "kb_suggested": lambda a: f"📚 Перед вопросом клиенту предлагались статьи: {a['titles']}",
    "kb_opened": lambda a: (
        f"📚 Клиент открывал статью «{a['chosen']}». Предлагались: {a['titles']}"
    ),
    "kb_not_helped": lambda a: (
        f"📚 Клиент прочитал статью «{a['chosen']}»: не помогло. Предлагались: {a['titles']}"
    ),
    "team_routed": lambda a: f"Отдел по правилу маршрутизации: {a['team']}",
    "team_changed": lambda a: team_changed(a["actor"], a.get("gender"), a["team"]),
    "team_cleared": lambda a: team_cleared(a["actor"], a.get("gender")),
    "ticket_auto_assigned": lambda a: f"Тикет назначен автоматически: {a['target']}",
    "ticket_reassigned": lambda a: (
        f"{a['previous']} не в сети: тикет передан оператору {a['target']}"
    ),
    "ticket_released": lambda a: f"{a['previous']} не в сети: тикет снова без ответственного",
    # channels/: an auto-reply or bounce on a ticket (noted, never answered); a reply that
    # could not be delivered through the ticket's channel.
    "channel_automatic": lambda a: f"↩ Автоответ или недоставка ({a['channel']}): {a['subject']}",
    "channel_send_failed": lambda a: f"⚠ Ответ не доставлен ({a['channel']}): {a['error']}",
}
NOTICE_CODES = frozenset(_RU)


def notice(code: str, **args: Any) -> tuple[str, Notice]:
    """A notice: its Russian sentence (stored as the message) and its code with args."""
    return _RU[code](args), {"code": code, "args": args}


# ---------------------------------------------------------------- escalation (operators)

TELEGRAM_LINKED = "Готово: сюда будут приходить уведомления о пропущенных чатах TrustDesk."
TELEGRAM_LINK_EXPIRED = "Код не подошёл или устарел: нажмите «Подключить Telegram» ещё раз."
PUSH_TEST = "Проверка push: уведомления на этом устройстве работают."


def escalation_line(number: str, minutes: int) -> str:
    """The push title, email subject and Telegram line of an escalation step."""
    return f"Клиент ждёт ответа {minutes} мин · {number}"
