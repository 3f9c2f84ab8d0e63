"""Logs as JSON lines (one object per line) or as plain text, for us and for uvicorn.

TRUSTDESK_LOG_FORMAT: "json", "text", or "auto" (the default): JSON when standard error
is not a terminal (a container, systemd, a pipe), readable text when it is.
TRUSTDESK_LOG_LEVEL: debug, info (default), warning, error.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

from trustdesk.config import Settings

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged too.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message", "taskName"}
)


class RedactQuery(logging.Filter):
    """Access log lines keep the path, never the query string: it can hold what people typed
    (an operator's search terms, an old client's upload caption or file name)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, sep, _ = args[2].partition("?")
            if sep:
                record.args = (args[0], args[1], f"{path}?[redacted]", args[3], args[4])
        return True


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "message", "pid", ...extra fields, "exc"?} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            args = record.args
            if len(args) == 5:
                out.update(
                    client=args[0],
                    method=args[1],
                    path=args[2],
                    http_version=args[3],
                    status=args[4],
                )
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return not sys.stderr.isatty()
    return settings.log_format == "json"


def log_config(settings: Settings) -> dict[str, Any]:
    """A logging.config dict for our loggers and uvicorn's (pass it as uvicorn's log_config)."""
    level = settings.log_level.upper()
    if use_json(settings):
        formatter: dict[str, Any] = {"()": JsonFormatter}
    else:
        formatter = {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"redact_query": {"()": RedactQuery}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {
                "handlers": [],
                "level": level,
                "propagate": True,
                "filters": ["redact_query"],
            },
        },
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(log_config(settings))
