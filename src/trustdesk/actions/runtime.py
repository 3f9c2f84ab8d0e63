"""What every action needs: settings, the store, the hub, presence and the file store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustdesk.config import Settings
from trustdesk.realtime.hub import Hub
from trustdesk.realtime.presence import Presence
from trustdesk.store.db import Store
from trustdesk.store.files import FileStore, file_store_for

if TYPE_CHECKING:
    from trustdesk.actions.channel_settings import LiveChannels
    from trustdesk.actions.settings import LiveSettings


@dataclass
class Runtime:
    settings: Settings
    store: Store
    hub: Hub
    presence: Presence
    file_store: FileStore | None = None
    live_settings: LiveSettings | None = None
    # The channels' settings saved in the dashboard (actions/channel_settings.py): once
    # loaded, `settings` is the environment's with them over it, `env_settings` the former.
    env_settings: Settings | None = None
    live_channels: LiveChannels | None = None

    @property
    def live(self) -> LiveSettings:
        """The shop's widget settings as saved in the dashboard (actions/settings.py)."""
        if self.live_settings is None:
            from trustdesk.actions.settings import LiveSettings

            self.live_settings = LiveSettings(self.settings)
        return self.live_settings

    @property
    def files(self) -> FileStore:
        """Attachment bytes: under the data directory unless another store was given."""
        if self.file_store is None:
            self.file_store = file_store_for(self.settings)
        return self.file_store
