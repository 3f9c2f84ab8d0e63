"""The spec's scenarios 1-3 and its 12-step manual test, through the HTTP API."""

from __future__ import annotations

from tests.support.clients import OperatorClient, VisitorClient
from tests.support.server import ServerProcess

GREETING = "Привет! Чем могу помочь? 😊"
JOINED = "👨‍💼 Оператор Артём подключился к диалогу"
CLOSED = "✅ Тикет закрыт. Спасибо за обращение!"
REOPENED = "Тикет открыт повторно"


def test_scenario_1_first_contact(server: ServerProcess, operator: OperatorClient) -> None:
    customer = VisitorClient(server.url)
    out = customer.send("Здравствуйте, как оплатить заказ?")
    ticket = out["ticketId"]
    assert ticket.startswith("TKT-")
    assert out["message"]["sender_type"] == "customer"
    # The bot greeting is the ticket's first stored message, so both sides see one history.
    history = customer.messages()["messages"]
    assert [(m["sender_type"], m["message"]) for m in history] == [
        ("bot", GREETING),
        ("customer", "Здравствуйте, как оплатить заказ?"),
    ]
    # The ticket appears in "Тикеты" with one unread message.
    row = next(t for t in operator.tickets() if t["ticketId"] == ticket)
    assert row["status"] == "open" and row["unread"] == 1
    assert row["last_message"]["message"] == "Здравствуйте, как оплатить заказ?"
    # The operator opens it: the customer gets the join notice, the badge clears.
    opened = operator.open(ticket)
    assert [m["message"] for m in opened["messages"]][-1] == JOINED
    assert next(t for t in operator.tickets() if t["ticketId"] == ticket)["unread"] == 0
    operator.reply(ticket, "Здравствуйте! Оплату можно провести через ЮMoney...")
    last = customer.messages()["messages"][-1]
    assert last["sender_type"] == "admin"
    assert last["sender_name"] == "Артём"
    assert last["message"] == "Здравствуйте! Оплату можно провести через ЮMoney..."


def test_scenario_2_close(server: ServerProcess, operator: OperatorClient) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Вопрос")["ticketId"]
    operator.open(ticket)
    out = operator.close(ticket)
    assert out["ticket"]["status"] == "closed"
    assert out["message"]["message"] == CLOSED
    body = customer.messages()
    assert body["status"] == "closed"
    assert body["messages"][-1]["message"] == CLOSED
    assert ticket in [t["ticketId"] for t in operator.tickets(status="closed")]
    # Closing again posts nothing twice.
    again = operator.close(ticket)
    assert again["message"] is None
    assert customer.texts().count(CLOSED) == 1
    # It can be reopened.
    reopened = operator.reopen(ticket)
    assert reopened["ticket"]["status"] == "open"
    assert customer.texts()[-1] == REOPENED


def test_scenario_3_customer_returns(server: ServerProcess, operator: OperatorClient) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Первое сообщение")["ticketId"]
    operator.open(ticket)
    operator.reply(ticket, "Ответ")
    # Later: the same token and ticket id (from localStorage) load the whole history...
    seen = customer.messages()["messages"]
    assert [m["message"] for m in seen] == [GREETING, "Первое сообщение", JOINED, "Ответ"]
    # ... and only what is new after the last id.
    customer.send("Я вернулся")
    newer = customer.messages(after=seen[-1]["id"])["messages"]
    assert [m["message"] for m in newer] == ["Я вернулся"]
    ids = [m["id"] for m in customer.messages()["messages"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_manual_test_12_steps(server: ServerProcess, operator: OperatorClient) -> None:
    customer = VisitorClient(server.url)  # steps 1-2: open the site and the chat
    ticket = customer.send("Тест связи")["ticketId"]  # 3
    assert ticket in [t["ticketId"] for t in operator.tickets()]  # 4-5
    operator.open(ticket)  # 6
    assert JOINED in customer.texts()
    operator.reply(ticket, "Привет! Как дела?")  # 7
    assert customer.texts()[-1] == "Привет! Как дела?"  # 8-9
    operator.close(ticket)  # 10
    assert customer.texts()[-1] == CLOSED  # 11-12


def test_customer_message_reopens_closed_ticket(
    server: ServerProcess, operator: OperatorClient
) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("Привет")["ticketId"]
    operator.open(ticket)
    operator.close(ticket)
    out = customer.send("Ещё вопрос")
    assert out["ticketId"] == ticket
    body = customer.messages()
    assert body["status"] == "open"
    assert [m["message"] for m in body["messages"]][-3:] == [CLOSED, REOPENED, "Ещё вопрос"]
    # After a reopen the operator's join notice is posted again (once).
    operator.open(ticket)
    operator.open(ticket)
    assert customer.texts().count(JOINED) == 2


def test_join_notice_once_per_operator(server: ServerProcess, operator: OperatorClient) -> None:
    server.create_operator(
        "olga@trust.store", "Ольга", "olga-password-123", role="agent", gender="female"
    )
    olga = OperatorClient(server.url, "olga@trust.store", "olga-password-123")
    customer = VisitorClient(server.url)
    ticket = customer.send("Помогите")["ticketId"]
    for _ in range(3):
        operator.open(ticket)
    olga.open(ticket)
    olga.open(ticket)
    texts = customer.texts()
    assert texts.count(JOINED) == 1
    assert texts.count("👨‍💼 Оператор Ольга подключилась к диалогу") == 1
    olga.reply(ticket, "Я тоже здесь")
    assert customer.messages()["messages"][-1]["sender_name"] == "Ольга"


def test_unread_counts_follow_read_cursors(server: ServerProcess, operator: OperatorClient) -> None:
    customer = VisitorClient(server.url)
    ticket = customer.send("один")["ticketId"]
    customer.send("два")
    customer.send("три")
    assert next(t for t in operator.tickets() if t["ticketId"] == ticket)["unread"] == 3
    operator.open(ticket)
    assert next(t for t in operator.tickets() if t["ticketId"] == ticket)["unread"] == 0
    customer.send("четыре")
    rows = operator.tickets()
    assert rows[0]["ticketId"] == ticket  # latest activity first
    assert rows[0]["unread"] == 1


def test_ticket_ids_unique_in_one_second(server: ServerProcess) -> None:
    ids = {VisitorClient(server.url).send("hi")["ticketId"] for _ in range(20)}
    assert len(ids) == 20
