"""Tests for the shared event-stream parser: any split of a stream must give the same events."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scraper.wire import ServerSentEvent, SSEDecoder
from tests._support import echo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "streams"
FIXTURE_FILES = sorted(FIXTURES.glob("*.sse"))
EXPECTED_FIXTURES = {
    "aipower_stream_ok",
    "aipower_stream_oldnonce_ok",
    "aipower_err_upstream_stream",
    "aiengine_stream_ok",
    "aiengine_stream_nocookie_ok",
    "aiengine_stream_oldnonce_ok",
    "aiengine_err_upstream_stream",
}


# -- helpers ----------------------------------------------------------------------------------------


def parse(chunks) -> list[ServerSentEvent]:
    """Feed every chunk, then flush; return all events in order."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    assert not decoder.pending
    return events


def cut(payload, positions):
    """Split ``payload`` (bytes or str) at the given offsets."""
    bounds = [0, *sorted({p for p in positions if 0 < p < len(payload)}), len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(bounds)]


def one_at_a_time(payload):
    return [payload[i : i + 1] for i in range(len(payload))]


# -- generated streams ------------------------------------------------------------------------------

# Letters that matter here: ASCII, Cyrillic, CJK, 4-byte emoji, a space (a value's own leading
# space must survive), and a colon (only the first colon of a line separates name from value).
TEXT_CHARS = st.one_of(
    st.sampled_from("abc XYZ019:{}\"'\\.,!?"),
    st.sampled_from("привет мир ПРИВЕТ ёЁ"),
    st.sampled_from("你好世界中文"),
    st.sampled_from("🙂😀🎉👍🏽"),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
)
LINE_TEXT = st.text(TEXT_CHARS, max_size=12)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


@dataclass
class Block:
    """One event as the server would write it: field lines then a blank line."""

    data_lines: list[str]
    event: str | None
    id: str | None
    retry: int | None
    comments: list[tuple[int, str]]  # (position among the field lines, comment text)
    header_first: bool  # event/id/retry lines before the data lines, or after


@st.composite
def blocks(draw) -> Block:
    data = draw(st.lists(LINE_TEXT, min_size=1, max_size=4))  # "a\nb" is sent as two data lines
    return Block(
        data_lines=data,
        event=draw(st.none() | LINE_TEXT),
        id=draw(st.none() | LINE_TEXT),
        retry=draw(st.none() | st.integers(0, 10**9)),
        comments=draw(st.lists(st.tuples(st.integers(0, 8), LINE_TEXT), max_size=2)),
        header_first=draw(st.booleans()),
    )


def block_lines(block: Block, draw) -> list[str]:
    data = []
    for value in block.data_lines:
        # "data:x" and "data: x" mean the same; only when the value starts with a space must the
        # separator space be written, or the parser would take the value's space for it.
        bare = not value.startswith(" ") and draw(st.booleans())
        data.append(("data:" if bare else "data: ") + value)
    header = []
    if block.event is not None:
        header.append("event: " + block.event)
    if block.id is not None:
        header.append("id: " + block.id)
    if block.retry is not None:
        header.append(f"retry: {block.retry}")
    lines = header + data if block.header_first else data + header
    for pos, text in block.comments:
        lines.insert(min(pos, len(lines)), ":" + text)
    return lines


def expected_events(block_list: list[Block]) -> list[ServerSentEvent]:
    """What a browser's EventSource would dispatch: id and retry carry over between events."""
    out = []
    last_id = None
    retry = None
    for block in block_list:
        if block.id is not None:
            last_id = block.id
        if block.retry is not None:
            retry = block.retry
        out.append(ServerSentEvent("\n".join(block.data_lines), block.event or "message", last_id, retry))
    return out


def serialize(lines: list[str], draw) -> str:
    """Join lines, each with a randomly chosen ending.

    A blank line must not end with a bare LF right after a CR ending: "\\r" + "\\n" would read as
    one CRLF ending and the blank line would vanish.
    """
    out = []
    previous = ""
    for line in lines:
        ending = draw(ENDINGS)
        if not line and previous == "\r" and ending == "\n":
            ending = "\r\n"
        out.append(line + ending)
        previous = ending
    return "".join(out)


@st.composite
def streams(draw) -> tuple[str, list[ServerSentEvent]]:
    """A whole stream as text, and the events it must produce."""
    block_list = draw(st.lists(blocks(), max_size=6))
    lines: list[str] = []
    for block in block_list:
        lines.extend(block_lines(block, draw))
        lines.append("")
        if draw(st.booleans()):
            # noise between events: blank lines, comments, unknown fields, an event name with no
            # data (all of which dispatch nothing)
            noise = st.sampled_from(["", ":keep-alive", "foo: bar", "nocolon", "event: ignored", ":"])
            extra = draw(st.lists(noise, max_size=3))
            lines.extend(extra)
            lines.append("")
    text = serialize(lines, draw)
    if block_list and draw(st.booleans()):
        # the server closed the connection without the final blank line (and maybe without the
        # last line ending): flush must still deliver the last event
        text = text.rstrip("\r\n")
        text += draw(st.sampled_from(["", "\n", "\r", "\r\n"]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text, expected_events(block_list)


# -- property-based tests ---------------------------------------------------------------------------

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), stream=streams())
def test_bytes_split_anywhere_give_the_generated_events(data, stream):
    text, expected = stream
    payload = text.encode("utf-8")
    positions = data.draw(st.lists(st.integers(0, len(payload)), max_size=40))
    assert parse(cut(payload, positions)) == expected


@PROPERTY
@given(data=st.data(), stream=streams())
def test_str_split_anywhere_gives_the_generated_events(data, stream):
    text, expected = stream
    positions = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
    assert parse(cut(text, positions)) == expected


@settings(max_examples=50, deadline=None)
@given(stream=streams())
def test_bytes_one_at_a_time_give_the_generated_events(stream):
    text, expected = stream
    assert parse(one_at_a_time(text.encode("utf-8"))) == expected


# Arbitrary byte soup built from the pieces that are hard to get right: field names, all line
# endings, a BOM, NUL, truncated and invalid UTF-8, digits.
TOKENS = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"event:",
        b"id:",
        b"retry:",
        b":",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"x",
        b"123",
        b"\x00",
        "п".encode(),
        "🙂".encode(),
        "中".encode(),
        b"\xef\xbb\xbf",
        b"\xd0",
        b"\xf0\x9f",
        b"\xff",
        b"\x80",
    ]
)
SOUP = st.lists(st.one_of(TOKENS, st.binary(max_size=4)), max_size=60).map(b"".join)


@PROPERTY
@given(data=st.data(), payload=SOUP)
def test_any_split_equals_feeding_whole(data, payload):
    positions = data.draw(st.lists(st.integers(0, len(payload)), max_size=40))
    assert parse(cut(payload, positions)) == parse([payload])


@settings(max_examples=100, deadline=None)
@given(payload=SOUP)
def test_byte_by_byte_equals_feeding_whole(payload):
    assert parse(one_at_a_time(payload)) == parse([payload])


@PROPERTY
@given(data=st.data(), payload=SOUP)
def test_any_str_split_equals_feeding_whole(data, payload):
    text = payload.decode("utf-8", errors="replace")
    positions = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
    assert parse(cut(text, positions)) == parse([text])
    assert parse([payload]) == parse([text])  # decoding first changes nothing either


# -- the captured plugin streams -------------------------------------------------------------------


def test_all_fixtures_are_present():
    assert {p.stem for p in FIXTURE_FILES} >= EXPECTED_FIXTURES


AIPKIT_EVENTS = {"message_start", "status", "openai_response_id", "done", "error", "warning"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture_parses_the_same_whole_and_byte_by_byte(path):
    body = path.read_bytes()
    whole = parse([body])
    assert whole
    assert parse(one_at_a_time(body)) == whole
    if path.stem.startswith("aipkit"):  # named events: message_start, status, error, done, ...
        assert {event.event for event in whole} <= {"message", *AIPKIT_EVENTS}
    else:
        assert all(event.event == "message" for event in whole)
    for event in whole:
        if event.data not in ("[DONE]", "[LIMITED]"):
            json.loads(event.data)  # every event carries exactly one JSON document


def aipower_text(events: list[ServerSentEvent]) -> str:
    parts = []
    for event in events:
        if event.data == "[DONE]":
            break
        choice = json.loads(event.data)["choices"][0]
        parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


def test_aipower_stream_text():
    body = (FIXTURES / "aipower_stream_ok.sse").read_bytes()
    events = parse([body])
    assert events[-1].data == "[DONE]"
    assert aipower_text(events) == echo("Hello lab, привет")


def test_aipower_stream_cut_inside_a_character():
    # the real plugin forwarded "в" as \xd0 | \xb2 in two network reads
    body = (FIXTURES / "aipower_stream_ok.sse").read_bytes()
    at = body.index("в".encode()) + 1
    for pieces in ([body[:at], body[at:]], cut(body, range(at - 3, len(body), 7))):
        events = parse(pieces)
        assert aipower_text(events) == echo("Hello lab, привет")


def test_aipower_upstream_error_stream():
    events = parse([(FIXTURES / "aipower_err_upstream_stream.sse").read_bytes()])
    assert [e.event for e in events].count("message") == len(events)
    assert aipower_text(events[:5]) == "Lab forced upstream error"
    assert json.loads(events[4].data) == {"choices": [{"finish_reason": "stop"}]}


def test_aiengine_stream_live_chunks_add_up_to_the_reply():
    events = parse([(FIXTURES / "aiengine_stream_ok.sse").read_bytes()])
    messages = [json.loads(e.data) for e in events]
    live = "".join(m["data"] for m in messages if m["type"] == "live")
    assert messages[-1]["type"] == "end"
    end = json.loads(messages[-1]["data"])
    assert live == end["reply"] == echo("Hello lab, привет")


def test_aiengine_oldnonce_fixture_has_a_placeholder_token():
    events = parse([(FIXTURES / "aiengine_stream_oldnonce_ok.sse").read_bytes()])
    end = json.loads(json.loads(events[-1].data)["data"])
    assert end["new_token"] == "NONCE_1"


def test_aiengine_upstream_error_stream():
    (event,) = parse([(FIXTURES / "aiengine_err_upstream_stream.sse").read_bytes()])
    message = json.loads(event.data)
    assert message["type"] == "error"
    assert "upstream error" in message["data"]


# -- examples --------------------------------------------------------------------------------------


def test_character_split_between_chunks():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xd0") == []
    assert decoder.pending
    assert decoder.feed(b"\xb2\n\n") == [ServerSentEvent("в")]
    assert not decoder.pending


def test_truncated_character_at_end_becomes_replacement():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ok \xf0\x9f") == []
    assert decoder.flush() == [ServerSentEvent("ok \ufffd")]


def test_invalid_bytes_become_replacement():
    assert parse([b"data: a\xffb\n\n"]) == [ServerSentEvent("a\ufffdb")]


def test_crlf_split_between_chunks_is_one_line_ending():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF; it is not a blank line
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\n\r") == [ServerSentEvent("a\nb")]
    assert decoder.feed(b"\n") == []  # again only the second half of a CRLF
    assert decoder.flush() == []


def test_cr_alone_ends_lines_without_waiting_for_more():
    decoder = SSEDecoder()
    assert decoder.feed("data: a\r\r") == [ServerSentEvent("a")]
    assert decoder.feed("data: b\r\rdata: c\r\r") == [ServerSentEvent("b"), ServerSentEvent("c")]
    assert decoder.feed("\r") == []  # a blank line, not half of anything
    assert not decoder.pending


def test_mixed_line_endings():
    assert parse([b"data: a\rdata: b\ndata: c\r\n\r\n"]) == [ServerSentEvent("a\nb\nc")]


def test_only_lf_cr_lf_and_crlf_end_lines():
    # other characters Python treats as line breaks are ordinary text here
    assert parse(["data: a\x0bb\x0cc\x1cd\x85e\u2028f\n\n"]) == [ServerSentEvent("a\x0bb\x0cc\x1cd\x85e\u2028f")]


def test_comments_are_ignored():
    stream = ": hello\n:\ndata: a\n: between\ndata: b\n\n:keep-alive\n\n"
    assert parse([stream]) == [ServerSentEvent("a\nb")]


def test_field_value_rules():
    stream = (
        "data:no space\n"
        "data:  two spaces\n"
        "data: a: b\n"
        "data\n"  # no colon: the whole line is the field name, the value is empty
        "unknown: x\n"
        "\n"
    )
    assert parse([stream]) == [ServerSentEvent("no space\n two spaces\na: b\n")]


def test_empty_data_line_dispatches_an_empty_event():
    assert parse(["data:\n\n"]) == [ServerSentEvent("")]
    assert parse(["data\n\n"]) == [ServerSentEvent("")]


def test_blank_line_without_data_dispatches_nothing_and_resets_event_type():
    stream = "event: first\n\ndata: x\n\n"
    assert parse([stream]) == [ServerSentEvent("x", "message")]


def test_event_type():
    assert parse(["event: message\ndata: a\n\nevent: end\ndata: b\n\nevent:\ndata: c\n\n"]) == [
        ServerSentEvent("a", "message"),
        ServerSentEvent("b", "end"),
        ServerSentEvent("c", "message"),
    ]


def test_id_rules():
    stream = (
        "id: 1\ndata: a\n\n"
        "data: b\n\n"  # the last id carries over
        "id: 2\x003\ndata: c\n\n"  # an id with NUL is ignored
        "id\ndata: d\n\n"  # an empty id resets it to ""
    )
    assert [e.id for e in parse([stream])] == ["1", "1", "1", ""]


def test_retry_rules():
    stream = (
        "data: a\n\n"
        "retry: 1500\ndata: b\n\n"
        "retry: 12x\ndata: c\n\n"  # not only digits: ignored
        "retry: -5\ndata: d\n\n"
        "retry:\ndata: e\n\n"
        "retry: ٣\ndata: f\n\n"  # a non-ASCII digit is not a digit here
        "retry: 0\ndata: g\n\n"
    )
    assert [e.retry for e in parse([stream])] == [None, 1500, 1500, 1500, 1500, 1500, 0]


def test_bom_at_start_is_dropped():
    assert parse([b"\xef\xbb\xbfdata: a\n\n"]) == [ServerSentEvent("a")]
    assert parse([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [ServerSentEvent("a")]
    assert parse(["\ufeffdata: a\n\n"]) == [ServerSentEvent("a")]


def test_bom_later_is_kept():
    assert parse([b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n"]) == [ServerSentEvent("a")]
    assert parse([b"data: \xef\xbb\xbfb\n\n"]) == [ServerSentEvent("\ufeffb")]


def test_flush_dispatches_an_unterminated_last_event():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\ndata: c") == [ServerSentEvent("a")]
    assert decoder.pending
    assert decoder.flush() == [ServerSentEvent("b\nc")]
    assert not decoder.pending
    assert decoder.flush() == []


def test_flush_without_data_dispatches_nothing():
    decoder = SSEDecoder()
    decoder.feed("event: end\nid: 9\n: bye")
    assert decoder.pending  # any unterminated line counts, even a comment
    assert decoder.flush() == []
    decoder = SSEDecoder()
    decoder.feed("event: end\nid: 9\n")
    assert not decoder.pending  # an event name and an id alone are no event
    assert decoder.flush() == []


def test_pending():
    decoder = SSEDecoder()
    assert not decoder.pending
    decoder.feed(b"da")
    assert decoder.pending  # unterminated line
    decoder.feed(b"ta: x\n")
    assert decoder.pending  # data waiting for its blank line
    decoder.feed(b"\n")
    assert not decoder.pending
    decoder.feed(b"\xf0\x9f")
    assert decoder.pending  # half a character
    decoder.feed(b"\x99\x82")
    assert decoder.pending  # now a whole character on an unterminated line


def test_feed_after_flush_raises():
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    decoder.flush()
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: b\n\n")


def test_mixing_bytes_and_str_raises():
    decoder = SSEDecoder()
    decoder.feed(b"data: \xd0")
    with pytest.raises(TypeError):
        decoder.feed("в\n\n")


def test_empty_chunks_are_harmless():
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed("") == []  # empty chunks fix no mode either
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\n") == [ServerSentEvent("a")]


def test_bytes_like_chunks_are_accepted():
    assert parse([bytearray(b"data: a"), memoryview(b"\n\n")]) == [ServerSentEvent("a")]


def test_long_line_in_many_small_chunks():
    value = "ж" * 20_000
    payload = f"data: {value}\n\n".encode()
    assert parse(cut(payload, range(0, len(payload), 3))) == [ServerSentEvent(value)]


def test_many_events():
    body = "".join(f'event: message\ndata: {{"n": {i}}}\n\n' for i in range(5000)).encode()
    events = parse(cut(body, range(0, len(body), 1000)))
    assert len(events) == 5000
    assert events[-1] == ServerSentEvent('{"n": 4999}')


def test_event_is_frozen():
    event = ServerSentEvent("a")
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]
