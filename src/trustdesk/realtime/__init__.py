"""Real-time delivery: the hub (topics and events) and ephemeral presence."""

from trustdesk.realtime.hub import (
    RESYNC_EVENT,
    Hub,
    MemoryHub,
    Subscription,
    SubscriptionClosed,
    make_hub,
)
from trustdesk.realtime.presence import MemoryPresence, Presence, make_presence

__all__ = [
    "RESYNC_EVENT",
    "Hub",
    "MemoryHub",
    "MemoryPresence",
    "Presence",
    "Subscription",
    "SubscriptionClosed",
    "make_hub",
    "make_presence",
]
