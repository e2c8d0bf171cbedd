"""The one list of chat plugins, and detection: which plugins and bots a page has.

Everything that needs to know "which plugins exist" asks here: the chat client, ``inspect``, the
cassettes, the direct client, the CLI. Adding a plugin means one module and one line in
:data:`PLUGINS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..errors import ConfigError
from ..wire import Document
from .aiengine import AIEnginePlugin
from .aipkit import AIPKitPlugin
from .aipower import AIPowerPlugin
from .base import Detection, Plugin, Volatile
from .kognetiks import KognetiksPlugin
from .mxchat import MxChatPlugin

__all__ = ["PLUGINS", "Detection", "detect", "get_plugin", "plugin_of_request", "plugins_named", "volatile_of"]

PLUGINS: tuple[Plugin, ...] = (
    AIPowerPlugin(),
    AIPKitPlugin(),
    AIEnginePlugin(),
    KognetiksPlugin(),
    MxChatPlugin(),
)


def get_plugin(name: str) -> Plugin:
    """The plugin called ``name``; ConfigError naming the known ones otherwise."""
    for plugin in PLUGINS:
        if plugin.name == name:
            return plugin
    raise ConfigError(f"Unknown chat plugin {name!r}; known: {', '.join(p.name for p in PLUGINS)}.")


def plugin_of_request(url: str, body: str | None) -> Plugin | None:
    """The plugin a recorded request belongs to, by the markers in its URL or body."""
    for plugin in PLUGINS:
        if any(marker in url or (body and marker in body) for marker in plugin.request_markers):
            return plugin
    return None


def volatile_of(name: str | None) -> Volatile:
    """What changes per run in the requests of plugin ``name`` (of any plugin when unknown)."""
    chosen = [p for p in PLUGINS if p.name == name] or list(PLUGINS)
    merged = Volatile()
    for plugin in chosen:
        merged = merged | plugin.volatile
    return merged


def plugins_named(names: Iterable[str] | None) -> tuple[Plugin, ...]:
    """The plugins whose name or family is in ``names`` (all of them for None), in registry order."""
    if names is None:
        return PLUGINS
    wanted = set(names)
    chosen = tuple(p for p in PLUGINS if p.name in wanted or p.family in wanted)
    unknown = wanted - {p.name for p in PLUGINS} - {p.family for p in PLUGINS}
    if unknown:
        raise ConfigError(
            f"Unknown chat plugin {', '.join(sorted(unknown))}; known: {', '.join(p.name for p in PLUGINS)}."
        )
    return chosen


def detect(documents: Sequence[Document], plugins: Iterable[Plugin] = PLUGINS) -> list[Detection]:
    """Ask each plugin what it recognises in these views of one page (the HTML as served first, then
    the live DOM, where script-built chat boxes show up). A bot found in several views is listed once,
    from the first view that has it; bots are in page order."""
    found: list[Detection] = []
    for plugin in plugins:
        detection = Detection(plugin)
        seen: set[tuple[str, str]] = set()
        for index, doc in enumerate(documents):
            for marker in plugin.markers:
                if marker not in detection.markers and doc.contains(marker):
                    detection.markers.append(marker)
            detection.version = detection.version or plugin.version(doc.html)
            for bot in plugin.find_bots(doc):
                if bot.key not in seen:
                    seen.add(bot.key)
                    detection.bots.append(replace(bot, position=(index, *bot.position)))
        if detection.markers or detection.bots:
            found.append(detection)
    return found
