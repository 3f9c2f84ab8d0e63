"""What every action needs: settings, the store, the hub and presence."""

from __future__ import annotations

from dataclasses import dataclass

from trustdesk.config import Settings
from trustdesk.realtime.hub import Hub
from trustdesk.realtime.presence import Presence
from trustdesk.store.db import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub
    presence: Presence
