"""The spec's user-visible texts (Russian is the product's default locale)."""

GREETING = "Привет! Чем могу помочь? 😊"
BOT_NAME = "Бот"
SYSTEM_NAME = "Система"


def operator_joined(name: str) -> str:
    return f"👨‍💼 Оператор {name} подключился к диалогу"


def guest_name(n: int) -> str:
    """A customer with neither name nor email (actions/customers.py display_name)."""
    return f"Гость #{n}"


TICKET_CLOSED = "✅ Тикет закрыт. Спасибо за обращение!"
TICKET_REOPENED = "Тикет открыт повторно"
