"""OpenAI's chat completion shapes: the request as both ``scraper serve`` and the ``Client`` façade read it,
and the answer as typed objects with OpenAI's field names (the server sends their ``to_dict()``).

A chat box answers with text and a finish; :class:`CompletionBuilder` turns those events into
``chat.completion.chunk`` objects as they come, or into one ``chat.completion`` at the end.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..plugins import Finish, TextDelta
from ._prompt import format_prompt

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChunkChoice",
    "CompletionBuilder",
    "CompletionRequest",
    "CompletionUsage",
]

# What a request may say that matters here. Other fields (temperature, max_tokens, tools...) are accepted
# and ignored: a chat box takes none of them, and any OpenAI client, whatever it sends, still works.
_READ = frozenset({"model", "messages", "stream", "n", "provider", "site", "timeout", "conversation"})
MAX_TIMEOUT = 3600.0  # seconds per step a request may ask for
# OpenAI's numeric options a chat box has no use for: still checked as OpenAI checks them, so a client's
# mistake is a 400 here as it would be there. name -> (integer?, lowest, highest)
_NUMBERS: dict[str, tuple[bool, float, float]] = {
    "temperature": (False, 0, 2),
    "top_p": (False, 0, 1),
    "presence_penalty": (False, -2, 2),
    "frequency_penalty": (False, -2, 2),
    "max_tokens": (True, 1, 2**31 - 1),
    "max_completion_tokens": (True, 1, 2**31 - 1),
    "seed": (True, -(2**63), 2**63 - 1),
    "top_logprobs": (True, 0, 20),
}


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """A dict of the fields that are set; ``finish_reason`` stays, as null, as OpenAI sends it."""
    return {key: value for key, value in items if value is not None or key == "finish_reason"}


class _Shape:
    def to_dict(self) -> dict[str, Any]:
        """The JSON object OpenAI's API would send (fields that are not set are left out)."""
        return dict(dataclasses.asdict(self, dict_factory=_plain))  # type: ignore[call-overload]


@dataclass
class CompletionUsage(_Shape):
    """Token counts, when the site reports them (AI Engine does; AI Power's stream does not)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_site(cls, usage: Mapping[str, Any] | None) -> CompletionUsage | None:
        """OpenAI's three counts out of what the site sent, or None when it did not send them."""
        if not usage:
            return None
        counts = {key: usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
        prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
        if counts["total_tokens"] is None and isinstance(prompt, int) and isinstance(completion, int):
            counts["total_tokens"] = prompt + completion
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in counts.values()):
            return None
        return cls(**counts)  # type: ignore[arg-type]


@dataclass
class ChoiceDelta(_Shape):
    """What one chunk adds: the role (first chunk only) and a piece of the text."""

    role: str | None = None
    content: str | None = None


@dataclass
class ChunkChoice(_Shape):
    index: int
    delta: ChoiceDelta
    finish_reason: str | None = None


@dataclass
class ChatCompletionChunk(_Shape):
    """One ``chat.completion.chunk``; every chunk of a reply has the same ``id``."""

    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    object: str = "chat.completion.chunk"


@dataclass
class ChatCompletionMessage(_Shape):
    content: str
    role: str = "assistant"


@dataclass
class Choice(_Shape):
    index: int
    message: ChatCompletionMessage
    finish_reason: str | None = "stop"


@dataclass
class ChatCompletion(_Shape):
    """The whole reply as one ``chat.completion``."""

    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    object: str = "chat.completion"


@dataclass(frozen=True)
class CompletionRequest:
    """A chat completion request, checked: the server parses its JSON body into one, the façade its keywords.

    Besides OpenAI's fields: ``provider`` (a preset's name, or a site the server was given), ``site``
    (any page: ``{"url": ..., "plugins": [...], "bot": ..., "fallback_urls": [...]}``), ``timeout``
    (seconds per step) and ``conversation`` (a conversation id, or ``"last"``: the last one with that
    site; ``messages`` then add to it).
    """

    messages: tuple[Mapping[str, str], ...]
    model: str | None = None
    stream: bool = False
    provider: str | None = None
    site: Mapping[str, Any] | None = None
    timeout: float | None = None
    conversation: str | None = None
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @property
    def prompt(self) -> str:
        """The one text the chat box is sent (see :func:`~scraper.format_prompt`)."""
        return format_prompt(self.messages)

    @classmethod
    def from_body(cls, body: Any) -> CompletionRequest:
        """Check a request body; ConfigError (400) saying what is wrong."""
        if not isinstance(body, Mapping):
            raise ConfigError("The request body must be a JSON object with `model` and `messages`.")
        n = body.get("n")
        if n is not None and (not _is_number(n) or n != 1):
            raise ConfigError("`n` must be 1: a chat box gives one answer per message.")
        timeout = body.get("timeout")
        if timeout is not None and (not _is_number(timeout) or not 0 < timeout <= MAX_TIMEOUT):
            raise ConfigError(f"`timeout` must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}.")
        for name, (integer, lowest, highest) in _NUMBERS.items():
            value = body.get(name)
            if value is None:
                continue
            if not _is_number(value) or (integer and not isinstance(value, int)) or not lowest <= value <= highest:
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"`{name}` must be {kind} from {lowest:g} to {highest:g}.")
        site = body.get("site")
        if site is not None and not isinstance(site, Mapping):
            raise ConfigError('`site` must be an object: {"url": ..., "plugins": [...], "bot": ...}.')
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise ConfigError("`stream` must be true or false.")
        return cls(
            messages=_messages(body.get("messages")),
            model=_text_or_none(body, "model"),
            stream=bool(stream),
            provider=_text_or_none(body, "provider"),
            site=site,
            timeout=float(timeout) if timeout is not None else None,
            conversation=_text_or_none(body, "conversation"),
            ignored=tuple(sorted(set(body) - _READ)),
        )


def _is_number(value: Any) -> bool:
    """A JSON number that is finite: ``true`` is not 1, ``1e999`` is not a number of seconds."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text_or_none(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"`{key}` must be a string.")
    return value or None


def _messages(value: Any) -> tuple[Mapping[str, str], ...]:
    """OpenAI's messages as role and text; a content given as parts must be text parts."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not value:
        raise ConfigError('`messages` must be a non-empty list of {"role": ..., "content": ...}.')
    checked = []
    for index, message in enumerate(value):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ConfigError(f'messages[{index}] must be an object with a "role" and a "content".')
        content = message.get("content")
        if content is None and message["role"] != "assistant":  # an assistant's may be null (tool calls)
            raise ConfigError(f"messages[{index}].content is missing: a {message['role']} message needs text.")
        checked.append({"role": message["role"], "content": _content(content, index)})
    if not any(message["content"].strip() for message in checked):
        raise ConfigError("The messages hold no text to send.")
    return tuple(checked)


def _content(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, Sequence) and not isinstance(content, (str, bytes)):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ConfigError(f"messages[{index}].content: only text parts can be sent to a chat box.")
            texts.append(part["text"])
        return "".join(texts)
    raise ConfigError(f"messages[{index}].content must be a string or a list of text parts.")


class CompletionBuilder:
    """One reply in OpenAI's shapes: a chunk per event as it comes, or the whole completion at the end."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: CompletionUsage | None = None
        self._started = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def chunk(self, event: TextDelta | Finish) -> ChatCompletionChunk:
        """The chunk for one event of the reply (the role rides on the first one)."""
        role = None if self._started else "assistant"
        self._started = True
        if isinstance(event, Finish):
            self.finish_reason = event.reason or "stop"
            self.usage = CompletionUsage.from_site(event.usage)
            return self._chunk(ChoiceDelta(role=role), self.finish_reason, self.usage)
        self.parts.append(event.text)
        return self._chunk(ChoiceDelta(role=role, content=event.text))

    def completion(self) -> ChatCompletion:
        """The reply received so far as one completion."""
        message = ChatCompletionMessage(content=self.text)
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[Choice(index=0, message=message, finish_reason=self.finish_reason or "stop")],
            usage=self.usage,
        )

    def _chunk(
        self, delta: ChoiceDelta, finish_reason: str | None = None, usage: CompletionUsage | None = None
    ) -> ChatCompletionChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)
        return ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[choice], usage=usage)
