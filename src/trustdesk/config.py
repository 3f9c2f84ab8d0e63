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
    # Send rate: a burst of `rate_burst` then `rate_per_minute` per visitor / per IP.
    visitor_rate_per_minute: int = 60
    visitor_rate_burst: int = 20
    ip_rate_per_minute: int = 300
    ip_rate_burst: int = 100
    login_attempts_per_15min: int = 10
    session_create_per_minute_per_ip: int = 30
    # Real time.
    typing_ttl_seconds: float = 6.0
    presence_ttl_seconds: float = 30.0
    hello_timeout_seconds: float = 10.0
    long_poll_max_seconds: int = 30
    create_first_operator: bool = True
    # Known customers: the shop signs its user id with this secret (HMAC-SHA256).
    identity_secret: str | None = None
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
    # Web Push: the contact put in VAPID claims; local endpoints only for tests.
    push_contact: str = "mailto:support@localhost"
    push_allow_local_endpoints: bool = False
    # Privacy: closed tickets untouched for this many days are deleted (0 = keep for ever).
    retention_days: int = Field(default=0, ge=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
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
