"""Cassettes: record a chat against a replica site, replay it offline, and never keep a secret.

Real Chromium, real replica sites, real sockets: the recorder sees what the browser sent and got, the
replay server is what the providers talk to afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from scraper import AIEngineChat, AIPowerChat, Chatgpt4Online, ChatgptFree, HTTPError, WordPressChat
from scraper.browser import shared_rules
from scraper.cassettes import MISMATCH_STATUS, Cassette, ReplayServer, chunk_bytes, record_chat
from scraper.replica import ReplicaSite
from tests._support import UNUSED_PYTEST_PLUGINS, echo, interrupt, interruptible

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
HELLO = [{"role": "user", "content": "Привет, как дела?"}]
REPLY = echo("Привет, как дела?")
CHATS = {"aipower": AIPowerChat, "aiengine": AIEngineChat, "aipkit": WordPressChat}


# The plugin is opt-in: inner runs are told to load it.
PLUGIN_ARGS = ["-p", "scraper.cassettes.pytest_plugin"]


def cassette_mark(*args: Any, **kwargs: Any) -> pytest.MarkDecorator:
    """``pytest.mark.cassette``; the plugin registers the marker, but from a checkout it loads after this
    module is imported, so the "unknown mark" warning is not meaningful here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return pytest.mark.cassette(*args, **kwargs)


async def chat(target: Any, message: str = HELLO[0]["content"], **kwargs: Any) -> tuple[list[str], float]:
    return await chat_with(target, message, **kwargs)


async def chat_with(target: Any, message: str = HELLO[0]["content"], **kwargs: Any) -> tuple[list[str], float]:
    """The reply's chunks, and how long after the call the first one came."""
    started = time.perf_counter()
    first: float | None = None
    chunks = []
    async for chunk in target.create_async_generator("", [{"role": "user", "content": message}], **kwargs):
        first = first if first is not None else time.perf_counter() - started
        chunks.append(chunk)
    return chunks, first or 0.0


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _comparable(folder: Path) -> dict[str, Any]:
    """A cassette's files with what timing decides left out: ``t`` values and where bodies were cut."""
    out: dict[str, Any] = {}
    for path in _files(folder):
        if path.name == "exchanges.json":
            exchanges = json.loads(path.read_text("utf-8"))
            for exchange in exchanges:
                response = exchange["response"]
                response["body"] = b"".join(chunk_bytes(c) for c in response.pop("chunks")).decode("utf-8")
            out[path.name] = exchanges
        else:
            out[path.name] = path.read_text("utf-8")
    return out


# -- record -> replay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["aipower", "aiengine", "aipkit"])
async def test_round_trip_same_chunks_in_order_and_recorded_timing(plugin, tmp_path, request):
    site: ReplicaSite = request.getfixturevalue(plugin)
    site.config.first_delay = 0.4  # the first chunk comes late: the replay must keep that at speed 1
    recorded = await record_chat(CHATS[plugin](site.url), HELLO[0]["content"], tmp_path / "flow")
    assert "".join(recorded.chunks) == REPLY and len(recorded.chunks) > 3
    cassette = Cassette.load(tmp_path / "flow")
    assert cassette.meta["recorded_against"] == "scraper replica (local)"
    stream = cassette.exchanges[-1]["response"]
    # the reply's first text (AIPKit sends its preamble and message_start before the model answers)
    first_t = next(c["t"] for c in stream["chunks"] if b"Echo" in chunk_bytes(c))
    assert first_t >= 0.4

    with ReplayServer(cassette, speed=0) as fast:
        fast_chunks, _ = await chat(CHATS[plugin](fast.url))
    with ReplayServer(cassette, speed=2.0) as paced:
        paced_chunks, _ = await chat(CHATS[plugin](paced.url))
    assert fast_chunks == recorded.chunks, "speed 0: the same chunks in the same order"
    assert paced_chunks == recorded.chunks, "speed 2: the same chunks in the same order"
    for server in (fast, paced):
        assert server.mismatches == [] and server.unused == []
    last = cassette.exchanges[-1]["index"]
    recorded_times = [chunk["t"] for chunk in stream["chunks"]]
    assert fast.schedule[last] == [0.0] * len(recorded_times), "speed 0: everything at once"
    assert paced.schedule[last] == [t / 2 for t in recorded_times], "speed 2: the recorded timing, twice as fast"


@pytest.mark.parametrize("plugin", ["aipower", "aiengine", "aipkit"])
async def test_recording_twice_gives_the_same_files_but_for_timing(plugin, tmp_path, request):
    site: ReplicaSite = request.getfixturevalue(plugin)
    for run in ("one", "two"):
        site.config.nonce_mode = "reject_once"  # new nonces, a reload or new session: every kind of value
        await record_chat(CHATS[plugin](site.url), HELLO[0]["content"], tmp_path / run, name="twice")
    assert [p.name for p in _files(tmp_path / "one")] == [p.name for p in _files(tmp_path / "two")]
    assert _comparable(tmp_path / "one") == _comparable(tmp_path / "two")


# -- secrets ----------------------------------------------------------------------------------------------

CF_CLEARANCE = "cfClearanceKnown.7d3f-1712345678-0-AbCdEf"
EMAIL = "alice.secret@example.org"


def _forms_of(value: str) -> set[str]:
    dumped = json.dumps(value)[1:-1]
    return {value, quote(value, safe=""), quote_plus(value), dumped, dumped.replace("/", "\\/")}


async def test_a_cassette_never_holds_a_secret(aipower, aiengine, tmp_path):
    message = f"Hi, write to {EMAIL} please"
    for site in (aipower, aiengine):
        site.config.nonce_mode = "reject_once"  # two nonces, a reload / a second start_session
        await record_chat(
            CHATS[site.plugin](site.url), message, tmp_path / site.plugin, cookies={"cf_clearance": CF_CLEARANCE}
        )

    secrets = {CF_CLEARANCE, EMAIL, aipower.nonce, aiengine.nonce}
    for record in aipower.log + aiengine.log:
        if record.form:
            secrets |= {record.form["_wpnonce"], record.form["wpaicg_chat_client_id"]}
        if record.headers.get("x-wp-nonce"):
            secrets.add(record.headers["x-wp-nonce"])
        if isinstance(record.json, dict) and record.json.get("session"):
            secrets.add(record.json["session"])
        for pair in record.headers.get("cookie", "").split(";"):
            if "=" in pair:
                secrets.add(pair.split("=", 1)[1].strip())
    assert len(secrets) >= 9, f"the flows should carry many secrets, got {secrets}"

    for plugin in ("aipower", "aiengine"):
        folder = tmp_path / plugin
        blobs = {path.name: path.read_bytes() for path in _files(folder)}
        for exchange in json.loads(blobs["exchanges.json"]):
            for n, chunk in enumerate(exchange["response"]["chunks"]):
                if "b64" in chunk:
                    blobs[f"exchange {exchange['index']} chunk {n}"] = base64.b64decode(chunk["b64"])
        for secret in secrets:
            for form in _forms_of(secret):
                for name, data in blobs.items():
                    assert form.encode() not in data, f"{form!r} (a live secret) is in {plugin}/{name}"
        meta = json.loads(blobs["cassette.json"])
        for placeholder in ("NONCE_1", "NONCE_2", "COOKIE_1", "EMAIL_1"):
            assert placeholder in meta["placeholders"]
        expected = {"CLIENT_1"} if plugin == "aipower" else {"SESSION_1", "SESSION_2"}
        assert expected <= set(meta["placeholders"])

    # Scrubbed, the cassettes still replay: the page hands out NONCE_1, the client sends it back.
    for plugin in ("aipower", "aiengine"):
        with ReplayServer(tmp_path / plugin, speed=0) as server:
            chunks, _ = await chat(CHATS[plugin](server.url), message)
        assert "".join(chunks) == echo("Hi, write to EMAIL_1 please")
        assert server.mismatches == [] and server.unused == []


# -- matching ---------------------------------------------------------------------------------------------


async def test_a_different_message_gets_409_naming_the_nearest_request(monkeypatch):
    with ReplayServer(FIXTURES / "chatgptfree-hello", speed=0) as server:
        monkeypatch.setenv("SCRAPER_CHATGPTFREE_URL", server.url)
        with pytest.raises(HTTPError) as info:
            await chat(ChatgptFree, "Bye")
    assert info.value.status == MISMATCH_STATUS
    text = info.value.body  # what the server said; the message itself never quotes a foreign body
    assert "nearest recorded request #1 POST /wp-admin/admin-ajax.php" in text
    assert "multipart field 'message': recorded 'Привет, как дела?' != received 'Bye'" in text
    [mismatch] = server.mismatches
    assert mismatch.nearest == 1 and mismatch.path == "/wp-admin/admin-ajax.php"

    with ReplayServer(FIXTURES / "chatgpt4online-hello", speed=0) as server:
        monkeypatch.setenv("SCRAPER_CHATGPT4ONLINE_URL", server.url)
        with pytest.raises(HTTPError) as info:
            await chat(Chatgpt4Online, "Bye")
    assert info.value.status == MISMATCH_STATUS
    assert "nearest recorded request #2 POST /wp-json/mwai-ui/v1/chats/submit" in info.value.body
    assert "JSON field 'newMessage': recorded 'Привет, как дела?' != received 'Bye'" in info.value.body


# -- the shipped cassettes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,exchanges",
    [
        ("chatgptfree-nonce-refresh", [1, 2, 3, 4]),  # rejected cache POST, nonce refresh, cache POST, stream
        ("chatgptfree-stream-nonce-refresh", [1, 2, 3, 4]),  # cache POST, in-band refusal, refresh, stream (same key)
        ("chatgpt4online-nonce-refresh", [1, 2, 3, 4]),  # start_session, rejected submit, start_session, submit
        ("aipower-legacy-nonce-refresh", [1, 2, 3]),  # rejected POST, the page fetched again, POST
    ],
)
async def test_nonce_refresh_replays_from_the_shipped_cassette(name, exchanges, monkeypatch):
    with ReplayServer(FIXTURES / name, speed=0) as server:
        plugin = server.cassette.plugin
        target = {"aipkit": ChatgptFree, "aiengine": Chatgpt4Online}.get(plugin) or AIPowerChat(server.url)
        monkeypatch.setenv(ChatgptFree.url_env, server.url)
        monkeypatch.setenv(Chatgpt4Online.url_env, server.url)
        chunks, _ = await chat(target)
    assert "".join(chunks) == REPLY
    assert server.mismatches == [] and server.unused == []
    assert [s.index for s in server.served if s.outcome == "exchange"] == exchanges
    assert server.pages_served == 1, "fresh values come without navigating the page"
    meta = server.cassette.meta
    assert meta["recorded_against"] == "scraper replica (local)" and meta["site_url"] == "http://127.0.0.1"


@cassette_mark("chatgptfree-hello")
async def test_chatgptfree_through_the_plugin(cassette_url, cassette):
    assert shared_rules().allowed_hosts == {"127.0.0.1", "localhost"}, "replaying is loopback only"
    assert os.environ["SCRAPER_CHATGPTFREE_URL"] == cassette_url
    chunks, _ = await chat(ChatgptFree)
    assert "".join(chunks) == REPLY
    assert cassette.server is not None and cassette.server.unused == []


@cassette_mark("chatgpt4online-hello")
async def test_chatgpt4online_through_the_plugin(cassette_url):
    chunks, _ = await chat(Chatgpt4Online)
    assert "".join(chunks) == REPLY
    assert shared_rules().allowed_hosts == {"127.0.0.1", "localhost"}


# -- the plugin as a user runs it ------------------------------------------------------------------------

INNER_HELPERS = """
import asyncio, threading
import pytest
from scraper import WordPressChat

REPLY = "Echo: Привет, как дела? | Привет, мир! 🙂"

def ask(url):
    async def chat():
        stream = WordPressChat(url).create_async_generator("", [{"role": "user", "content": "Привет, как дела?"}])
        return await stream.collect()
    out = {}
    def run():
        try:
            out["text"] = asyncio.run(chat())
        except BaseException as exc:
            out["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    if "error" in out:
        raise out["error"]
    return out["text"]
"""


@pytest.fixture
def inner(pytester, monkeypatch, shared_browser):
    """A pytester whose runs are separate processes that can import this checkout (pytest-playwright's
    hooks cannot nest in one process), chatting in the shared browser server (through the environment)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("SCRAPER_WS_ENDPOINT", shared_browser)
    monkeypatch.setenv("PYTEST_ADDOPTS", UNUSED_PYTEST_PLUGINS)
    return pytester


def test_plugin_replays_a_shipped_cassette(inner):
    pytester = inner
    pytester.makepyfile(
        INNER_HELPERS
        + textwrap.dedent(
            """
            @pytest.mark.cassette("chatgptfree-hello")
            def test_hello(cassette_url):
                assert cassette_url.startswith("http://127.0.0.1:")
                assert ask(cassette_url + "/chat/") == REPLY


            @pytest.mark.cassette("chatgpt4online-hello")
            async def test_async_as_in_the_readme(cassette_url):
                from scraper import Chatgpt4Online

                messages = [{"role": "user", "content": "Привет, как дела?"}]
                stream = Chatgpt4Online.create_async_generator("gpt-4", messages)
                assert await stream.collect() == REPLY
            """
        )
    )
    result = pytester.runpytest_subprocess(
        *PLUGIN_ARGS, f"--cassette-dir={FIXTURES}", "-W", "error::pytest.PytestUnknownMarkWarning"
    )
    result.assert_outcomes(passed=2)


def test_plugin_missing_cassette_fails_clearly_in_mode_none(inner):
    pytester = inner
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cassette("never-recorded")
        def test_missing(cassette_url):
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--record-mode=none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Cassette 'never-recorded' not found at *never-recorded*--record-mode=once*"])
    result.stdout.no_fnmatch_line("*must not run*")


def test_plugin_records_once_then_replays(inner):
    pytester = inner
    with ReplicaSite("aipower") as site:
        site.config.chunk_delay = 0.005
        pytester.makepyfile(
            INNER_HELPERS
            + textwrap.dedent(
                f"""
                @pytest.mark.cassette("recorded-here", url={site.url!r})
                def test_hello(cassette_url):
                    assert ask(cassette_url) == REPLY
                """
            )
        )
        result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--record-mode=once", "--cassette-dir=cassettes")
        result.assert_outcomes(passed=1)
        assert site.stats.page_loads == 1 and site.stats.streams_completed == 1
    folder = pytester.path / "cassettes" / "recorded-here"
    meta = json.loads((folder / "cassette.json").read_text("utf-8"))
    assert meta["recorded_against"] == "scraper replica (local)"
    assert meta["plugin"] == "aipower" and meta["message"] == "Привет, как дела?"
    assert (folder / "page-1.html").is_file()

    # The site is gone: "once" now replays what it recorded.
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--record-mode=once", "--cassette-dir=cassettes")
    result.assert_outcomes(passed=1)


def test_plugin_rewrite_mode_records_again_over_a_cassette(inner):
    pytester = inner
    with ReplicaSite("aipower") as site:
        site.config.chunk_delay = 0
        pytester.makepyfile(
            INNER_HELPERS
            + textwrap.dedent(
                f"""
                @pytest.mark.cassette("again", url={site.url!r})
                def test_hello(cassette_url):
                    assert ask(cassette_url) == REPLY
                """
            )
        )
        for _ in range(2):
            result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--record-mode=rewrite", "--cassette-dir=cassettes")
            result.assert_outcomes(passed=1)
        assert site.stats.page_loads == 2 and site.stats.streams_completed == 2, "recorded both times"
    assert Cassette.load(pytester.path / "cassettes" / "again").meta["plugin"] == "aipower"


def test_plugin_runs_only_the_async_tests_that_are_its_own(inner):
    pytester = inner
    pytester.makepyfile(
        """
        import pytest

        async def test_someone_elses():
            raise AssertionError("the plugin ran a test that is not its own")

        @pytest.mark.scraper
        async def test_marked():
            assert True
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:asyncio", "-rA")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*_ test_someone_elses _*", "async def functions are not natively supported*"])
    result.stdout.no_fnmatch_line("*the plugin ran a test that is not its own*")


@cassette_mark("chatgptfree-hello")
async def test_replaying_refuses_a_request_to_any_other_host(cassette_url, cassette):
    # A host Chromium resolves to 127.0.0.1 (like any name a page may use), but that is not loopback by
    # name: nothing may reach it while replaying, from a runtime of other browser options too.
    with ReplicaSite("aipower") as elsewhere:
        chat = WordPressChat(
            cassette_url + "/chat/", browser={"args": ["--host-resolver-rules=MAP elsewhere.test 127.0.0.1"]}
        )
        chunks, _ = await chat_with(chat)
        assert "".join(chunks) == REPLY
        lane = await chat.session()
        target = f"http://elsewhere.test:{elsewhere.port}/"
        outcome = await lane.runtime.call(
            lane.page.evaluate("(u) => fetch(u).then(r => 'reached ' + r.status, e => 'refused: ' + e.message)", target)
        )
        assert outcome.startswith("refused"), outcome
        assert elsewhere.stats.page_loads == 0 and elsewhere.log == []


# -- the command line -------------------------------------------------------------------------------------


def test_record_command_streams_the_reply_and_writes_the_cassette(aiengine, tmp_path):
    out = tmp_path / "cli-hello"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scraper",
            "record",
            "--plugin",
            "aiengine",
            "--url",
            aiengine.url,
            "--out",
            str(out),
            "Hi there",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == echo("Hi there")
    assert f"scraper: cassette {out}" in result.stderr
    assert Cassette.load(out).meta["plugin"] == "aiengine"


def test_replay_command_serves_until_interrupted():
    process = interruptible(
        [sys.executable, "-m", "scraper", "replay", str(FIXTURES / "chatgptfree-hello"), "--speed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/chat/", timeout=10) as response:
            page = response.read().decode("utf-8")
        assert (
            "&quot;nonce&quot;:&quot;NONCE_1&quot;" in page
            and f"{url}/wp-admin/admin-ajax.php".replace("/", "\\/") in page
        )
        _, err = interrupt(process, 20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "serving chatgptfree-hello" in err and "stopped" in err
