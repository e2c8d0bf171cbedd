"""Plugin knowledge lives in one place: every other part of the package asks the registry."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from scraper.browser._page_script import page_script
from scraper.cli import _common
from scraper.plugins import PLUGINS, get_plugin
from scraper.replica import PLUGINS as REPLICA_PLUGINS
from scraper.replica.antibot import is_chat_request
from scraper.replica.apps import APPS
from scraper.replica.server import STATIC_FILES

PACKAGE = Path(__file__).resolve().parents[2] / "scraper"


def _plugin_choices() -> set[str]:
    parser = argparse.ArgumentParser()
    _common.add_site_flags(parser, "chat")
    action = next(a for a in parser._actions if a.dest == "plugin")
    return set(action.choices or ())


def test_cli_plugin_choices_are_the_registry_names_and_families() -> None:
    assert _plugin_choices() == {p.name for p in PLUGINS} | {p.family for p in PLUGINS}


def test_every_plugin_has_a_replica_app_and_back() -> None:
    assert set(REPLICA_PLUGINS) == {p.name for p in PLUGINS} == set(APPS)
    for name, app in APPS.items():
        assert app.plugin == name and get_plugin(name).name == name


def test_the_page_script_watches_every_plugins_boxes_and_attributes() -> None:
    script = page_script()
    for plugin in PLUGINS:
        assert plugin.bot_selector.replace('"', '\\"') in script
        for name in plugin.box_attributes:
            assert f'"{name}"' in script


def test_replica_serves_each_apps_files() -> None:
    for app in APPS.values():
        for path, file, kind in app.static_files:
            assert STATIC_FILES[path] == (file, kind)


def test_no_plugin_name_is_spelled_outside_its_own_modules() -> None:
    """Only a plugin's module, its replica app, the two registries, the family classes, the presets and
    the list of shipped recordings may name it (comments aside)."""
    allowed = {"registry.py", "apps.py", "_providers.py", "_presets.py", "_catalog.py", "_record.py"}
    names = [p.name for p in PLUGINS]
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name in allowed or path.stem in names or path.parent.name == "replica":
            continue
        text = "\n".join(line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines())
        for name in names:
            if re.search(rf"[\"']{name}[\"']", text):
                offenders.append(f"{path.relative_to(PACKAGE)}: {name!r}")
    assert offenders == []


class _Ex:
    def __init__(self, method: str, path: str, query: dict[str, str]) -> None:
        self.method, self.path, self.query = method, path, query


def test_chat_requests_are_what_the_apps_say() -> None:
    assert is_chat_request(_Ex("POST", "/wp-admin/admin-ajax.php", {}))  # type: ignore[arg-type]
    assert is_chat_request(_Ex("GET", "/wp-admin/admin-ajax.php", {"action": "aipkit_frontend_chat_stream"}))  # type: ignore[arg-type]
    assert is_chat_request(_Ex("POST", "/wp-json/mwai-ui/v1/chats/submit", {}))  # type: ignore[arg-type]
    assert not is_chat_request(_Ex("GET", "/chat/", {}))  # type: ignore[arg-type]
