"""Incremental parser for ``text/event-stream`` bodies, shared by every plugin protocol.

Both chat plugins stream server-sent events, and neither respects network boundaries: AI Power
forwards the upstream bytes exactly as they were read, so a chunk can end inside a line, between the
CR and LF of one line ending, or in the middle of a multi-byte UTF-8 character. :class:`SSEDecoder`
follows the WHATWG EventSource parsing rules and yields the same events however the stream is cut.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

# The three line endings the event-stream format allows. CRLF comes first so that a pair found
# inside one chunk counts as one ending; a pair split across chunks is handled by ``_skip_lf``.
_EOL = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its data lines joined by ``"\\n"`` and the stream state at dispatch.

    ``id`` is the last event id the stream set (it carries over to later events, as in a browser);
    ``retry`` is the last reconnection time in milliseconds the stream announced, or ``None``.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental parser: feed bytes or str split anywhere, get whole events out.

    Use one decoder per stream, and feed it either only ``bytes`` or only ``str``: bytes go through
    an incremental UTF-8 decoder (so a character cut between two reads comes out whole), while a
    ``str`` chunk is taken as already decoded. Mixing the two on one stream raises ``TypeError``,
    because bytes held back for an unfinished character would otherwise land out of order.

    A lone CR that ends a chunk is acted on at once (the line it ends is parsed, an event it
    completes is dispatched), and an LF that starts the next chunk is then dropped, so CR + LF cut
    between chunks is one line ending without delaying any event until more data arrives.
    """

    __slots__ = (
        "_closed",
        "_data",
        "_decoder",
        "_event",
        "_last_id",
        "_mode",
        "_partial",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._mode: type | None = None  # bytes or str, fixed by the first non-empty chunk
        self._partial: list[str] = []  # pieces of the current, not yet terminated line
        self._skip_lf = False  # the last text ended with CR: an LF that comes next belongs to it
        self._started = False  # some text has been seen (a BOM is only dropped at the very start)
        self._closed = False
        self._data: list[str] = []  # data lines of the event being built
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes | str) -> list[ServerSentEvent]:
        """Take the next piece of the stream; return the events it completed (often none)."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after flush(); use a new decoder per stream")
        if not chunk:
            return []
        if isinstance(chunk, str):
            self._set_mode(str)
            return self._consume(chunk)
        self._set_mode(bytes)
        return self._consume(self._decoder.decode(chunk))

    def flush(self) -> list[ServerSentEvent]:
        """End the stream: parse what is left and return the final events.

        An incomplete UTF-8 tail becomes U+FFFD and an unterminated last line is still parsed.
        A pending event with data is dispatched even without its closing blank line, because
        servers that end the body by closing the connection sometimes omit it. Calling flush
        again returns nothing.
        """
        if self._closed:
            return []
        events: list[ServerSentEvent] = []
        if self._mode is bytes:
            events.extend(self._consume(self._decoder.decode(b"", final=True)))
        self._closed = True
        if self._partial:
            line = "".join(self._partial)
            self._partial.clear()
            self._parse_lines((line,), events)
        if self._data:
            events.append(self._dispatch())
        self._event = ""
        return events

    @property
    def pending(self) -> bool:
        """True while something is buffered that is not yet an event.

        That is: bytes of an unfinished character, an unterminated line, or data lines waiting
        for their blank line. A caller whose stream ends while this is True got a cut stream.
        """
        if self._partial or self._data:
            return True
        return self._mode is bytes and bool(self._decoder.getstate()[0])

    # -- internals -------------------------------------------------------------------------------

    def _set_mode(self, mode: type) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode is not mode:
            raise TypeError(
                f"SSEDecoder was fed {self._mode.__name__} before, now {mode.__name__}: "
                "feed one stream either only bytes or only str"
            )

    def _consume(self, text: str) -> list[ServerSentEvent]:
        """Split decoded text into lines, keep the unterminated rest, parse the complete lines."""
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == _BOM:
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\n" not in text and "\r" not in text:
            # Still inside one line: keep the piece; joining once later avoids quadratic copying.
            self._partial.append(text)
            return []
        if self._partial:
            self._partial.append(text)
            text = "".join(self._partial)
            self._partial.clear()
        lines = _EOL.split(text)
        tail = lines.pop()
        if tail:
            self._partial.append(tail)
        elif text[-1] == "\r":
            self._skip_lf = True
        events: list[ServerSentEvent] = []
        self._parse_lines(lines, events)
        return events

    def _parse_lines(self, lines: list[str] | tuple[str, ...], events: list[ServerSentEvent]) -> None:
        """Apply the field rules to complete lines, appending dispatched events to ``events``."""
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(self._dispatch())
                    data = self._data
                self._event = ""
                continue
            if line[0] == ":":
                continue  # comment (servers use them as keep-alives)
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:  # an id with NUL is ignored
                self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():  # ASCII digits only
                self._retry = int(value)
            # any other field name is ignored, as the format requires

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._last_id, self._retry)
        self._data = []
        self._event = ""
        return event
