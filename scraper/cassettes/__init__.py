"""Recorded chats: the cassette format, building one from a recorded flow (secrets out), recording a
real chat, replaying one as a local site, matching requests, and the pytest plugin."""

from __future__ import annotations

from ._build import from_flow, parse_body
from ._format import (
    ANY,
    CASSETTE_FILE,
    EXCHANGES_FILE,
    FORMAT,
    FORMAT_VERSION,
    Cassette,
    CassettePage,
    ChunkData,
    ExchangeData,
    PageData,
    RequestData,
    ResponseData,
    chunk_bytes,
    is_loopback_host,
)
from ._match import Received, differences
from ._record import RecordedChat, record_chat
from ._replay import MISMATCH_STATUS, Mismatch, ReplayServer, ServedRequest

__all__ = [
    "ANY",
    "CASSETTE_FILE",
    "EXCHANGES_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "MISMATCH_STATUS",
    "Cassette",
    "CassettePage",
    "ChunkData",
    "ExchangeData",
    "Mismatch",
    "PageData",
    "Received",
    "RecordedChat",
    "ReplayServer",
    "RequestData",
    "ResponseData",
    "ServedRequest",
    "chunk_bytes",
    "differences",
    "from_flow",
    "is_loopback_host",
    "parse_body",
    "record_chat",
]
