"""scraper: a browser-backed client for the AI chat boxes WordPress sites serve.

A real Chromium loads the site's chat page, reads the plugin's nonce and ids from it, and sends the
chat request from inside that page, streaming the reply back chunk by chunk::

    from scraper import ChatgptFree

    async for chunk in ChatgptFree.create_async_generator("gpt-4o-mini", [{"role": "user", "content": "Hi"}]):
        print(chunk, end="", flush=True)
"""

from __future__ import annotations

from ._base import AsyncGeneratorProvider, ProviderModelMixin
from ._browser import BrowserOptions, BrowserRuntime, aclose, close, find_browser, get_runtime
from ._chat import AIEngineChat, AIPowerChat, ChatStream, WordPressChat
from ._errors import (
    BrowserLaunchError,
    BrowserNotFoundError,
    ChallengeError,
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
from ._inspect import inspect
from ._profiles import Profile, clear_profiles, list_profiles
from ._prompt import Message, Messages, format_prompt
from ._providers import Chatgpt4Online, ChatgptFree
from ._solve import solve

__version__ = "0.1.0"

__all__ = [
    "AIEngineChat",
    "AIPowerChat",
    "AsyncGeneratorProvider",
    "BrowserLaunchError",
    "BrowserNotFoundError",
    "BrowserOptions",
    "BrowserRuntime",
    "ChallengeError",
    "ChatStream",
    "Chatgpt4Online",
    "ChatgptFree",
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
