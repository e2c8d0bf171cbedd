"""What a replica site does: its settings, the requests it saw and its counters.

Tests change :class:`SiteConfig` fields between requests, so every field has a default and values the
site does not know (a failure mode of the other plugin, say) are simply ignored. The one exception is
``antibot``: a misspelt mode would silently leave the site unprotected, so it is checked.

AIPKit pages carry several chatbots; :class:`Bot` describes one of them, and ``SiteConfig.bots`` lists
the bots an AIPKit site has (its page shows each, its stream step accepts only their ids).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AIENGINE_FAILURES",
    "AIPKIT_FAILURES",
    "AIPOWER_FAILURES",
    "ANTIBOT_MODES",
    "COMMON_FAILURES",
    "DEFAULT_BOTS",
    "NONCE_MODES",
    "PAGE_MODES",
    "Bot",
    "RecordedRequest",
    "ReplicaStats",
    "SiteConfig",
]

COMMON_FAILURES = ("upstream_error", "cut_stream", "no_terminator", "http_500", "stall")
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
AIPKIT_FAILURES = (*COMMON_FAILURES, "warning")
PAGE_MODES = (
    "ok",
    "no_nonce",
    "no_post_id",
    "lt_post_id",
    "widget",
    "no_chatbox",
    "nonce_in_page",
    "malformed",
    "script_built",
    "request_built",
    "subfolder",
    "stall",
    "http_500",
    "empty",
    "huge",
    "heavy",
    "v1_endpoint",
)
# "stream_reject_once" only touches a stream step's check (AIPKit step 2), so its in-band refusal can be tested.
NONCE_MODES = ("ok", "reject_once", "always_reject", "stream_reject_once")
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
class Bot:
    """One AIPKit chatbot: its post id, its title (the box's header; on multi-bot sites, the model's name),
    whether it sits in a popup, and the provider its ``data-config`` names (the stream has the OpenAI shape
    the recordings show, whatever the provider)."""

    id: int
    name: str
    popup: bool = False
    provider: str = "OpenAI"

    @classmethod
    def from_value(cls, value: Any) -> Bot:
        """A Bot from itself or from its ``to_dict`` form (as the config endpoint receives it), else ValueError."""
        if isinstance(value, Bot):
            return value
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(value, dict) or not {"id", "name"} <= set(value) <= names:
            raise ValueError(f"a bot is an object with id, name and optionally popup, provider; not {value!r}")
        bot = cls(**value)
        kinds = {"id": int, "name": str, "popup": bool, "provider": str}
        for name, kind in kinds.items():
            field_value = getattr(bot, name)
            if not isinstance(field_value, kind) or (kind is int and isinstance(field_value, bool)):
                raise ValueError(f"Bot.{name} cannot be {field_value!r}")
        if bot.id <= 0:
            raise ValueError(f"Bot.id must be positive, not {bot.id}")
        return bot


# The two bots of an AIPKit site unless a test gives others: one inline, one behind a popup launcher,
# like the bots chatgptfree.ai shows on its /chat/ page (one per model).
DEFAULT_BOTS = (
    Bot(25874, "Gemini", popup=False),
    Bot(25875, "GPT-4o mini", popup=True),
)


def _default_bots() -> list[Bot]:
    """A fresh list of the default bots, so one site's changes never reach another's."""
    return [dataclasses.replace(bot) for bot in DEFAULT_BOTS]


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
    bots: list[Bot] = dataclasses.field(default_factory=_default_bots)  # AIPKit's chatbots, in page order
    cache_lifetime: float = 60.0  # seconds an AIPKit cache key stays readable
    # page "script_built": seconds after load before the page script builds the chat box; page "request_built":
    # seconds the theme endpoint the page script waits on takes to answer
    build_delay: float = 0.3
    sensor_delay: float = 0.3  # seconds after the load event before the sensor writes the nonce into the page
    sensor_required: str | None = None  # checks gating the nonce, comma-separated; None: sensor.DEFAULT_REQUIRED
    rate_limit: int = 10  # Kognetiks: guest messages one address may send while its 60 s counter lives
    gather: int = 0  # Kognetiks: each answer waits (up to 30 s) until this many are being answered at once

    def __post_init__(self) -> None:
        """Refuse an unknown anti-bot mode or a malformed bot at construction, as ``update`` does."""
        _check_antibot(self.antibot)
        self.bots = _coerce("bots", list[Bot], self.bots)

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
    if typing.get_origin(hint) is list and typing.get_args(hint) == (Bot,):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"SiteConfig.{name} must be a list of bots, not {value!r}")
        bots = [Bot.from_value(item) for item in value]
        if len({bot.id for bot in bots}) != len(bots):
            raise ValueError(f"SiteConfig.{name}: each bot id may appear once")
        return bots
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
    chat_requests: int = 0  # AI Power and AI Engine: chat calls; AIPKit: step 1 (cache POSTs)
    streams_started: int = 0
    streams_completed: int = 0
    streams_aborted: int = 0
    active_streams: int = 0
    peak_streams: int = 0  # the most streams that were running at once
    session_starts: int = 0
    challenges_served: int = 0
    clearances_issued: int = 0
    cache_keys_issued: int = 0  # AIPKit step 1 answered with a key
    cache_keys_consumed: int = 0  # AIPKit step 2 read (and so deleted) a key
    nonce_refreshes: int = 0  # AIPKit's aipkit_get_frontend_chat_nonce handed out a nonce
    stream_bot_ids: list[int] = dataclasses.field(default_factory=list)  # AIPKit: the bot of each reply streamed
    queued_messages: int = 0  # Kognetiks: messages queued behind a busy conversation (their answers never sent)
    peak_answers: int = 0  # Kognetiks: the most answers being made at once
    # what the model was given for each reply, oldest first: the messages as {"role", "content"}
    model_inputs: list[list[dict[str, str]]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (lists copied)."""
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def clear(self) -> None:
        """Zero every counter except the streams still running, which are still running."""
        for f in dataclasses.fields(self):
            if f.name == "active_streams":
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                value.clear()
            else:
                setattr(self, f.name, 0)


def _copy(value: Any) -> Any:
    """A list copied (so a snapshot does not change under the caller), anything else as it is."""
    return list(value) if isinstance(value, list) else value
