"""Settings, read from the environment with the prefix ``TRUSTDESK_``."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment can change. Defaults serve one shop on one machine."""

    model_config = SettingsConfigDict(env_prefix="TRUSTDESK_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    # Copies of the SQLite database kept in <data dir>/backups, one taken before each schema
    # upgrade (`trustdesk migrate` / `run`): the newest this many.
    backup_keep: int = Field(default=5, ge=1)
    redis_url: str | None = None
    # Start of every Redis key and channel: two TrustDesk installations sharing one Redis need
    # different ones (pub/sub channels are not separated by the URL's database number).
    redis_prefix: str = Field(default="trustdesk:", max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    secret_key: str | None = None
    # Origins allowed to embed the widget and to open operator sockets, comma separated.
    # The server's own origin is always allowed.
    allowed_origins: str = ""
    public_url: str = "http://localhost:3000"
    locale: str = "ru"
    cookie_secure: bool = False
    session_ttl_hours: int = Field(default=24 * 7, ge=1)
    # Limits (every input is bounded).
    max_message_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    max_name_chars: int = 100
    max_upload_bytes: int = 10 * 1024 * 1024
    visitor_upload_quota_bytes: int = 50 * 1024 * 1024
    visitor_uploads_per_minute: int = 10
    # Images are measured from their headers before any decoding (actions/imaging.py):
    # one frame's pixels, the pixels of all frames together, and the frame count are
    # bounded (a 12 MP photo and a 480x270 GIF of 100 frames pass; a few-KB GIF of
    # 2000x2000x200 does not). What passes is decoded in a worker process with this much
    # address space, killed after `image_decode_seconds`; `image_workers` at once.
    image_max_pixels: int = Field(default=40_000_000, ge=1)
    image_max_total_pixels: int = Field(default=50_000_000, ge=1)
    image_max_frames: int = Field(default=500, ge=1)
    image_decode_seconds: float = Field(default=10.0, gt=0)
    image_worker_memory_mb: int = Field(default=1024, ge=0)  # 0 = no limit
    image_workers: int = Field(default=2, ge=1)
    # Bytes in data/files no attachment refers to (a crash mid-upload) are swept at start
    # and every `files_sweep_minutes`, once older than the grace (a row may be committing).
    files_sweep_minutes: float = Field(default=60.0, gt=0)
    files_orphan_grace_minutes: float = Field(default=10.0, ge=0)
    # Send rate: a burst of `rate_burst` then `rate_per_minute` per visitor / per IP.
    visitor_rate_per_minute: int = 60
    visitor_rate_burst: int = 20
    ip_rate_per_minute: int = 300
    ip_rate_burst: int = 100
    # Login attempts per 15 minutes: this many for one email from one address, 5x this from
    # one address in all; past this many for an email from anywhere, an address that has
    # failed 3 times for it may not try it again (api/login_guard.py). Shared through Redis.
    login_attempts_per_15min: int = Field(default=10, ge=1)
    session_create_per_minute_per_ip: int = 30
    # "Forgot password" (actions/accounts.py): a link by email, valid this many minutes,
    # used once; at most this many requests per hour from one address (then 429) and 3 mails
    # per hour to one operator (further requests answer the same and send nothing).
    password_reset_minutes: int = Field(default=30, ge=1, le=24 * 60)
    password_resets_per_hour_per_ip: int = Field(default=10, ge=1)
    # New tickets per hour, per visitor (counted in the database) and per address (in the
    # process's memory), whatever opens them: a message or a file (actions/tickets.py).
    tickets_per_visitor_per_hour: int = Field(default=10, ge=1)
    tickets_per_ip_per_hour: int = Field(default=30, ge=1)
    # Open sockets at once (per process, api/ws.py): visitor sockets per address and per
    # visitor token, operator sockets per operator. Over it the socket closes with 4429.
    ws_per_ip: int = Field(default=20, ge=1)
    ws_per_visitor: int = Field(default=5, ge=1)
    ws_per_operator: int = Field(default=20, ge=1)
    # Ephemeral frames from a socket: read cursors written at most this often per socket
    # (the last value always is), typing and presence relayed at most a few a second.
    ws_read_writes_per_second: float = Field(default=4.0, gt=0)
    # A connection that has not sent a request's headers within this time is closed
    # (api/http_guard.py; uvicorn has no such limit of its own).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # Real time.
    typing_ttl_seconds: float = 6.0
    presence_ttl_seconds: float = 30.0
    hello_timeout_seconds: float = 10.0
    long_poll_max_seconds: int = 30
    create_first_operator: bool = True
    # Known customers: the shop signs its user id with this secret (HMAC-SHA256).
    identity_secret: str | None = None
    # Order lookup hook (actions/context.py): for a signed-in customer the dashboard's side
    # panel shows the orders this URL returns (POST {"user_id", "ts"}, header
    # X-TrustDesk-Signature: sha256=HMAC(identity secret, body)). Empty = no hook. Set by
    # whoever runs the server, so trusted; redirects are never followed.
    context_url: str = ""
    context_timeout_seconds: float = Field(default=2.0, gt=0, le=30)  # the whole call
    context_cache_seconds: float = Field(default=60.0, ge=0)  # per customer (errors: 10 s)
    # The demo storefront signs in a demo customer (to try the hook with `make run`). Never in
    # production: anyone who opens the page becomes that customer.
    demo_customer: bool = False
    # When nobody is there: e.g. "mon-fri 09:00-18:00; sat 10:00-14:00" (empty = always).
    business_hours: str = ""
    business_timezone: str = "Europe/Moscow"
    away_message: str = "Сейчас операторов нет на месте. Оставьте email — мы ответим письмом."
    # Email to customers who left an address (empty host = email off).
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_from: str = "Trust Store <support@localhost>"
    # Replies go to reply+<ticket>.<signature>@<this domain>; the inbound endpoint needs the secret.
    email_reply_domain: str = "localhost"
    inbound_secret: str | None = None
    # The email inbox channel (channels/email_inbox.py): an IMAP mailbox whose new threads
    # become tickets; operators' replies go out through the SMTP settings above. Empty host
    # = off. `imap_tls`: "ssl" (port 993) or "none" (a server on this machine only).
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str = ""
    imap_password: str = ""
    imap_tls: Literal["ssl", "none"] = "ssl"
    imap_folder: str = Field(default="INBOX", min_length=1, max_length=200)
    # IDLE is renewed this often; without IDLE (or after an error) the mailbox is polled.
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    imap_idle: bool = True
    imap_max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # The Telegram channel (channels/telegram.py): the bot's token from @BotFather (empty =
    # off). Long polling by default; with `telegram_webhook` the bot's webhook is set to
    # <public_url>/api/channels/telegram/webhook (HTTPS needed) with a secret header, and
    # polling takes over when it cannot be set. `telegram_api_url`: the Bot API's address.
    telegram_bot_token: str = ""
    telegram_webhook: bool = False
    telegram_api_url: str = "https://api.telegram.org"
    telegram_poll_seconds: int = Field(default=25, ge=1, le=50)
    # Replies to email / Telegram customers (channels/outbox.py): a failed send is retried
    # after channel_retry_seconds, doubling up to channel_retry_max_seconds, at most
    # channel_max_attempts times (the defaults: about 50 minutes), then given up.
    channel_retry_seconds: float = Field(default=5.0, gt=0)
    channel_retry_max_seconds: float = Field(default=600.0, gt=0)
    channel_max_attempts: int = Field(default=12, ge=1, le=100)
    # Web Push: the contact put in VAPID claims; local endpoints only for tests.
    push_contact: str = "mailto:support@localhost"
    push_allow_local_endpoints: bool = False
    # Privacy: closed tickets untouched for this many days are deleted (0 = keep for ever).
    retention_days: int = Field(default=0, ge=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # How often each process wakes the snoozed tickets whose time has come (actions/routing.py).
    snooze_interval_seconds: float = Field(default=30.0, gt=0)
    # How often each process looks for offline operators' tickets to hand over (same file).
    routing_interval_seconds: float = Field(default=15.0, gt=0)
    # Escalation of unanswered chats (actions/escalation.py): how often each process looks,
    # and the length of the setting's "minute" (tests make it a second).
    escalate_interval_seconds: float = Field(default=15.0, gt=0)
    escalate_unit_seconds: float = Field(default=60.0, gt=0)
    # The admins' audit log (actions/audit.py): entries kept this many days (0 = for ever).
    audit_days: int = Field(default=365, ge=0)
    # Webhooks: the hosts (host or host:port, comma separated; "*" = any) they may call.
    # Empty = no webhook can be created, so a dashboard admin cannot make the server probe
    # the internal network unless whoever runs the server allows it.
    webhook_hosts: str = ""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)  # first retry; doubles
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_poll_seconds: float = Field(default=2.0, gt=0)
    webhook_log_days: int = Field(default=30, ge=0)  # finished deliveries kept (0 = for ever)
    # Operations: Prometheus text at /metrics; logs as JSON lines or text ("auto": JSON
    # unless stderr is a terminal).
    metrics: bool = True
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'trustdesk.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @cached_property
    def origins(self) -> frozenset[str]:
        items = {o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()}
        items.add(self.public_url.rstrip("/"))
        return frozenset(items)
