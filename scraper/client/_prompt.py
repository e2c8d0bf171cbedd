"""Messages and the prompt text sent to the chat box."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

from ..errors import ConfigError

__all__ = ["Message", "Messages", "format_prompt"]


class Message(TypedDict):
    """One chat message, OpenAI style."""

    role: Literal["system", "user", "assistant"] | str
    content: str


Messages = Sequence[Mapping[str, str]]


def format_prompt(messages: Messages, add_special_tokens: bool = False) -> str:
    """Flatten a conversation into the one text a WordPress chat box accepts.

    One message (and ``add_special_tokens`` off) is sent as it is; several become ``Role: content``
    lines followed by ``Assistant:``, so the site's model still sees the whole conversation.
    """
    if not messages:
        raise ConfigError("messages is empty: give at least one {'role': 'user', 'content': ...}.")
    if len(messages) == 1 and not add_special_tokens:
        return str(messages[0]["content"])
    lines = [f"{str(m['role']).capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"
