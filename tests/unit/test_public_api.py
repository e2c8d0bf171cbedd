"""The public surface: what ``scraper`` exports, and the one exception tree."""

from __future__ import annotations

import inspect

import pytest

import scraper
from scraper import (
    AIEngineChat,
    AIPowerChat,
    Chatgpt4Online,
    ChatgptFree,
    ChatStream,
    ModelNotSupportedError,
    errors,
    get_runtime,
)

PUBLIC = {
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
}


def test_the_public_names_are_exactly_these():
    assert set(scraper.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(scraper, name), name


def test_every_error_is_a_scraper_error_with_a_status():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, Exception)]
    assert len(classes) >= 20
    for cls in classes:
        assert issubclass(cls, scraper.ScraperError), cls
        assert 400 <= cls.http_status < 600, cls
    assert issubclass(scraper.MissingTokenError, RuntimeError), "the seed's contract: RuntimeError"
    assert issubclass(scraper.ScraperTimeoutError, TimeoutError)
    assert scraper.ScraperTimeoutError.http_status == 504 and scraper.BusyError.http_status == 429
    assert scraper.ChallengeError.http_status == 503 and scraper.StreamError.http_status == 502
    assert issubclass(scraper.RateLimitError, scraper.SiteError) and scraper.RateLimitError.http_status == 429
    assert scraper.RateLimitError("wait", retry_after=60.0).retry_after == 60.0


def test_seed_attributes():
    assert ChatgptFree.url == "https://chatgptfree.ai"
    assert ChatgptFree.working is False
    assert ChatgptFree._post_id is None or isinstance(ChatgptFree._post_id, str)
    assert ChatgptFree.default_model == "gpt-4o-mini-2024-07-18"
    assert ChatgptFree.models == ["gpt-4o-mini-2024-07-18"]
    assert ChatgptFree.model_aliases == {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
    assert ChatgptFree.get_model("gpt-4o-mini") == "gpt-4o-mini-2024-07-18"
    assert ChatgptFree.get_model("") == "gpt-4o-mini-2024-07-18"
    assert Chatgpt4Online.url == "https://chatgpt4online.org"
    assert Chatgpt4Online.api_endpoint == "/wp-json/mwai-ui/v1/chats/submit"
    assert Chatgpt4Online.default_model == "gpt-4"
    assert Chatgpt4Online.models == ["gpt-4"]
    assert issubclass(ChatgptFree, AIPowerChat) and issubclass(Chatgpt4Online, AIEngineChat)
    assert issubclass(scraper.KognetiksChat, scraper.WordPressChat) and scraper.KognetiksChat.plugins == ("kognetiks",)
    with pytest.raises(ModelNotSupportedError):
        ChatgptFree.get_model("claude-9")


def test_create_async_generator_shows_its_real_signature_on_the_class_and_on_an_instance():
    for method in (ChatgptFree.create_async_generator, AIPowerChat("http://127.0.0.1:9").create_async_generator):
        params = inspect.signature(method).parameters
        assert list(params) == ["model", "messages", "proxy", "timeout", "cookies", "kwargs"]
        assert params["timeout"].default == 120 and params["proxy"].default is None
        assert method.__doc__ and method.__name__ == "create_async_generator"


def test_an_unknown_keyword_is_a_type_error_naming_the_closest_valid_one():
    chat = AIPowerChat("http://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'headles'; did you mean 'headless'\?"):
        chat.create_async_generator("", [{"role": "user", "content": "Hi"}], headles=False)
    with pytest.raises(TypeError, match=r"'slowmo'; did you mean 'slow_mo'\?"):
        get_runtime({"slowmo": 100})


def test_the_seed_call_still_works_positionally():
    stream = ChatgptFree.create_async_generator("gpt-4o-mini", [{"role": "user", "content": "Hi"}], None, 5, None)
    assert isinstance(stream, ChatStream)  # nothing runs until it is iterated or awaited
