"""The spec's user-visible texts (Russian is the product's default locale)."""

GREETING = "Привет! Чем могу помочь? 😊"
BOT_NAME = "Бот"
SYSTEM_NAME = "Система"
CUSTOMER_NAME = "Гость"


def operator_joined(name: str) -> str:
    return f"👨‍💼 Оператор {name} подключился к диалогу"


TICKET_CLOSED = "✅ Тикет закрыт. Спасибо за обращение!"
TICKET_REOPENED = "Тикет открыт повторно"
