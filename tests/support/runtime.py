"""The actions' runtime in the test's own process: the store, a memory hub, presence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trustdesk.actions.runtime import Runtime
from trustdesk.config import Settings
from trustdesk.realtime.hub import make_hub
from trustdesk.realtime.presence import make_presence
from trustdesk.store.db import Store


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """What the actions need, in this process: the store, a memory hub and presence."""
    hub = make_hub(None)
    rt = Runtime(settings, Store(settings, publish=hub.publish_many), hub, make_presence(None))
    try:
        yield rt
    finally:
        await hub.stop()
        await rt.store.dispose()
