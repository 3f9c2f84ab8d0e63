"""A time limit on reading a request's headers, which uvicorn (0.54) does not have.

uvicorn times out an idle keep-alive connection after a response, but a connection that
sends nothing, or its headers a byte at a time, stays open for ever: about 1,000 silent
TCP connections used up a 1,024 descriptor limit and every other request failed. This is
uvicorn's own HTTP protocol with one timer more, from the connection's start (and again
after each response) until its headers are complete; `trustdesk run` serves with it.
A reverse proxy in front has its own (nginx `client_header_timeout`, Caddy
`timeouts.read_header`: docs/deployment.md).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trustdesk.config import Settings


class HeaderTimeout(HttpToolsProtocol):
    # Set by `header_timeout_protocol` in this process; a worker that uvicorn spawned
    # (--workers) imports the class anew and reads it from its settings (the environment).
    header_timeout: float | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm()
            self._arm()  # the next request's headers (idle: the keep-alive timeout first)

    def _arm(self) -> None:
        if HeaderTimeout.header_timeout is None:
            HeaderTimeout.header_timeout = Settings().header_timeout_seconds
        self._header_timer = self.loop.call_later(HeaderTimeout.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeout]:
    """The protocol class for `uvicorn.run(http=...)` with this header timeout. One class
    at module level, not one made here: uvicorn pickles it by name for its workers."""
    HeaderTimeout.header_timeout = seconds
    return HeaderTimeout
