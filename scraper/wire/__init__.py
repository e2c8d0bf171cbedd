"""Bytes and text in, facts out: the event-stream parser, HTML reading, requests and responses, and
the one definition of what is secret. Nothing here knows about browsers or plugins."""

from __future__ import annotations

from ._antibot import MARKERS, Challenge, Marker
from ._antibot import detect as detect_challenge
from ._form import parse_form
from ._html import Document, json_object, script_object
from ._http import HTTPRequest, Reply, Response
from ._redact import RedactingFilter, logger, redact, redact_url
from ._scrub import Scrubber, scrub_page
from ._secrets import KINDS, Kind, remember, secret_kind, shorten
from ._sse import ServerSentEvent, SSEDecoder

__all__ = [
    "KINDS",
    "MARKERS",
    "Challenge",
    "Document",
    "HTTPRequest",
    "Kind",
    "Marker",
    "RedactingFilter",
    "Reply",
    "Response",
    "SSEDecoder",
    "Scrubber",
    "ServerSentEvent",
    "detect_challenge",
    "json_object",
    "logger",
    "parse_form",
    "redact",
    "redact_url",
    "remember",
    "script_object",
    "scrub_page",
    "secret_kind",
    "shorten",
]
