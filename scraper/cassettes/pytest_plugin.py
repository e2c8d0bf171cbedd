"""pytest plugin: chat tests that replay recorded cassettes offline, and record them when asked.

Opt-in: ``pytest -p scraper.cassettes.pytest_plugin``, or in a project's configuration
``addopts = "-p scraper.cassettes.pytest_plugin"`` (or ``pytest_plugins = [...]`` in its root conftest).
Installing the package adds nothing to other pytest runs.

::

    @pytest.mark.cassette("chatgptfree-hello")
    async def test_hello(cassette_url):
        reply = await AIPowerChat(cassette_url).create_async_generator("", messages).collect()

``cassette_url`` serves the named cassette from the cassette directory (``fixtures/`` under the
rootdir; ``--cassette-dir`` or the ``cassette_dir`` ini value) on 127.0.0.1 and returns its URL. It
also points the preset of the cassette's plugin (``SCRAPER_CHATGPTFREE_URL`` or
``SCRAPER_CHATGPT4ONLINE_URL``) at it, so ``ChatgptFree`` and ``Chatgpt4Online`` work unchanged.
While replaying, browser contexts the test creates may reach loopback hosts only.

``--record-mode``, as in pytest-recording:

- ``none`` (default): replay only; a missing cassette fails the test and says how to record it.
- ``once``: record when the cassette is missing (the marker's ``url=`` is the site), else replay.
- ``rewrite``: always record.

Recording returns the real site's URL, records every page load and request of that origin during
the test, and writes the cassette when the test passed. pytest-playwright's ``--headed``,
``--slowmo`` and ``--tracing`` keep working: nothing here redefines them.

``async def`` tests that use these fixtures or carry the ``cassette`` or ``scraper`` marker run too, each
on a new event loop in a thread of its own (pytest-playwright's sync fixtures keep a loop in the main
thread); other async tests of a project, and any that pytest-asyncio or anyio claims (their marker, or
an ``anyio_backend`` fixture), are left to them, so the three plugins can be installed together.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import warnings
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import urlsplit

import pytest

from ..wire import logger

if TYPE_CHECKING:
    from ..browser import FlowRecorder
    from ._replay import ReplayServer

__all__ = ["CassetteFixture", "cassette", "cassette_url"]

log = logger("scraper.cassette")

RecordMode = Literal["none", "once", "rewrite"]
RECORD_MODES: tuple[RecordMode, ...] = ("none", "once", "rewrite")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


class CassetteMarker(TypedDict, total=False):
    """The arguments of ``@pytest.mark.cassette(name, url=None, speed=None, plugin=None)``."""

    name: str
    url: str | None
    speed: float | None
    plugin: str | None  # a plugin's name, as the registry lists it


@dataclass
class CassetteFixture:
    """What the ``cassette`` fixture gives a test: where it talks to and how."""

    name: str
    path: Path
    mode: Literal["replay", "record"]
    url: str
    server: ReplayServer | None = None
    recorder: FlowRecorder | None = None


def run_in_own_loop(coro: Coroutine[Any, Any, Any], timeout: float = 600) -> Any:
    """Run a coroutine to completion on a new event loop in a new thread; re-raise what it raised."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="scraper-test-loop", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the test coroutine was still running after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def run_async_test(pyfuncitem: pytest.Function) -> None:
    """Run an ``async def`` test function to completion on a loop of its own."""
    names = inspect.signature(pyfuncitem.obj).parameters
    run_in_own_loop(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))


def _ours(pyfuncitem: pytest.Function) -> bool:
    """An async test this plugin runs: it uses a cassette fixture or carries one of our markers, and no
    other runner has claimed it (pytest-asyncio's or anyio's marker, anyio's backend fixture)."""
    if any(pyfuncitem.get_closest_marker(name) for name in ("asyncio", "anyio")):
        return False
    uses = set(pyfuncitem.fixturenames)
    if "anyio_backend" in uses:
        return False
    return bool(
        uses & {"cassette", "cassette_url"}
        or pyfuncitem.get_closest_marker("cassette")
        or pyfuncitem.get_closest_marker("scraper")
    )


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # pytest-asyncio wraps the coroutine functions it runs before this hook: those are no longer ours.
    if not inspect.iscoroutinefunction(pyfuncitem.obj) or not _ours(pyfuncitem):
        return None
    run_async_test(pyfuncitem)
    return True


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("scraper", "scraper cassettes (recorded chats)")
    if not pluginmanager.hasplugin("recording"):  # pytest-recording defines the same option: share it
        group.addoption(
            "--record-mode",
            action="store",
            default=None,
            choices=RECORD_MODES,
            help="cassettes: none = replay only (default), once = record missing ones, rewrite = record all",
        )
    group.addoption("--cassette-dir", action="store", default=None, help="where cassettes live (default: fixtures/)")
    group.addoption(
        "--replay-speed",
        action="store",
        type=float,
        default=None,
        help="chunk timing when replaying: 0 all at once (default), 1.0 as recorded",
    )
    parser.addini("cassette_dir", "where cassettes live, relative to the rootdir (default: fixtures)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cassette(name, url=None, speed=None, plugin=None): replay the named cassette through the "
        "cassette_url fixture, or record it from url= (see --record-mode)",
    )
    config.addinivalue_line("markers", "scraper: run this async def test on a loop of its own (scraper's runner)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _option(config: pytest.Config, name: str) -> Any:
    # The plugin may be registered after the command line was parsed (``pytest_plugins`` in a
    # test module): then its options keep their defaults.
    return config.getoption(name, None)


def _record_mode(config: pytest.Config) -> RecordMode:
    mode = _option(config, "record_mode") or "none"
    if mode == "all":  # pytest-recording's name for it
        mode = "rewrite"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"--record-mode={mode} is not one of {', '.join(RECORD_MODES)} for scraper cassettes")
    return mode


def _cassette_dir(config: pytest.Config) -> Path:
    chosen = _option(config, "cassette_dir") or config.getini("cassette_dir") or "fixtures"
    path = Path(chosen)
    return path if path.is_absolute() else Path(config.rootpath) / path


def _marker(request: pytest.FixtureRequest) -> CassetteMarker:
    marker = request.node.get_closest_marker("cassette")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid} uses the cassette fixture without a cassette marker: add "
            "@pytest.mark.cassette('NAME') (and url='https://site' to be able to record it)."
        )
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    if not name:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.cassette needs a name, e.g. ('chatgptfree-hello')"
        )
    return {
        "name": str(name),
        "url": marker.kwargs.get("url"),
        "speed": marker.kwargs.get("speed"),
        "plugin": marker.kwargs.get("plugin"),
    }


def _passed(item: pytest.Item) -> bool:
    reports = item.stash.get(_REPORTS, {})
    return all(r.passed or r.skipped for r in reports.values()) and "call" in reports


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[CassetteFixture]:
    """The named cassette, replayed on 127.0.0.1 or (``--record-mode``) being recorded."""
    from scraper import get_runtime

    config = request.config
    spec = _marker(request)
    path = _cassette_dir(config) / spec["name"]
    exists = (path / "cassette.json").is_file()
    mode = _record_mode(config)
    recording = mode == "rewrite" or (mode == "once" and not exists)
    if not exists and not recording:
        pytest.fail(
            f"Cassette {spec['name']!r} not found at {path} and --record-mode=none only replays. "
            "Record it: run pytest with --record-mode=once (the marker needs url='https://the-site'), or "
            f'`scraper record --provider chatgptfree --out {path} "Hello"`.',
            pytrace=False,
        )
    runtime = get_runtime()
    env = pytest.MonkeyPatch()
    try:
        if recording:
            yield from _record(request, spec, path, runtime, env)
        else:
            yield from _replay(request, spec, path, runtime, env)
    finally:
        env.undo()


def _replay(
    request: pytest.FixtureRequest, spec: CassetteMarker, path: Path, runtime: Any, env: pytest.MonkeyPatch
) -> Iterator[CassetteFixture]:
    from ._replay import ReplayServer

    speed = spec.get("speed")
    if speed is None:
        speed = _option(request.config, "replay_speed")
    from ..browser import reset_all, shared_rules
    from ..client import preset_env

    server = ReplayServer(path, speed=float(speed or 0.0)).start()
    preset = preset_env(server.cassette.plugin)
    if preset:
        env.setenv(preset, server.url)
    reset_all(60)  # warm contexts of any runtime were made without the limit: the test gets new ones
    try:
        with shared_rules().only_hosts(set(LOOPBACK_HOSTS)):
            yield CassetteFixture(spec["name"], path, "replay", server.url, server=server)
    finally:
        server.stop()
        if server.mismatches:
            lines = [m.message + "".join(f"\n  also: {d}" for d in m.differences[1:]) for m in server.mismatches]
            request.node.add_report_section("teardown", "cassette mismatches", "\n".join(lines))


def _record(
    request: pytest.FixtureRequest, spec: CassetteMarker, path: Path, runtime: Any, env: pytest.MonkeyPatch
) -> Iterator[CassetteFixture]:
    from ..client import preset_env
    from ._build import from_flow

    url = (spec.get("url") or "").rstrip("/")
    if not url:
        pytest.fail(
            f"Cannot record cassette {spec['name']!r}: the marker has no url=. Give the real site, e.g. "
            f"@pytest.mark.cassette({spec['name']!r}, url='https://chatgptfree.ai').",
            pytrace=False,
        )
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if len(runtime.sites):  # a warm page would not be loaded again, and so not recorded
        runtime.call_sync(runtime.sites.forget(url), timeout=60)
    plugin = spec.get("plugin")
    preset = preset_env(plugin)
    if preset:
        env.setenv(preset, url)
    with runtime.rules.recording(origin) as recorder:
        yield CassetteFixture(spec["name"], path, "record", url, recorder=recorder)
    if not _passed(request.node):
        warnings.warn(
            f"cassette {spec['name']!r} was not written: the test did not pass, so the recording may be wrong",
            pytest.PytestWarning,
            stacklevel=1,
        )
        return
    if not recorder.pages and not recorder.exchanges:
        warnings.warn(
            f"cassette {spec['name']!r} was not written: nothing was recorded from {origin}. "
            "Does the test chat with cassette_url?",
            pytest.PytestWarning,
            stacklevel=1,
        )
        return
    cassette_data = from_flow(recorder, origin=origin, name=spec["name"], plugin=plugin)
    written = cassette_data.save(path, overwrite=True)
    log.info("recorded cassette %s at %s", cassette_data.summary(), written)


@pytest.fixture
def cassette_url(cassette: CassetteFixture) -> str:
    """The URL to chat with: the replayed cassette, or the real site while recording."""
    return cassette.url
