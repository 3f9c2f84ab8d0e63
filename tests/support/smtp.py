"""A real local SMTP server (aiosmtpd) that keeps what it receives, for tests."""

from __future__ import annotations

import email
import threading
from email.message import Message as EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.services import free_port


class Mailbox:
    """A real local SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refusing = False  # answer every mail with a temporary failure (451)
        self.arrived = threading.Condition()
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                if box.refusing:
                    return "451 4.3.0 mail system unavailable, try later"
                with box.arrived:
                    box.messages.append(email.message_from_bytes(envelope.content))
                    box.arrived.notify_all()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def wait_for(self, count: int, timeout: float = 15) -> list[EmailMessage]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), (
                f"expected {count} emails, got {len(self.messages)}"
            )
            return list(self.messages)
