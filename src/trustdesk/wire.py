"""What travels both ways: the message and ticket shapes that the HTTP API (api/schemas.py)
and the sockets (realtime/events.py) both carry. Neutral ground, so the real-time layer
does not import the API layer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class AttachmentInfo(BaseModel):
    id: str
    name: str
    mime: str
    kind: Literal["image", "file", "audio"]
    size: int
    width: int | None = None
    height: int | None = None


class Notice(BaseModel):
    """A system notice's code and arguments (actions/texts.py): clients word it in their
    locale; `message` keeps the Russian sentence for everyone else."""

    code: str
    args: dict[str, str | None] = {}


class Message(BaseModel):
    id: int
    ticket_id: str
    sender_type: Literal["customer", "admin", "system", "bot"]
    sender_name: str
    message: str
    created_at: str
    kind: Literal["text", "note", "file", "voice"] = "text"
    client_msg_id: str | None = None
    operator_id: int | None = None
    attachment: AttachmentInfo | None = None
    notice: Notice | None = None


class LabelOut(BaseModel):
    """A label as tickets carry it (api/labels.py; actions/labels.py)."""

    id: int
    name: str
    color: str = Field(description="#rrggbb")


class Assignee(BaseModel):
    id: int
    name: str


class TeamRef(BaseModel):
    id: int
    name: str


class VisitorInfo(BaseModel):
    online: bool
    page_url: str | None
    user_agent: str | None


class Rating(BaseModel):
    score: int
    comment: str | None


class TicketSummary(BaseModel):
    ticketId: str  # noqa: N815
    status: Literal["open", "closed"]
    created_at: str
    updated_at: str
    unread: int
    last_message: Message | None
    customer_name: str  # what to show: name, else email, else "Гость #N"
    customer_own_name: str | None = None  # the name itself (None: never given or cleared)
    customer_email: str | None = None
    customer_id: str | None = Field(default=None, description="the shop's verified user id")
    rating: Rating | None = None
    assignee: Assignee | None
    visitor: VisitorInfo
    customer_last_read_id: int
    priority: str = "normal"  # low | normal | high | urgent
    snoozed_until: str | None = None  # snoozed: out of the open list until then
    team: TeamRef | None = None  # the team ("Отдел") handling it (api/teams.py)
    channel: str = "web"  # web | email | telegram (channels/)
    # Waiting for an operator's answer since (the customer's first unanswered message;
    # actions/escalation.py); None: answered, or not the customer's turn.
    waiting_since: str | None = None
    my_last_read_id: int
    labels: list[LabelOut] = []
