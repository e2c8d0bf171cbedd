"""scraper: a browser-backed client for the AI chat boxes WordPress sites serve.

A real Chromium loads the site's chat page, reads the plugin's nonce and ids from it, and sends the
chat request from inside that page, streaming the reply back chunk by chunk::

    from scraper import ChatgptFree

    async for chunk in ChatgptFree.create_async_generator("gpt-4o-mini", [{"role": "user", "content": "Hi"}]):
        print(chunk, end="", flush=True)
"""

from __future__ import annotations

from .browser import BrowserOptions, BrowserRuntime, Profile, aclose, clear_profiles, close, find_browser, get_runtime
from .browser import list_profiles as list_profiles
from .client import (
    AIEngineChat,
    AIPowerChat,
    AsyncGeneratorProvider,
    Chatgpt4Online,
    ChatgptFree,
    ChatService,
    ChatStream,
    Message,
    Messages,
    ProviderModelMixin,
    WordPressChat,
    format_prompt,
    inspect,
    solve,
)
from .errors import (
    BotNotFoundError,
    BrowserCrashedError,
    BrowserError,
    BrowserLaunchError,
    BrowserNotFoundError,
    BusyError,
    CassetteError,
    ChallengeError,
    ConfigError,
    HTTPError,
    MissingTokenError,
    ModelNotSupportedError,
    NonceError,
    PageError,
    ScraperError,
    ScraperTimeoutError,
    SiteError,
    StreamError,
    TransportError,
)
from .plugins import Bot

__version__ = "0.2.0"

__all__ = [
    "AIEngineChat",
    "AIPowerChat",
    "AsyncGeneratorProvider",
    "Bot",
    "BotNotFoundError",
    "BrowserCrashedError",
    "BrowserError",
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "BrowserOptions",
    "BrowserRuntime",
    "BusyError",
    "CassetteError",
    "ChallengeError",
    "ChatService",
    "ChatStream",
    "Chatgpt4Online",
    "ChatgptFree",
    "ConfigError",
    "HTTPError",
    "Message",
    "Messages",
    "MissingTokenError",
    "ModelNotSupportedError",
    "NonceError",
    "PageError",
    "Profile",
    "ProviderModelMixin",
    "ScraperError",
    "ScraperTimeoutError",
    "SiteError",
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
