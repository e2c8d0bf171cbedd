"""The two seed providers: presets of the generic chats, with the seed's exact attributes (their sites
come from :data:`~scraper.client._catalog.PRESET_SITES`)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..plugins import Bot, Values
from ._catalog import PRESET_SITES
from ._providers import AIEngineChat, AIPowerChat, hybridmethod

__all__ = ["PRESETS", "Chatgpt4Online", "ChatgptFree", "preset_env"]


class ChatgptFree(AIPowerChat):
    """chatgptfree.ai, AI Power chat boxes on ``/chat/`` (AIPKit since 2025, one bot per model; the legacy
    shortcode before), or on the front page. ``SCRAPER_CHATGPTFREE_URL`` points it elsewhere."""

    url = PRESET_SITES["chatgptfree"].url
    preset_url = url
    url_env = PRESET_SITES["chatgptfree"].url_env
    plugins = PRESET_SITES["chatgptfree"].plugins
    chat_path = PRESET_SITES["chatgptfree"].chat_path
    fallback_paths = PRESET_SITES["chatgptfree"].fallback_paths
    working = False
    _post_id: ClassVar[str | None] = None
    _nonce: ClassVar[str | None] = None
    default_model = "gpt-4o-mini-2024-07-18"
    models: ClassVar[list[str]] = [default_model]
    model_aliases: ClassVar[dict[str, str]] = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}

    @hybridmethod
    def _remember(target: Any, bot: Bot, values: Values) -> None:
        owner: type[ChatgptFree] = target if isinstance(target, type) else type(target)
        owner._post_id = values.get("post_id")
        owner._nonce = values.get("nonce")


class Chatgpt4Online(AIEngineChat):
    """chatgpt4online.org, an AI Engine chatbot. ``SCRAPER_CHATGPT4ONLINE_URL`` points it elsewhere."""

    url = PRESET_SITES["chatgpt4online"].url
    preset_url = url
    url_env = PRESET_SITES["chatgpt4online"].url_env
    plugins = PRESET_SITES["chatgpt4online"].plugins
    chat_path = PRESET_SITES["chatgpt4online"].chat_path
    fallback_paths = PRESET_SITES["chatgpt4online"].fallback_paths
    api_endpoint = "/wp-json/mwai-ui/v1/chats/submit"
    working = False
    default_model = "gpt-4"
    models: ClassVar[list[str]] = [default_model]


# The presets by the name the command line and the server use.
PRESETS: dict[str, type[AIPowerChat] | type[AIEngineChat]] = {
    "chatgptfree": ChatgptFree,
    "chatgpt4online": Chatgpt4Online,
}


def preset_env(plugin: str | None) -> str | None:
    """The environment variable that points the preset speaking ``plugin`` at another site."""
    from ..plugins import plugins_named

    for preset in PRESETS.values():
        if plugin and any(p.name == plugin for p in plugins_named(preset.plugins)):
            return preset.url_env
    return None
