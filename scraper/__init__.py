"""scraper: a browser-backed client for the AI chat boxes WordPress sites serve.

A real Chromium loads the site's chat page, reads the plugin's nonce and ids from it, and sends the
chat request from inside that page, streaming the reply back chunk by chunk::

    from scraper import ChatgptFree

    async for chunk in ChatgptFree.create_async_generator("gpt-4o-mini", [{"role": "user", "content": "Hi"}]):
        print(chunk, end="", flush=True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    BotNotFoundError,
    BrowserCrashedError,
    BrowserError,
    BrowserLaunchError,
    BrowserNotFoundError,
    BusyError,
    CassetteError,
    ChallengeError,
    ConfigError,
    ConversationBusyError,
    HTTPError,
    InputTooLongError,
    MissingExtraError,
    MissingTokenError,
    ModelNotSupportedError,
    NonceError,
    PageError,
    RateLimitError,
    ScraperError,
    ScraperTimeoutError,
    SiteBudgetError,
    SiteError,
    StateUnavailableError,
    StreamError,
    TransportError,
)

if TYPE_CHECKING:
    from .browser import (
        BrowserOptions,
        BrowserPool,
        BrowserRuntime,
        Profile,
        aclose,
        clear_profiles,
        close,
        find_browser,
        get_runtime,
        list_profiles,
    )
    from .client import (
        AIEngineChat,
        AIPowerChat,
        AsyncClient,
        AsyncGeneratorProvider,
        Chatgpt4Online,
        ChatgptFree,
        ChatService,
        ChatStream,
        Client,
        KognetiksChat,
        Message,
        Messages,
        MxChatChat,
        ProviderModelMixin,
        WordPressChat,
        format_prompt,
        inspect,
        solve,
    )
    from .plugins import Bot

# The rest is imported on first use: a short command (``scraper chat`` through a running server) must
# not pay for the browser layer, the HTML parser and the plugins it never touches.
_LAZY = {
    **dict.fromkeys(
        (
            "BrowserOptions",
            "BrowserPool",
            "BrowserRuntime",
            "Profile",
            "aclose",
            "clear_profiles",
            "close",
            "find_browser",
            "get_runtime",
            "list_profiles",
        ),
        "browser",
    ),
    **dict.fromkeys(
        (
            "AIEngineChat",
            "AIPowerChat",
            "AsyncClient",
            "AsyncGeneratorProvider",
            "ChatService",
            "ChatStream",
            "Chatgpt4Online",
            "ChatgptFree",
            "Client",
            "KognetiksChat",
            "Message",
            "Messages",
            "MxChatChat",
            "ProviderModelMixin",
            "WordPressChat",
            "format_prompt",
            "inspect",
            "solve",
        ),
        "client",
    ),
    "Bot": "plugins",
}
_SUBPACKAGES = {"browser", "cassettes", "cli", "client", "errors", "plugins", "replica", "serve", "wire"}


def __getattr__(name: str) -> Any:
    """Import a public name (or a subpackage) the first time it is asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.2.0"

__all__ = [
    "AIEngineChat",
    "AIPowerChat",
    "AsyncClient",
    "AsyncGeneratorProvider",
    "AuthenticationError",
    "Bot",
    "BotNotFoundError",
    "BrowserCrashedError",
    "BrowserError",
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "BrowserOptions",
    "BrowserPool",
    "BrowserRuntime",
    "BusyError",
    "CassetteError",
    "ChallengeError",
    "ChatService",
    "ChatStream",
    "Chatgpt4Online",
    "ChatgptFree",
    "Client",
    "ConfigError",
    "ConversationBusyError",
    "HTTPError",
    "InputTooLongError",
    "KognetiksChat",
    "Message",
    "Messages",
    "MissingExtraError",
    "MissingTokenError",
    "ModelNotSupportedError",
    "MxChatChat",
    "NonceError",
    "PageError",
    "Profile",
    "ProviderModelMixin",
    "RateLimitError",
    "ScraperError",
    "ScraperTimeoutError",
    "SiteBudgetError",
    "SiteError",
    "StateUnavailableError",
    "StreamError",
    "TransportError",
    "WordPressChat",
    "__version__",
    "aclose",
    "clear_profiles",
    "close",
    "find_browser",
    "format_prompt",
    "get_runtime",
    "inspect",
    "list_profiles",
    "solve",
]
