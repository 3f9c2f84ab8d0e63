"""Tables. Storage is the truth; everything real-time follows from these rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite wants INTEGER PRIMARY KEY for its rowid alias; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())


class Base(DeclarativeBase):
    pass


class Visitor(Base):
    __tablename__ = "visitors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    page_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The shop's own user id, set only after a valid signed identity (HMAC) was shown.
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)

    # One customer across channels (actions/customers.py linked_visitors): the widget
    # visitors who gave an address, found by it whatever its case.
    __table_args__ = (Index("ix_visitors_email_lower", func.lower(email)),)


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Second factor (0006, actions/accounts.py): the TOTP secret, encrypted with a key
    # derived from the server's secret key; set at setup, in force once enabled_at is set.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last 30-second step whose code was accepted: the same code never works twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # "female" | "male" | None (unset: notices use wording that needs no gender).
    gender: Mapped[str | None] = mapped_column(String(8))


class PasswordReset(Base):
    """A "forgot password" link: only the SHA-256 of its token; single use, short-lived."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """One-time codes that stand in for the authenticator app (SHA-256 only)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OperatorSession(Base):
    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_sessions_operator", "operator_id"),)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    visitor_id: Mapped[str] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    # Bumped on every reopen, so "Оператор … подключился" is posted again afterwards.
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The last customer / operator / bot message that is not a note: the list's preview.
    last_public_message_id: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "low" | "normal" | "high" | "urgent" (actions/routing.py PRIORITIES).
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    # Snoozed: out of the open list until then; the periodic pass (actions/routing.py
    # wake_snoozed) clears it at the time with a note, as does a customer's message.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The team ("Отдел") handling it (0012, actions/teams.py). No foreign key: adding one
    # would rebuild the tickets table on SQLite; deleting a team clears it in code.
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    # Where the customer writes from: "web" (the widget), "email", "telegram" (channels/).
    channel: Mapped[str] = mapped_column(String(16), default="web", server_default="web")
    # Waiting for an answer (0014, actions/escalation.py): since the customer's first public
    # message after the last operator reply, and that message; cleared by an operator's
    # public reply and by closing (set and cleared by actions/messages.py post_message).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_message_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # The waiting list and the escalation pass: not snoozed, by the wait's start (an
        # equality then the range and the order, whatever the planner knows of the data).
        Index("ix_tickets_waiting", "snoozed_until", "waiting_since"),
        Index("ix_tickets_visitor", "visitor_id", "status"),
        Index("ix_tickets_updated", "updated_at"),
        Index("ix_tickets_snoozed", "snoozed_until"),
        Index("ix_tickets_team", "team_id"),
        # Each operator's open tickets: the per-operator limit of auto-assignment.
        Index("ix_tickets_assignee", "assignee_id", "status"),
    )


class SupportMessage(Base):
    __tablename__ = "support_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    sender_type: Mapped[str] = mapped_column(String(16))
    sender_name: Mapped[str] = mapped_column(String(100))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="text")
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    # A system notice's code and arguments as JSON text ({"code": ..., "args": {...}}, see
    # actions/texts.py), so each client words it in its own locale; None: shown as stored.
    notice: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # PostgreSQL: the writing transaction's id (pg_current_xact_id); SQLite: 0. The
    # operators' stream is read in (tx, id) order below the visibility horizon
    # (store/stream.py): commit order without a lock shared by every message.
    tx: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Joined: no second query per message list (most messages have no attachment).
    attachment: Mapped[Attachment | None] = relationship(lazy="joined", uselist=False)

    __table_args__ = (
        UniqueConstraint("ticket_id", "client_msg_id", name="uq_message_client_id"),
        Index("ix_messages_ticket_id", "ticket_id", "id"),
        Index("ix_messages_tx_id", "tx", "id"),
        # Never reuse an id, even after deletions: clients resume from "the last id I have".
        {"sqlite_autoincrement": True},
    )


class ReadCursor(Base):
    """(ticket, reader) -> last read message id. reader: "customer" or "op:<operator id>"."""

    __tablename__ = "read_cursors"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    reader: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_read_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketJoin(Base):
    """Which operator has joined a ticket in which epoch (one "подключился" per epoch)."""

    __tablename__ = "ticket_joins"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, default=0)


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushSubscription(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(256))
    auth: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---------------------------------------------------------------- integrations (0002)


class Webhook(Base):
    """An HTTP endpoint of the shop's own systems that hears of tickets and messages."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    # Signs every body (HMAC-SHA256); the receiver has it too, so it is kept as it is.
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[str] = mapped_column(String(256))  # comma separated
    include_notes: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(String(200))
    # Only messages after this id are delivered: a new webhook does not replay history.
    since_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: pending until the receiver answers 2xx (or attempts run out)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # Deleting a ticket (retention, a customer's erasure) deletes what would tell of it.
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / ok / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_ticket", "ticket_id"),
        # The id is the receiver's deduplication key: never reuse one.
        {"sqlite_autoincrement": True},
    )


class WebhookCursor(Base):
    """The one row (id 1) saying up to which message id events have been queued."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_message_id: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiToken(Base):
    """A scoped bearer token for the REST API. Only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise it
    scopes: Mapped[str] = mapped_column(String(256))  # comma separated
    # The token acts as this operator (replies carry their name).
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A file on a message. The bytes live in the file store under their sha256 (stored once)."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("support_messages.id", ondelete="CASCADE"), index=True
    )
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    visitor_id: Mapped[str | None] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # image / file / audio
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppSetting(Base):
    """What the shop owner sets in the dashboard, one JSON object per group ("widget").
    The environment gives the defaults; a stored value wins (actions/settings.py)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlockedOrigin(Base):
    """A site that opened the widget without being allowed: shown to admins, who can allow
    it with one click. Bounded (actions/settings.py keeps the most recent ones)."""

    __tablename__ = "blocked_origins"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# ---------------------------------------------------------------- labels (0007)


class Label(Base):
    """A tag operators put on tickets ("Доставка", "Возврат") to find and count them."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40))
    # The name lower-cased in Python: unique case-insensitively on both engines (SQLite's
    # lower() folds ASCII only, so "доставка" and "Доставка" would both pass a lower() index).
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    color: Mapped[str] = mapped_column(String(7))  # #rrggbb
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketLabel(Base):
    __tablename__ = "ticket_labels"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_ticket_labels_label", "label_id"),)


# ---------------------------------------------------------------- audit log (0008)


class AuditEntry(Base):
    """Who did what to the shop's security and data, written in the same transaction as
    the change (actions/audit.py record). Never holds a password, token or secret."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # No foreign key: the entry outlives whatever it names.
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[str] = mapped_column(Text)  # JSON object, bounded
    address: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_action", "action", "id"),)


# ---------------------------------------------------------------- help center (0011)


class KbArticle(Base):
    """A help-center article (actions/kb.py): Markdown as written, with its cleaned HTML
    and plain text made when it is saved (pages and snippets never re-render)."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    locale: Mapped[str] = mapped_column(String(2))  # "ru" | "en"
    slug: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(60), default="", server_default="")
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("locale", "slug", name="uq_kb_articles_locale_slug"),
        Index("ix_kb_articles_published", "published", "locale"),
    )


class KbTerm(Base):
    """The search index: one row per (stem, article), with the stem's weight in it (title
    words count more). Same table, same SQL, same ranking on SQLite and PostgreSQL."""

    __tablename__ = "kb_terms"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    weight: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_kb_terms_article", "article_id"),)


class KbEvent(Base):
    """What the widget showed a customer and what they chose: "helped" (deflection),
    "not_helped", "suggested" (a question sent with suggestions shown), "no_results"."""

    __tablename__ = "kb_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    # A customer's erasure (or their ticket's) takes their questions with it.
    visitor_id: Mapped[str | None] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    query: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        Index("ix_kb_events_kind_at", "kind", "at"),
        Index("ix_kb_events_article", "article_id"),
        Index("ix_kb_events_visitor", "visitor_id"),
        Index("ix_kb_events_ticket", "ticket_id"),
    )


# ---------------------------------------------------------------- teams and routing (0012)


class Team(Base):
    """A team ("Отдел": "Оплата", "Доставка"): operators who share a queue of tickets."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40))
    name_key: Mapped[str] = mapped_column(String(80), unique=True)  # as Label.name_key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    # Round-robin inside the team: the next ticket goes to the available member who was
    # given one longest ago (None: never).
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_team_members_operator", "operator_id"),)


class RoutingRule(Base):
    """Chooses a new ticket's team: the first rule (by position) that matches wins."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # url | widget | keywords
    pattern: Mapped[str] = mapped_column(String(500))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---------------------------------------------------------------- channels (0013)


class ChannelContact(Base):
    """A customer's address in a channel (an email address, a Telegram chat) -> the visitor
    row their tickets hang off. That visitor's token is random and never handed out: nobody
    can open these tickets in the widget by typing the address (channels/inbound.py)."""

    __tablename__ = "channel_contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254))  # lower-cased email / chat id
    visitor_id: Mapped[str] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_channel_contacts_address"),
        Index("ix_channel_contacts_visitor", "visitor_id"),
    )


class ChannelMessage(Base):
    """A message as the channel knows it (an email's Message-ID), in or out: the dedupe key
    of what came in (stored once, whatever the restarts) and the thread key of replies."""

    __tablename__ = "channel_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # support_messages.id
    direction: Mapped[str] = mapped_column(String(8))  # in / out / ignored
    subject: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_channel_messages_external"),
        Index("ix_channel_messages_ticket", "ticket_id"),
    )


class ChannelOutbox(Base):
    """An operator's message (or a closing notice) to deliver to a channel: written in the
    same transaction as the message (actions/messages.py), so a reply committed just before
    its process died is still sent; sent, retried with backoff, or given up by
    channels/outbox.py. `noted`: the ticket already has its one "could not send" note."""

    __tablename__ = "channel_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)  # support_messages.id
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    noted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_channel_outbox_due", "status", "next_attempt_at"),
        Index("ix_channel_outbox_ticket", "ticket_id", "id"),
        UniqueConstraint("message_id", name="uq_channel_outbox_message"),
    )


class ChannelState(Base):
    """One row per channel consumer: which process holds it (a lease, so one process polls)
    and its cursor (IMAP UIDVALIDITY and last UID, as JSON)."""

    __tablename__ = "channel_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---------------------------------------------------------------- escalation (0014)


class TicketWait(Base):
    """A customer's message that reached N minutes unanswered ("missed"), written by the
    escalation pass (actions/escalation.py): the report's missed / answered-late counts and
    the ladder's progress (`level`: 1 push, 2 email, 3 Telegram done)."""

    __tablename__ = "ticket_waits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)  # the first unanswered message
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    missed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("ticket_id", "message_id", name="uq_ticket_waits_message"),
        Index("ix_ticket_waits_started", "started_at"),
    )


class EscalationSend(Base):
    """One step of the ladder for one operator: claimed by inserting the row (unique key),
    so several processes and restarts send it once; a claim whose process died is taken
    again after `claimed_until`."""

    __tablename__ = "escalation_sends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    wait_id: Mapped[int] = mapped_column(ForeignKey("ticket_waits.id", ondelete="CASCADE"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))  # push / email / telegram
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # claimed/sent/failed
    claimed_until: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("wait_id", "operator_id", "step", name="uq_escalation_sends_step"),
        Index("ix_escalation_sends_operator", "operator_id"),
    )


class OperatorAlerts(Base):
    """An operator's opt-ins for "Уведомления о пропущенных" and their linked Telegram chat
    (no row: the defaults of actions/escalation.py)."""

    __tablename__ = "operator_alerts"

    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    sound: Mapped[bool] = mapped_column(Boolean, default=True)
    push: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(32))
    # "Подключить Telegram": SHA-256 of the one-time /start code, valid until expires.
    link_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
