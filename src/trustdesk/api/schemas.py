"""Wire types of the HTTP API: one place, used for validation and for /api/openapi.json.
The message and ticket shapes the sockets carry too live in trustdesk/wire.py."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from trustdesk import wire

# The shared wire types (trustdesk/wire.py), under their names here too: `s.Message`.
Assignee = wire.Assignee
AttachmentInfo = wire.AttachmentInfo
LabelOut = wire.LabelOut
Message = wire.Message
Notice = wire.Notice
Rating = wire.Rating
TeamRef = wire.TeamRef
TicketSummary = wire.TicketSummary
VisitorInfo = wire.VisitorInfo

# Raw bounds are looser than the rules (trimming happens in the action), but every
# field is bounded before anything else looks at it.
RawText = Field(min_length=1, max_length=16_000)
TicketNumber = Field(min_length=1, max_length=40)
ClientMsgId = Field(default=None, min_length=1, max_length=64)


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, list | tuple):
        return any(_has_nul(x) for x in v)
    if isinstance(v, dict):
        return any(_has_nul(k) or _has_nul(x) for k, x in v.items())
    return False


class In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)
    # Message text has its own rule (control characters are stripped by clean_text);
    # every other string with a NUL is refused here: PostgreSQL cannot store one.
    nul_stripped_fields: ClassVar[frozenset[str]] = frozenset({"message"})

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any, info: ValidationInfo) -> Any:
        if info.field_name not in cls.nul_stripped_fields and _has_nul(v):
            raise ValueError("NUL characters are not allowed")
        return v


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class SessionOut(BaseModel):
    token: str
    visitor_id: str


class SessionIn(In):
    page_url: str | None = Field(default=None, max_length=2048)


class SendMessageIn(In):
    message: str = RawText
    ticketId: str | None = Field(default=None, min_length=1, max_length=40)  # noqa: N815
    client_msg_id: str | None = ClientMsgId
    new_ticket: bool = Field(
        default=False, strict=True, description="start a new ticket even if one is open"
    )
    # Routing hints for a ticket this message starts (actions/routing.py, actions/teams.py).
    page_url: str | None = Field(default=None, max_length=2048)
    team: str | None = Field(default=None, max_length=64, description="the embed's data-team")


class SendMessageOut(BaseModel):
    ticketId: str  # noqa: N815
    message: Message


class MessagesOut(BaseModel):
    ticketId: str  # noqa: N815
    status: Literal["open", "closed"]
    messages: list[Message]


class VisitorReadIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    last_read_id: int = Field(strict=True, ge=0, le=2**62)


class StatusOut(BaseModel):
    operators_online: int
    within_hours: bool
    away_message: str | None
    greeting: str = ""  # the first message a new chat shows (the bot); "" for none
    email_enabled: bool


class IdentifyIn(In):
    user_id: str = Field(min_length=1, max_length=128)
    expires: int = Field(
        strict=True, ge=0, le=2**40, description="unix seconds; the signature's expiry"
    )
    hash: str = Field(
        min_length=64,
        max_length=64,
        pattern="^[0-9a-fA-F]{64}$",
        description='hex HMAC-SHA256(shop secret, "<user_id>:<expires>")',
    )
    name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254)


class IdentifyOut(BaseModel):
    verified: bool
    user_id: str


class VisitorTicket(BaseModel):
    ticketId: str  # noqa: N815
    status: Literal["open", "closed"]
    created_at: str
    updated_at: str
    last_message: Message | None
    rating: int | None


class VisitorTicketsOut(BaseModel):
    tickets: list[VisitorTicket]


class ContactIn(In):
    email: str = Field(min_length=3, max_length=254)
    name: str | None = Field(default=None, max_length=100)


class RateIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    score: int = Field(strict=True, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


class RateOut(BaseModel):
    ticketId: str  # noqa: N815
    rating: int
    comment: str | None


class TranscriptIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    email: str | None = Field(default=None, max_length=254)


class TranscriptOut(BaseModel):
    sent_to: str


class InboundEmailIn(In):
    to: str = Field(min_length=3, max_length=512)
    from_: str = Field(alias="from", min_length=3, max_length=512)
    subject: str | None = Field(default=None, max_length=1000)
    text: str = Field(min_length=1, max_length=16_000)


class RelatedLastMessage(BaseModel):
    sender_type: str
    kind: str
    message: str  # at most 200 characters
    created_at: str


class RelatedTicket(BaseModel):
    """One of the customer's other tickets, in any channel (the side panel's "Клиент")."""

    ticketId: str  # noqa: N815
    status: Literal["open", "closed"]
    created_at: str
    updated_at: str
    channel: str = "web"  # web / email / telegram
    # why it is this customer's: "customer" (same browser or signed-in user) or "email"
    # (the same address given in the widget and writing by email)
    match: Literal["customer", "email"] = "customer"
    last_message: RelatedLastMessage | None = None


class RelatedOut(BaseModel):
    tickets: list[RelatedTicket]


class DayCount(BaseModel):
    date: str
    tickets: int


class LabelCount(LabelOut):
    tickets: int = Field(description="tickets created in the period that carry it")


class ReportOut(BaseModel):
    days: int
    tickets: int
    per_day: list[DayCount]
    first_response_seconds_median: float | None
    resolution_seconds_median: float | None
    rating_average: float | None
    ratings: int
    rating_counts: dict[str, int]
    labels: list[LabelCount] = []
    # Customer messages that waited N minutes unanswered, and of them answered after N
    # (actions/escalation.py); escalate_after_minutes 0: escalation off, nothing counted.
    missed: int = 0
    answered_late: int = 0
    escalate_after_minutes: int = 0


class Ok(BaseModel):
    ok: bool = True


# An operator's grammatical gender, for the notices about them (None: unset).
Gender = Literal["female", "male"] | None


class GenderIn(In):
    gender: Gender


class OperatorOut(BaseModel):
    id: int
    email: str
    name: str
    role: Literal["admin", "agent"]
    active: bool
    gender: Gender = None
    online: bool | None = None


class LoginIn(In):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class LoginOut(BaseModel):
    operator: OperatorOut
    csrf_token: str


class TicketsOut(BaseModel):
    tickets: list[TicketSummary]


class TicketOut(BaseModel):
    ticket: TicketSummary
    messages: list[Message]


class ReplyIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    message: str = RawText
    client_msg_id: str | None = ClientMsgId


class SystemMessageIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    message: str = RawText
    client_msg_id: str | None = ClientMsgId


class MessageOut(BaseModel):
    message: Message


class TicketActionOut(BaseModel):
    ticket: TicketSummary
    message: Message | None


class AssignIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    operator_id: int | None = Field(strict=True, default=None, ge=1, le=2**62)


class AssignOut(BaseModel):
    ticket: TicketSummary


class PriorityIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    priority: str = Field(max_length=16, description="low | normal | high | urgent")


class SnoozeIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    until: str | None = Field(default=None, max_length=40, description="ISO 8601; null: wake")


class RoutingSettingsBody(BaseModel):
    assign_on_first_reply: bool
    auto_assign: bool
    max_open_per_operator: int
    reassign_offline: bool
    offline_grace_seconds: int
    escalate_after_minutes: int  # 0: off (actions/escalation.py)


class RoutingSettingsOut(BaseModel):
    settings: RoutingSettingsBody


class OperatorReadIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    last_read_id: int = Field(strict=True, ge=0, le=2**62)


class OperatorsOut(BaseModel):
    operators: list[OperatorOut]


class OperatorCreateIn(In):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "agent"] = "agent"
    gender: Gender = None


class RoleIn(In):
    role: Literal["admin", "agent"]


class OperatorOneOut(BaseModel):
    operator: OperatorOut


class PasswordIn(In):
    password: str = Field(min_length=8, max_length=256)


class CannedIn(In):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w\-]+$")
    text: str = Field(min_length=1, max_length=4000)


class Canned(BaseModel):
    id: int
    name: str
    text: str


class CannedListOut(BaseModel):
    canned: list[Canned]


class CannedOneOut(BaseModel):
    canned: Canned


class PushKeyOut(BaseModel):
    public_key: str


class PushKeys(In):
    p256dh: str = Field(min_length=1, max_length=256)
    auth: str = Field(min_length=1, max_length=64)


class PushSubscribeIn(In):
    endpoint: str = Field(min_length=8, max_length=2048)
    keys: PushKeys


class PushUnsubscribeIn(In):
    endpoint: str = Field(min_length=8, max_length=2048)


class WidgetSettingsBody(BaseModel):
    title: str
    greeting: str
    color: str
    position: Literal["right", "left"]
    allowed_origins: list[str]
    away_message: str
    business_hours: str
    business_timezone: str


class WidgetSettingsOut(BaseModel):
    settings: WidgetSettingsBody


class ChannelSettingsOut(BaseModel):
    """Settings → Каналы: {"telegram": {...}, "imap": {...}, "smtp": {...}}, each with
    "source" ("env" | "dashboard"), "enabled", its fields, secrets as {"set", "last4"}."""

    channels: dict[str, dict[str, Any]]


class ChannelCheckOut(BaseModel):
    ok: bool
    detail: str  # what the server said, in its words
    username: str | None = None  # Telegram: the bot's @username


class BlockedOrigin(BaseModel):
    origin: str
    hits: int
    last_seen: str


class BlockedOriginsOut(BaseModel):
    origins: list[BlockedOrigin]


class SiteOut(BaseModel):
    allowed: bool


# ---------------------------------------------------------------- labels (api/labels.py)


class LabelsOut(BaseModel):
    labels: list[LabelCount]


class LabelOneOut(BaseModel):
    label: LabelCount


class LabelIn(In):
    # Raw bounds; actions/labels.py trims and applies the exact rule (1-40 characters).
    name: str = Field(min_length=1, max_length=100)
    color: str = Field(default="#6b7280", min_length=7, max_length=7)


class LabelPatchIn(In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    color: str | None = Field(default=None, min_length=7, max_length=7)


class TicketLabelIn(In):
    label_id: int = Field(ge=1, le=2**62)


class MergeIn(In):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=40)
    into: str = Field(min_length=1, max_length=40)


class TicketOneOut(BaseModel):
    ticket: TicketSummary


# ---------------------------------------------------------------- audit log (api/audit.py)


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor_id: int | None
    actor_name: str
    action: str
    target: str
    details: dict[str, Any]
    address: str


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next: int | None  # pass as `before` for the next (older) page


# ---------------------------------------------------------------- teams and rules (api/teams.py)


class TeamMemberOut(BaseModel):
    id: int
    name: str


class TeamFull(BaseModel):
    id: int
    name: str
    members: list[TeamMemberOut]
    open_tickets: int


class TeamsOut(BaseModel):
    teams: list[TeamFull]


class TeamOneOut(BaseModel):
    team: TeamFull


# A row id in a list (operators, rules): bounded as path ids are (api/admin.py RowId).
ListedId = Annotated[int, Field(ge=1, le=2**62)]


class TeamIn(In):
    # Raw bounds; actions/teams.py trims and applies the exact rule (1-40 characters).
    name: str = Field(min_length=1, max_length=100)
    members: list[ListedId] = Field(default=[], max_length=1000)


class TeamPatchIn(In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    members: list[ListedId] | None = Field(default=None, max_length=1000)


class TicketTeamIn(In):
    ticketId: str = TicketNumber  # noqa: N815
    team_id: int | None = Field(ge=1, le=2**62, description="null: no team")


class RuleOut(BaseModel):
    id: int
    position: int = Field(description="1: tried first")
    kind: Literal["url", "widget", "keywords"]
    pattern: str
    team: TeamRef


class RulesOut(BaseModel):
    rules: list[RuleOut]


class RuleOneOut(BaseModel):
    rule: RuleOut


class RuleIn(In):
    kind: str = Field(max_length=16, description="url | widget | keywords")
    pattern: str = Field(min_length=1, max_length=500)
    team_id: int = Field(ge=1, le=2**62)
    position: int | None = Field(default=None, ge=1, le=10_000)


class RulePatchIn(In):
    kind: str | None = Field(default=None, max_length=16)
    pattern: str | None = Field(default=None, min_length=1, max_length=500)
    team_id: int | None = Field(default=None, ge=1, le=2**62)


class RuleOrderIn(In):
    ids: list[ListedId] = Field(max_length=1000, description="every rule's id, first tried first")


class TeamMembersIn(In):
    members: list[ListedId] = Field(max_length=1000)
