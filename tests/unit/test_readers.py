"""The plugins' readers over recorded reply bodies, cut at every kind of place: no browser, no server.

The bodies are the real plugins' streams (``fixtures/streams``, secrets replaced). The readers and the
reading loop are the package's own, as a chat runs them; only the bytes come from a file.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scraper.errors import SiteError, StreamError
from scraper.plugins import Finish, NonceRotated, Rejected, TextDelta, read_reply
from scraper.plugins.aiengine import AIEngineReader
from scraper.plugins.aipkit import AIPKitReader
from scraper.plugins.aipower import AIPowerReader
from scraper.wire import Response
from tests._support import echo

STREAMS = Path(__file__).resolve().parents[2] / "fixtures" / "streams"


class RecordedResponse(Response):
    """A response whose body is recorded bytes, handed out in the given pieces."""

    def __init__(self, pieces: list[bytes], content_type: str = "text/event-stream; charset=UTF-8") -> None:
        self.status, self.url, self.received = 200, "http://127.0.0.1/recorded", 0
        self.headers = {"content-type": content_type}
        self.idle_timeout = 5.0
        self._pieces = pieces

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            self.received += len(piece)
            yield piece

    async def aclose(self) -> None:
        return None


def cuts(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at random places (inside lines, line ends and UTF-8 characters alike)."""
    rng = random.Random(seed)
    points = sorted({rng.randrange(1, len(data)) for _ in range(rng.randrange(1, 40))})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


async def events_of(reader, pieces: list[bytes], content_type: str = "text/event-stream") -> list:
    return [event async for event in read_reply(reader, RecordedResponse(pieces, content_type))]


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize(
    "name,reader,expected",
    [
        ("aipower_stream_ok", AIPowerReader, echo("Hello lab, привет")),
        ("aipower_stream_oldnonce_ok", AIPowerReader, echo("old nonce")),
        ("aiengine_stream_ok", AIEngineReader, echo("Hello lab, привет")),
        ("aiengine_stream_nocookie_ok", AIEngineReader, echo("no cookies")),
        ("aiengine_stream_oldnonce_ok", AIEngineReader, echo("old nonce")),
        ("aipkit_stream_ok", AIPKitReader, echo("Hello lab, привет")),
        ("aipkit_stream_ok_bot2", AIPKitReader, echo("Hello lab, привет")),
        ("aipkit_stream_oldnonce_ok", AIPKitReader, echo("Hello lab, привет")),
    ],
)
async def test_recorded_streams_read_the_same_however_cut(name, reader, expected, seed):
    data = (STREAMS / f"{name}.sse").read_bytes()
    events = await events_of(reader(), cuts(data, seed))
    assert text_of(events) == expected
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1 and finishes[0].reason == "stop"
    assert isinstance(events[-1], Finish), "the finish comes last"
    if reader is AIEngineReader:
        assert finishes[0].usage and finishes[0].usage["total_tokens"] > 0, "AI Engine reports usage"
    rotated = [e.nonce for e in events if isinstance(e, NonceRotated)]
    assert rotated == (["NONCE_1"] if name == "aiengine_stream_oldnonce_ok" else [])


async def test_ai_power_upstream_failure_is_the_reply_the_site_shows():
    data = (STREAMS / "aipower_err_upstream_stream.sse").read_bytes()
    events = await events_of(AIPowerReader(), cuts(data, 1))
    assert text_of(events) == "Lab forced upstream error", "the repeat after finish_reason is not text"
    assert isinstance(events[-1], Finish)


async def test_ai_engine_upstream_failure_is_a_site_error():
    data = (STREAMS / "aiengine_err_upstream_stream.sse").read_bytes()
    with pytest.raises(SiteError, match="Lab forced upstream error"):
        await events_of(AIEngineReader(), cuts(data, 2))


@pytest.mark.parametrize("name,reader", [("aipower_stream_ok", AIPowerReader), ("aiengine_stream_ok", AIEngineReader)])
async def test_a_stream_cut_before_its_end_is_an_error_with_what_arrived(name, reader):
    data = (STREAMS / f"{name}.sse").read_bytes()
    between_events = data[: data.rfind(b"\n\n", 0, len(data) // 2) + 2]
    with pytest.raises(StreamError, match="ended without") as info:
        await events_of(reader(), cuts(between_events, 3))
    assert info.value.received.startswith("Echo:"), "nothing that arrived is lost"
    inside_an_event = data[: len(data) // 2]
    with pytest.raises(StreamError) as info:
        await events_of(reader(), cuts(inside_an_event, 4))
    assert info.value.received.startswith("Echo:")


async def test_an_sse_body_sent_as_another_content_type_is_still_read():
    data = (STREAMS / "aipower_stream_ok.sse").read_bytes()
    events = await events_of(AIPowerReader(), [data], content_type="text/html")
    assert text_of(events).startswith("Echo: Hello lab")


async def test_json_replies():
    power = b'{"status":"success","msg":"Something went wrong","data":"Hi there","log":false}'
    assert text_of(await events_of(AIPowerReader(), [power], "application/json")) == "Hi there"
    engine = b'{"success":true,"reply":"Hi \\u00e9","usage":{"total_tokens":3}}'
    events = await events_of(AIEngineReader(), [engine], "application/json")
    assert text_of(events) == "Hi é" and events[-1] == Finish("stop", {"total_tokens": 3})
    with pytest.raises(SiteError, match="nothing was inputted"):
        await events_of(AIPowerReader(), [b'{"status":"error","msg":"It appears that nothing was inputted."}'], "json")


async def test_aipkit_in_band_bad_nonce_is_worth_a_refresh_not_an_error():
    data = (STREAMS / "aipkit_stream_err_wrong_nonce.sse").read_bytes()
    events = await events_of(AIPKitReader(), cuts(data, 5))
    assert [type(e) for e in events] == [Rejected] and events[0].refresh and "Security check failed" in events[0].reason


@pytest.mark.parametrize("name", ["aipkit_stream_err_unknown_cache_key", "aipkit_stream_err_expired_cache_key"])
async def test_aipkit_key_gone_starts_again_only_when_the_key_was_reused(name):
    data = (STREAMS / f"{name}.sse").read_bytes()
    [rejected] = await events_of(AIPKitReader(key_reused=True), cuts(data, 6))
    assert isinstance(rejected, Rejected) and not rejected.refresh and rejected.forget == ("cache_key",)
    with pytest.raises(SiteError, match=r"(not found in cache|has expired)"):
        await events_of(AIPKitReader(), cuts(data, 6))


async def test_aipkit_upstream_error_without_done_is_a_site_error():
    data = (STREAMS / "aipkit_stream_err_upstream.sse").read_bytes()
    with pytest.raises(SiteError, match="Lab forced upstream error"):
        await events_of(AIPKitReader(), cuts(data, 7))


async def test_aipkit_stream_without_done_is_cut():
    data = (STREAMS / "aipkit_stream_ok.sse").read_bytes()
    before_done = data[: data.index(b"event: done")]
    with pytest.raises(StreamError, match="ended without its done event") as info:
        await events_of(AIPKitReader(), cuts(before_done, 8))
    assert info.value.received == echo("Hello lab, привет")


async def test_aipkit_warning_is_not_fatal():
    body = (
        b": " + b" " * 4096 + b'\n\nevent: message_start\ndata: {}\n\ndata: {"delta":"Hi"}\n\n'
        b'event: warning\ndata: {"error":"slow"}\n\ndata: {"delta":" there"}\n\nevent: done\ndata: {}\n\n'
    )
    assert text_of(await events_of(AIPKitReader(), cuts(body, 9))) == "Hi there"
