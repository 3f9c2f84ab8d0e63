"""The WebSocket protocol's frames, as pydantic models: the one place for wire types.

docs/protocol.md is rendered from these models (`trustdesk protocol-doc`), and a test
fails when the two differ, so the document cannot drift from the code. The socket tests
validate every frame the server sends against `ServerFrame`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from trustdesk.wire import Message, TicketSummary


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------- client -> server


class Hello(Frame):
    """First frame on /ws/visitor, within 10 s (else the socket closes with 4408)."""

    type: Literal["hello"]
    token: str = Field(description="the visitor token from POST /api/support/session")
    ticketId: str | None = Field(description="the ticket to follow, or null")  # noqa: N815
    since: int = Field(ge=0, description="the highest message id the client already has")
    page_url: str | None = Field(default=None, description="the shop page the widget is on")


class OperatorHello(Frame):
    """First frame on /ws/operator (the session cookie authenticated the handshake)."""

    type: Literal["hello"]
    since: int = Field(
        ge=0, description="the id of the last message the socket sent (0: from the start)"
    )


class Send(Frame):
    """Visitor: post a message (idempotent on client_msg_id, like HTTP send-message)."""

    type: Literal["send"]
    message: str
    client_msg_id: str = Field(min_length=1, max_length=64)
    new_ticket: bool = Field(default=False, description="start a new ticket even if one is open")
    page_url: str | None = Field(
        default=None, description="the shop page now (routing rules, when a ticket starts)"
    )
    team: str | None = Field(
        default=None, description="the embed tag's data-team (routing rules, when a ticket starts)"
    )


class Typing(Frame):
    """Visitor: typing started or stopped (expires by itself after the server's TTL)."""

    type: Literal["typing"]
    active: bool


class OperatorTyping(Frame):
    type: Literal["typing"]
    ticketId: str  # noqa: N815
    active: bool


class OperatorSend(Frame):
    """Operator: reply to a ticket (or write a private note), as `POST
    /api/admin/support/reply` (`/note`) does; idempotent on client_msg_id. Answered by `ack`,
    or by `error` naming the client_msg_id. A client that gets neither (the socket
    dropped) sends it again, on the socket or over HTTP, with the same client_msg_id."""

    type: Literal["send"]
    ticketId: str  # noqa: N815
    message: str
    client_msg_id: str = Field(min_length=1, max_length=64)
    note: bool = Field(default=False, description="a private note (never sent to the widget)")


class Read(Frame):
    """Visitor: read up to this message id."""

    type: Literal["read"]
    last_read_id: int = Field(ge=0)


class OperatorRead(Frame):
    type: Literal["read"]
    ticketId: str  # noqa: N815
    last_read_id: int = Field(ge=0)


class Visibility(Frame):
    """Operator: the dashboard tab was hidden or shown (hidden tabs get browser push)."""

    type: Literal["visibility"]
    visible: bool


class Ping(Frame):
    type: Literal["ping"]


# --------------------------------------------------------------- server -> client


class Ready(Frame):
    """Visitor socket accepted; replayed messages (id > since) follow, then live frames."""

    type: Literal["ready"]
    ticketId: str | None  # noqa: N815
    status: Literal["open", "closed"] | None
    operators_online: int
    admin_last_read_id: int


class OperatorInfo(Frame):
    id: int
    name: str
    online: bool


class OperatorReady(Frame):
    type: Literal["ready"]
    operators: list[OperatorInfo]


class MessageFrame(Frame):
    """A stored message. Clients key messages by id: a repeated id is ignored."""

    type: Literal["message"]
    message: Message


class Ack(Frame):
    """Reply to `send` (both sockets): the stored message (the same one again for a retried
    id)."""

    type: Literal["ack"]
    client_msg_id: str | None
    ticketId: str  # noqa: N815
    message: Message


class TypingFrame(Frame):
    type: Literal["typing"]
    ticketId: str  # noqa: N815
    sender_type: Literal["customer", "admin"]
    name: str
    active: bool
    ttl: float = Field(description="seconds after which the client treats it as stopped")
    operator_id: int | None = None


class AssigneeName(Frame):
    name: str


class VisitorTicket(Frame):
    ticketId: str  # noqa: N815
    status: Literal["open", "closed"]
    assignee: AssigneeName | None


class TicketFrame(Frame):
    """Visitor: the ticket's status or assignee changed."""

    type: Literal["ticket"]
    ticket: VisitorTicket


class OperatorTicketFrame(Frame):
    """Operator: a ticket is new or changed; `unread` is this operator's count."""

    type: Literal["ticket"]
    ticket: TicketSummary


class ReadFrame(Frame):
    """A read receipt. To the widget: an operator has read the ticket up to
    `last_read_id` (by opening it, or by replying). To the dashboards: the customer has
    read up to it (`customer`), or an operator (`operator_id`) opened the ticket in another
    tab (`admin`; after a reply the ticket's summary carries the new unread count instead)."""

    type: Literal["read"]
    ticketId: str  # noqa: N815
    reader: Literal["customer", "admin"]
    last_read_id: int
    operator_id: int | None = None


class OperatorsPresence(Frame):
    """Visitor: how many operators are online."""

    type: Literal["presence"]
    operators_online: int


class OperatorRef(Frame):
    id: int
    name: str


class OperatorPresence(Frame):
    type: Literal["presence"]
    kind: Literal["operator"]
    operator: OperatorRef
    online: bool


class VisitorPresence(Frame):
    type: Literal["presence"]
    kind: Literal["visitor"]
    ticketId: str | None  # noqa: N815
    online: bool
    page_url: str | None
    user_agent: str | None


class Resync(Frame):
    """Too much was missed (or the fan-out recovered): reload state over HTTP."""

    type: Literal["resync"]


class SettingsChanged(Frame):
    """An admin saved the widget's settings (the dashboard shows what is stored now)."""

    type: Literal["settings_changed"]
    settings: dict[str, Any]


class OriginBlocked(Frame):
    """Admins only: the widget was opened on a site that is not allowed (yet)."""

    type: Literal["origin_blocked"]
    origin: str


class Pong(Frame):
    type: Literal["pong"]


class ErrorFrame(Frame):
    """A frame was refused; the socket stays open. `client_msg_id` names a refused send."""

    type: Literal["error"]
    code: str
    message: str
    client_msg_id: str | None = None
    retry_after: int | None = None


VisitorServerFrame = Annotated[
    Ready
    | MessageFrame
    | Ack
    | TypingFrame
    | TicketFrame
    | ReadFrame
    | OperatorsPresence
    | Pong
    | ErrorFrame,
    Field(union_mode="left_to_right"),
]
OperatorServerFrame = Annotated[
    OperatorReady
    | MessageFrame
    | Ack
    | TypingFrame
    | OperatorTicketFrame
    | ReadFrame
    | OperatorPresence
    | VisitorPresence
    | Resync
    | SettingsChanged
    | OriginBlocked
    | Pong
    | ErrorFrame,
    Field(union_mode="left_to_right"),
]
visitor_frames: TypeAdapter[Any] = TypeAdapter(cast(Any, VisitorServerFrame))
operator_frames: TypeAdapter[Any] = TypeAdapter(cast(Any, OperatorServerFrame))

SECTIONS: list[tuple[str, list[type[Frame]]]] = [
    ("Visitor socket `GET /ws/visitor`: client frames", [Hello, Send, Typing, Read, Ping]),
    (
        "Visitor socket: server frames",
        [
            Ready,
            MessageFrame,
            Ack,
            TypingFrame,
            TicketFrame,
            ReadFrame,
            OperatorsPresence,
            Pong,
            ErrorFrame,
        ],
    ),
    (
        "Operator socket `GET /ws/operator`: client frames",
        [OperatorHello, OperatorSend, OperatorTyping, OperatorRead, Visibility, Ping],
    ),
    (
        "Operator socket: server frames",
        [
            OperatorReady,
            MessageFrame,
            Ack,
            OperatorTicketFrame,
            TypingFrame,
            ReadFrame,
            OperatorPresence,
            VisitorPresence,
            Resync,
            SettingsChanged,
            OriginBlocked,
            Pong,
            ErrorFrame,
        ],
    ),
]

INTRO = """# TrustDesk real-time protocol

<!-- Generated from src/trustdesk/realtime/events.py by `trustdesk protocol-doc`.
     Do not edit by hand: tests/realtime/test_protocol_doc.py fails when it drifts. -->

Frames are JSON text frames of at most 64 KiB. The database is the truth; a frame is only
a wake-up. Each socket **subscribes first, then replays** every stored message after
`since`, then streams live frames, skipping messages it already sent: a client that
reconnects (with backoff) with the last message id it got misses nothing and sees nothing
twice. The widget follows one ticket, whose ids are in commit order: its `since` is the
highest id it has. The dashboard follows every ticket in commit order, which across
tickets is not always id order (see "Commit order without a lock" at the end): its
`since` is the id of the last message the socket sent. Typing and presence are never
stored and expire by themselves.

- The visitor authenticates in the first frame (`hello` with its token; never in the URL).
  Another visitor's ticket closes the socket with 4404; a bad token with 4401; no `hello`
  within 10 s with 4408.
- The operator socket is authenticated by the session cookie at the handshake, and the
  `Origin` header must be the server's own or an allowed origin: otherwise the handshake
  is refused (HTTP 403). Logout, deactivation or a password reset closes it (4401).
- Unknown frame types, bad JSON and frames over 64 KiB get an `error` frame; frames over
  1 MiB close the socket (1009). Neither stops the server.
- Too many open sockets (per address, per visitor token, per operator: settings
  `TRUSTDESK_WS_PER_*`) or new ones from one address close the socket with 4429 (an
  `error` frame `too_many_sockets` first): reconnect later, with backoff.
- `read` cursors are written at most a few times a second per socket, the last value
  always (a little later); `typing` is relayed at most every 0.3 s per socket and ticket
  (an unchanged `active: true` once a second), presence at most once a second per
  visitor, always ending in the latest state.
- Without WebSocket, `GET /api/support/messages/{ticketId}?after=N&wait=25` long-polls the
  same cursor.

A `Message` is `{id, ticket_id, sender_type, sender_name, message, created_at, kind,
client_msg_id, operator_id}` (see `/api/openapi.json`); `kind: "note"` (private notes)
is only ever sent to operators.
"""


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("trustdesk.wire.", "")
    text = text.replace("trustdesk.realtime.events.", "").replace("NoneType", "null")
    text = text.replace("<class '", "").replace("'>", "")
    return text.replace(" | ", " or ")


COMMIT_ORDER = """
## Commit order without a lock

The dashboard's stream carries every message of every ticket, and a dashboard that
reconnects with the last message it got must get exactly the ones committed since: none
skipped, none twice. Ids are drawn when a message is inserted, not when it commits, so
with writers side by side (PostgreSQL) id 11 may commit before id 10. A stream in id
order would then send 11, and a dashboard resuming after 11 would never get 10. Until
issue 24 every message on PostgreSQL took one advisory lock held to commit, so that ids
committed in id order; the whole installation wrote one message at a time. Now:

1. Each message stores its transaction's id, `tx` (`pg_current_xact_id()`: 64 bits,
   never wraps), in the statement that inserts it (`support_messages.tx`; 0 on SQLite).
2. The stream's order is `(tx, id)`, and a read takes only rows with
   `tx < pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still running
   when the read's snapshot was taken (store/stream.py).
3. Why a row below that horizon can never be missed: every transaction with an id below
   the horizon has ended, committed or rolled back, and transaction ids are handed out
   in increasing order, so none below it can start later. The rows below it that the
   read sees are therefore all there will ever be. A reader that has taken every row up
   to `(tx, id)` and reads again from there gets each later row once, in one order, on
   every read and every process: nothing is skipped (each row is final before it can be
   read, and the ones before it are already there) and nothing repeats (the order is
   total and the cursor only moves forward).
4. A committed row at or above the horizon is held back until the older transactions
   end. The socket reads again when the next message event arrives, and while it holds
   a message back, on a timer (5 ms doubling to 0.5 s): the transaction holding the
   horizon need not be a message's (any write transaction in the cluster counts, so a
   long-running one there delays the dashboard's stream, never the widget's).
5. `since` is a message id: the server looks up its `tx`. The dashboard sends the id of
   the last message the socket sent (not the highest it has seen). A message id that is
   not stored (erased since) resumes after the nearest stored id below it, one past
   every id resumes at the horizon.
6. Per ticket nothing changed: the ticket's row lock is taken before its message id is
   drawn and held to commit, so a ticket's ids commit in id order. The widget resumes
   with the highest id it has, and each live event's `prev_id` chain is exact.
7. On SQLite one writer runs at a time (BEGIN IMMEDIATE): ids commit in id order and
   `tx` is 0, so the order is the id, and a dashboard sends a message whose id follows
   the last one sent straight from its event.
8. The webhook scan keeps its cursor the same way (the last message it queued, in this
   order).

Checked by tests/unit/test_stream_order.py (writers with random commit delays and
rollbacks, a transaction that holds the horizon back, a reader resuming from its last
message each time: the union is every committed message, without repeats; with the plain
id cursor it fails on PostgreSQL) and tests/scale/test_two_processes.py (dashboards on two
processes, one reconnecting half-way).
"""


def render_protocol_md() -> str:
    out = [INTRO]
    for title, models in SECTIONS:
        out.append(f"\n## {title}\n")
        for model in models:
            fields = model.model_fields
            kind = (
                getattr(fields["type"].annotation, "__args__", ("",))[0] if "type" in fields else ""
            )
            out.append(f"\n### `{kind}` ({model.__name__})\n")
            if model.__doc__:
                out.append(f"\n{' '.join(model.__doc__.split())}\n")
            out.append("\n| field | type | required | notes |\n|---|---|---|---|\n")
            for name, f in fields.items():
                required = "yes" if f.is_required() else "no"
                notes = f.description or ""
                out.append(f"| `{name}` | `{_type_name(f.annotation)}` | {required} | {notes} |\n")
    out.append(COMMIT_ORDER)
    return "".join(out)
