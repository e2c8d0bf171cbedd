"""No browser: reading a chat completion request, which chat a model name means, the chunks and the
error shape of ``scraper serve``, its safety rule, and the command line's light path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scraper import (
    BotNotFoundError,
    BusyError,
    ChallengeError,
    Chatgpt4Online,
    ChatgptFree,
    ConfigError,
    ModelNotSupportedError,
    ScraperTimeoutError,
    SiteError,
    StreamError,
)
from scraper.cli import build_parser
from scraper.cli._common import site_choice
from scraper.cli._server import _request, server_url
from scraper.client import PRESET_SITES, PRESETS, ChatTarget
from scraper.client._completions import CompletionBuilder, CompletionRequest, CompletionUsage
from scraper.client._models import ModelCatalog
from scraper.plugins import Finish, TextDelta
from scraper.serve import ServeConfig, error_body, is_loopback

ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "Hi"}]


# -- the request ------------------------------------------------------------------------------------------


def test_a_request_is_read_with_openai_fields_and_ours():
    request = CompletionRequest.from_body(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
            "stream": True,
            "temperature": 0.2,
            "max_tokens": 5,
            "site": {"url": "http://127.0.0.1:9/"},
            "timeout": 3,
        }
    )
    assert request.model == "gpt-4o-mini" and request.stream is True and request.timeout == 3.0
    assert request.site == {"url": "http://127.0.0.1:9/"}
    assert request.ignored == ("max_tokens", "temperature"), "sampling options are accepted and ignored"
    assert request.prompt == "System: Be brief\nUser: Hi\nAssistant:"


def test_text_parts_become_one_text():
    request = CompletionRequest.from_body(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "При"}, {"type": "text", "text": "вет"}]}]}
    )
    assert request.prompt == "Привет" and request.stream is False and request.model is None


@pytest.mark.parametrize(
    "body,says",
    [
        ([], "JSON object"),
        ({"model": "gpt-4"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"content": "Hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "text parts"),
        ({"messages": [{"role": "user", "content": 5}]}, "string or a list"),
        ({"messages": HI, "model": 4}, "model"),
        ({"messages": HI, "stream": "yes"}, "stream"),
        ({"messages": HI, "n": 2}, "`n` must be 1"),
        ({"messages": HI, "timeout": 0}, "timeout"),
        ({"messages": HI, "timeout": True}, "timeout"),
        ({"messages": HI, "site": "http://x/"}, "site"),
    ],
)
def test_a_malformed_request_says_what_is_wrong(body, says):
    with pytest.raises(ConfigError, match=says) as info:
        CompletionRequest.from_body(body)
    assert info.value.http_status == 400


# -- which chat a model means ---------------------------------------------------------------------------


def test_preset_models_and_aliases_pick_their_preset(monkeypatch):
    monkeypatch.setenv("SCRAPER_CHATGPTFREE_URL", "http://127.0.0.1:8001")
    catalog = ModelCatalog()
    mini = catalog.resolve("gpt-4o-mini")
    assert mini.target == ChatTarget("http://127.0.0.1:8001/chat/", ("aipower",), None, ("http://127.0.0.1:8001/",))
    assert mini.model == "gpt-4o-mini-2024-07-18" and mini.owned_by == "chatgptfree"
    assert catalog.resolve("gpt-4o-mini-2024-07-18").target == mini.target
    four = catalog.resolve("gpt-4")
    assert four.target.plugins == ("aiengine",) and four.owned_by == "chatgpt4online"
    assert four.target.page_url == Chatgpt4Online.page_url()


def test_an_unknown_model_is_404_and_lists_the_models():
    with pytest.raises(ModelNotSupportedError, match=r"gpt-4o-mini.*gpt-4") as info:
        ModelCatalog().resolve("gpt-5")
    assert info.value.http_status == 404
    with pytest.raises(ConfigError, match="`model` is required"):
        ModelCatalog().resolve(None)


def test_sites_are_models_and_each_bot_of_their_page_too():
    catalog = ModelCatalog({"blog": "http://127.0.0.1:8002"})
    assert catalog.resolve("blog").target == ChatTarget("http://127.0.0.1:8002/", None, None), "a bare origin gets /"
    assert catalog.resolve("blog/Gemini").target == ChatTarget("http://127.0.0.1:8002/", None, "Gemini")
    assert catalog.resolve("blog/Gemini").owned_by == "blog"
    assert catalog.resolve(None, provider="blog").model == "blog"
    assert catalog.resolve("blog/7", provider="blog").target.bot == "7"
    with pytest.raises(ModelNotSupportedError):
        catalog.resolve("gpt-4", provider="blog")
    with pytest.raises(ModelNotSupportedError):
        catalog.resolve("blog/")


def test_a_provider_names_a_preset_and_keeps_its_models():
    catalog = ModelCatalog()
    assert catalog.resolve(None, provider="chatgptfree").model == ChatgptFree.default_model
    with pytest.raises(ModelNotSupportedError, match="ChatgptFree does not offer model 'gpt-4'"):
        catalog.resolve("gpt-4", provider="chatgptfree")
    with pytest.raises(ConfigError, match="Unknown provider 'nope'"):
        catalog.resolve("gpt-4", provider="nope")


@pytest.mark.parametrize(
    "name,url,says",
    [
        ("gpt-4", "http://127.0.0.1:1/", "taken"),
        ("chatgptfree", "http://127.0.0.1:1/", "taken"),
        ("a/b", "http://127.0.0.1:1/", "no '/'"),
        ("blog", "ftp://127.0.0.1/", "http"),
        ("blog", "127.0.0.1:8000", "http"),
    ],
)
def test_a_site_name_or_url_that_cannot_work_is_refused(name, url, says):
    with pytest.raises(ConfigError, match=says):
        ModelCatalog({name: url})


def test_a_site_object_names_any_page():
    catalog = ModelCatalog()
    page = catalog.resolve(None, site={"url": "http://127.0.0.1:8003/chat/", "plugins": ["aiengine"], "bot": 3})
    assert page.target == ChatTarget("http://127.0.0.1:8003/chat/", ("aiengine",), 3)
    elsewhere = catalog.resolve(
        None, site={"url": "http://127.0.0.1:8003/chat/", "fallback_urls": ["http://127.0.0.1:8003"]}
    )
    assert elsewhere.target.fallback_urls == ("http://127.0.0.1:8003/",)
    assert page.model == "default" and page.owned_by == "site"
    mirror = catalog.resolve("gpt-4o-mini", provider="chatgptfree", site={"url": "http://127.0.0.1:8004/"})
    assert mirror.target == ChatTarget("http://127.0.0.1:8004/", ("aipower",), None), "the preset's plugins"
    assert mirror.model == "gpt-4o-mini-2024-07-18"
    named = catalog.resolve("gpt-4", site={"url": "http://127.0.0.1:8003/"})
    assert named.target.model == "gpt-4" and named.model == "gpt-4", "the bot of that name or model, else the default"
    with pytest.raises(ModelNotSupportedError, match="ChatgptFree does not offer model 'gpt-4'"):
        catalog.resolve("gpt-4", provider="chatgptfree", site={"url": "http://127.0.0.1:8004/"})


@pytest.mark.parametrize(
    "site,says",
    [
        ({"url": "file:///etc/passwd"}, "http"),
        ({"url": "http://127.0.0.1/", "plugins": ["nope"]}, "Unknown chat plugin"),
        ({"url": "http://127.0.0.1/", "plugins": "aipower"}, "list"),
        ({"url": "http://127.0.0.1/", "bot": [1]}, "bot"),
        ({"url": "http://127.0.0.1/", "proxy": "http://x"}, "not proxy"),
        ({"url": "http://127.0.0.1/", "fallback_urls": "http://127.0.0.1/x"}, "fallback_urls"),
        ({"url": "http://127.0.0.1/", "fallback_urls": ["javascript:1"]}, "fallback_urls"),
    ],
)
def test_a_bad_site_object_is_400(site, says):
    with pytest.raises(ConfigError, match=says):
        ModelCatalog().resolve(None, site=site)


def test_a_server_beyond_loopback_takes_no_urls_unless_told():
    with pytest.raises(ConfigError, match="--allow-urls"):
        ModelCatalog(allow_urls=False).resolve(None, site={"url": "http://127.0.0.1/"})
    assert ServeConfig(host="127.0.0.1").urls_allowed
    assert not ServeConfig(host="0.0.0.0", api_key="k").urls_allowed
    assert ServeConfig(host="0.0.0.0", api_key="k", allow_urls=True).urls_allowed


def test_the_catalog_lists_every_preset_model():
    assert ModelCatalog().preset_models == {
        "gpt-4o-mini-2024-07-18": "chatgptfree",
        "gpt-4o-mini": "chatgptfree",
        "gpt-4": "chatgpt4online",
    }


def test_the_preset_table_is_what_the_preset_classes_say(monkeypatch):
    assert set(PRESET_SITES) == set(PRESETS)
    for name, site in PRESET_SITES.items():
        preset = PRESETS[name]
        assert (site.title, site.url, site.url_env, site.plugins) == (
            preset.__name__,
            preset.url,
            preset.url_env,
            preset.plugins,
        )
        assert site.page_url() == preset.page_url()
        assert site.fallback_urls() == preset.target().fallback_urls
        monkeypatch.setenv(site.url_env, "http://127.0.0.1:8005")
        assert site.page_url() == preset.page_url() and site.page_url().startswith("http://127.0.0.1:8005/")
        assert site.fallback_urls() == preset.target().fallback_urls
        mirror = preset("http://127.0.0.1:8006/x")
        assert site.page_url("http://127.0.0.1:8006/x") == mirror.page_url()
        assert site.fallback_urls("http://127.0.0.1:8006/x") == mirror.target().fallback_urls


# -- the answer -------------------------------------------------------------------------------------------


def test_chunks_share_an_id_carry_the_role_first_and_the_finish_last():
    builder = CompletionBuilder("gpt-4")
    chunks = [builder.chunk(TextDelta("При")), builder.chunk(TextDelta("вет 🙂")), builder.chunk(Finish("stop"))]
    dicts = [chunk.to_dict() for chunk in chunks]
    assert {d["id"] for d in dicts} == {builder.id} and builder.id.startswith("chatcmpl-")
    assert dicts[0]["object"] == "chat.completion.chunk" and dicts[0]["model"] == "gpt-4"
    assert dicts[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": "При"}, "finish_reason": None}
    ]
    assert dicts[1]["choices"][0]["delta"] == {"content": "вет 🙂"}
    assert dicts[2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}] and "usage" not in dicts[2]
    completion = builder.completion().to_dict()
    assert completion["object"] == "chat.completion" and completion["id"] == builder.id
    assert completion["choices"] == [
        {"index": 0, "message": {"content": "Привет 🙂", "role": "assistant"}, "finish_reason": "stop"}
    ]
    assert json.loads(json.dumps(completion)) == completion


def test_usage_is_filled_when_the_site_reports_it():
    builder = CompletionBuilder("gpt-4")
    builder.chunk(TextDelta("x"))
    last = builder.chunk(Finish("stop", {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "price": None}))
    assert last.to_dict()["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert builder.completion().usage == CompletionUsage(3, 4, 7)
    assert CompletionUsage.from_site({"prompt_tokens": 1, "completion_tokens": 2}) == CompletionUsage(1, 2, 3)
    assert CompletionUsage.from_site({"completion_tokens": 2}) is None
    assert CompletionUsage.from_site(None) is None


def test_an_empty_reply_still_says_who_speaks():
    builder = CompletionBuilder("m")
    assert builder.chunk(Finish()).to_dict()["choices"][0]["delta"] == {"role": "assistant"}


# -- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error,status,kind",
    [
        (ConfigError("bad"), 400, "invalid_request_error"),
        (ModelNotSupportedError("no"), 404, "invalid_request_error"),
        (BotNotFoundError("no"), 404, "invalid_request_error"),
        (BusyError("busy"), 429, "rate_limit_error"),
        (SiteError("upstream", kind="upstream_error"), 502, "server_error"),
        (StreamError("cut", received="Echo"), 502, "server_error"),
        (ChallengeError("a person", vendor="Cloudflare", kind="interactive", url="http://x/"), 503, "server_error"),
        (ScraperTimeoutError("slow"), 504, "server_error"),
    ],
)
def test_errors_have_openais_shape_and_their_class_status(error, status, kind):
    got_status, body = error_body(error)
    assert got_status == status == error.http_status
    assert body == {"error": {"message": str(error), "type": kind, "param": None, "code": type(error).__name__}}


def test_an_unexpected_error_is_a_plain_500_without_its_details():
    status, body = error_body(KeyError("secret internals"))
    assert status == 500 and "secret internals" not in json.dumps(body) and "Traceback" not in json.dumps(body)


# -- the safety rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host):
    assert is_loopback(host)
    ServeConfig(host=host).check()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.5", "example.org"])
def test_beyond_loopback_needs_a_key_or_insecure(host):
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match=r"Refusing to listen.*--api-key.*--insecure"):
        ServeConfig(host=host).check()
    ServeConfig(host=host, api_key="k").check()
    ServeConfig(host=host, insecure=True).check()


def test_bounds_must_be_usable():
    with pytest.raises(ConfigError, match="max-concurrency"):
        ServeConfig(max_concurrency=0).check()
    with pytest.raises(ConfigError, match="queue-timeout"):
        ServeConfig(queue_timeout=-1).check()


# -- the command line's way to a server -----------------------------------------------------------------


def chat_args(*argv: str):
    return build_parser().parse_args(["chat", *argv])


def test_the_command_line_sends_the_page_it_would_load(monkeypatch):
    monkeypatch.setenv("SCRAPER_CHATGPTFREE_URL", "http://127.0.0.1:8010")
    args = chat_args("Hi")
    assert _request(args, site_choice(args), "Hi") == {
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "site": {"url": "http://127.0.0.1:8010/chat/", "fallback_urls": ["http://127.0.0.1:8010/"]},
        "timeout": 120,
        "provider": "chatgptfree",
    }
    args = chat_args("--plugin", "aiengine", "--url", "http://127.0.0.1:8011/chat", "--bot", "2", "Hi")
    body = _request(args, site_choice(args), "Hi")
    assert body["site"] == {"url": "http://127.0.0.1:8011/chat/", "plugins": ["aiengine"], "bot": "2"}
    assert "provider" not in body
    args = chat_args("--provider", "chatgpt4online", "--model", "gpt-4", "--timeout", "5", "Hi")
    body = _request(args, site_choice(args), "Hi")
    assert (body["provider"], body["model"], body["timeout"]) == ("chatgpt4online", "gpt-4", 5.0)


def test_where_the_command_line_looks_for_a_server(monkeypatch):
    monkeypatch.delenv("SCRAPER_SERVER", raising=False)
    assert server_url() == "http://127.0.0.1:1337"
    monkeypatch.setenv("SCRAPER_SERVER", "127.0.0.1:9000/")
    assert server_url() == "http://127.0.0.1:9000"
    monkeypatch.setenv("SCRAPER_SERVER", "off")
    assert server_url() is None


def test_building_the_command_line_imports_no_browser_layer():
    code = (
        "import sys\n"
        "from scraper.cli import build_parser\n"
        "args = build_parser().parse_args(['chat', '--provider', 'chatgptfree', 'Hi'])\n"
        "from scraper.cli._common import site_choice\n"
        "site_choice(args).page_url\n"
        "heavy = ('scraper.browser', 'scraper.plugins', 'playwright', 'bs4', 'asyncio', 'starlette')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
