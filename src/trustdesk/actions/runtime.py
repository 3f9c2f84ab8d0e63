"""What every action needs: settings, the store, the hub, presence and the file store."""

from __future__ import annotations

from dataclasses import dataclass

from trustdesk.config import Settings
from trustdesk.realtime.hub import Hub
from trustdesk.realtime.presence import Presence
from trustdesk.store.db import Store
from trustdesk.store.files import FileStore, file_store_for


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub
    presence: Presence
    file_store: FileStore | None = None

    @property
    def files(self) -> FileStore:
        """Attachment bytes: under the data directory unless another store was given."""
        if self.file_store is None:
            self.file_store = file_store_for(self.settings)
        return self.file_store
