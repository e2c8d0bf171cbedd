"""What a replica site does: its settings, the requests it saw and its counters.

Tests change :class:`SiteConfig` fields between requests, so every field has a default and values the
site does not know (a failure mode of the other plugin, say) are simply ignored. The one exception is
``antibot``: a misspelt mode would silently leave the site unprotected, so it is checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AIENGINE_FAILURES",
    "AIPOWER_FAILURES",
    "ANTIBOT_MODES",
    "COMMON_FAILURES",
    "PAGE_MODES",
    "RecordedRequest",
    "ReplicaStats",
    "SiteConfig",
]

COMMON_FAILURES = ("upstream_error", "cut_stream", "no_terminator", "http_500")
AIPOWER_FAILURES = (
    *COMMON_FAILURES,
    "token_limit",
    "flagged",
    "ip_banned",
    "pinecone_error",
    "limited",
    "error_object",
)
AIENGINE_FAILURES = (*COMMON_FAILURES, "rejected")
PAGE_MODES = ("ok", "no_nonce", "no_post_id", "lt_post_id", "widget", "no_chatbox", "nonce_in_page", "malformed")
ANTIBOT_MODES = (
    "js_challenge",
    "js_challenge_never",
    "block",
    "chat_challenge",
    "click_challenge",
    "ddos_guard",
    "sucuri",
    "incapsula",
    "sensor",
)


@dataclass
class SiteConfig:
    """Behaviour switches of one replica site; mutable so a test can flip them between requests."""

    stream: bool = True
    chunk_delay: float = 0.01
    first_delay: float = 0.0
    reply: str | None = None
    reply_events: int | None = None
    failure: str | None = None
    live_subtypes: bool = False
    drop_live_tail: int = 0
    page: str = "ok"
    nonce_mode: str = "ok"
    require_session_cookie: bool = True
    utf8_split: bool = True
    antibot: str | None = None  # the front the site sits behind: None or one of ANTIBOT_MODES
    challenge_delay: float = 1.0  # seconds Cloudflare's JS challenge takes before it hands out cf_clearance
    sensor_delay: float = 0.3  # seconds after the load event before the sensor writes the nonce into the page
    sensor_required: str | None = None  # checks gating the nonce, comma-separated; None: sensor.DEFAULT_REQUIRED

    def __post_init__(self) -> None:
        """Refuse an unknown anti-bot mode at construction, as ``update`` does."""
        _check_antibot(self.antibot)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-ready values (for the state endpoint)."""
        return dataclasses.asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        """Set several fields at once, checking names and types, so a bad control request changes nothing."""
        hints = typing.get_type_hints(SiteConfig)
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name not in hints:
                raise ValueError(f"unknown SiteConfig field {name!r}")
            checked[name] = _coerce(name, hints[name], value)
        if "antibot" in checked:
            _check_antibot(checked["antibot"])
        for name, value in checked.items():
            setattr(self, name, value)


def _check_antibot(mode: str | None) -> None:
    """ValueError unless ``mode`` is None or one of ``ANTIBOT_MODES``."""
    if mode is not None and mode not in ANTIBOT_MODES:
        raise ValueError(f"SiteConfig.antibot must be None or one of {', '.join(ANTIBOT_MODES)}, not {mode!r}")


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` made to fit the annotated type of a field, or ValueError."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if bool in allowed and isinstance(value, bool):
        return value
    if float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if str in allowed and isinstance(value, str):
        return value
    raise ValueError(f"SiteConfig.{name} cannot be {value!r}")


@dataclass
class RecordedRequest:
    """One request as the site received it, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] | None
    json: Any
    status: int = 0
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the body as UTF-8 text, undecodable bytes replaced)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "form": self.form,
            "json": self.json,
            "status": self.status,
            "time": self.time,
        }


@dataclass
class ReplicaStats:
    """Counters a test asserts on; the site updates them under its lock."""

    page_loads: int = 0
    chat_requests: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_aborted: int = 0
    active_streams: int = 0
    session_starts: int = 0
    challenges_served: int = 0
    clearances_issued: int = 0

    def to_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def clear(self) -> None:
        """Zero every counter except the streams still running, which are still running."""
        for f in dataclasses.fields(self):
            if f.name != "active_streams":
                setattr(self, f.name, 0)
