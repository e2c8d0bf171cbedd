"""The deployment guide and its files (docs/deploy.md, docs/deploy/*.yaml) as users copy them.

A flag the command line does not take, or an environment variable the package never reads, would fail
(or silently do nothing) in someone's fleet, not here: every ``scraper`` command line they write goes
through the real argument parser, and every ``SCRAPER_*`` name must be one the package's source reads.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from scraper.cli import build_parser
from tests._support import ROOT

GUIDE = ROOT / "docs" / "deploy.md"
COMPOSE = ROOT / "docs" / "deploy" / "compose.yaml"
KUBERNETES = ROOT / "docs" / "deploy" / "kubernetes.yaml"
SHELL_ENDS = {"&&", "||", "|", ";", "&"}


def commands() -> set[str]:
    """The subcommands ``scraper`` has (serve, browser-server, ...)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def command_lines(text: str) -> Iterator[list[str]]:
    """Each ``scraper COMMAND ...`` in a piece of shell: its arguments up to the end of the command."""
    text = text.replace("\\\n", " ")
    pattern = re.compile(rf"(?<![\w/.-])scraper\s+(?:{'|'.join(map(re.escape, sorted(commands())))})(?![\w-])")
    for line in text.splitlines():
        for found in pattern.finditer(line):
            words = shlex.split(line[found.start() :], comments=True)[1:]
            end = next((i for i, word in enumerate(words) if word in SHELL_ENDS), len(words))
            yield words[:end]


def guide_shell() -> Iterator[str]:
    """The guide's shell: its ``sh`` blocks and its inline code."""
    text = GUIDE.read_text(encoding="utf-8")
    yield from re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    yield from re.findall(r"`([^`\n]+)`", prose)


def strings(node: Any) -> Iterator[str]:
    """Every string of a parsed YAML document; an argv list starting with ``scraper`` as one line."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        if node and node[0] == "scraper" and all(isinstance(item, str) for item in node):
            yield shlex.join(node)
        for item in node:
            yield from strings(item)


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kubernetes() -> dict[tuple[str, str], Any]:
    """The Kubernetes objects by kind and name."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents(KUBERNETES)}


def yaml_lines(path: Path) -> list[list[str]]:
    return [argv for doc in documents(path) for text in strings(doc) for argv in command_lines(text)]


def accepted(argv: list[str]) -> str | None:
    """None when the real parser takes ``argv``, else what it said."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            return said.getvalue().strip().splitlines()[-1]
    return None


def flag_value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == flag]


def test_both_files_parse_as_yaml():
    compose = documents(COMPOSE)
    kinds = [doc["kind"] for doc in documents(KUBERNETES)]
    assert len(compose) == 1 and {"redis", "browser-1", "browser-2", "serve", "lb"} <= set(compose[0]["services"])
    assert compose[0]["services"]["serve"]["deploy"]["replicas"] == 2
    assert sorted(kinds) == sorted(["Deployment"] * 2 + ["NetworkPolicy", "StatefulSet"] + ["Service"] * 3)
    serve = kubernetes()["Deployment", "scraper"]
    pod = serve["spec"]["template"]
    assert serve["spec"]["replicas"] == 2 and pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize("path", [COMPOSE, KUBERNETES], ids=lambda p: p.name)
def test_every_command_line_in_the_files_is_accepted(path: Path):
    lines = yaml_lines(path)
    assert {argv[0] for argv in lines} == {"serve", "browser-server"}, "each file runs both commands"
    refused = {shlex.join(argv): accepted(argv) for argv in lines if accepted(argv) is not None}
    assert not refused, refused


def test_every_command_line_in_the_guide_is_accepted():
    lines = [argv for text in guide_shell() for argv in command_lines(text)]
    assert {"serve", "browser-server"} <= {argv[0] for argv in lines}
    assert any("--state" in argv and "--browser" in argv for argv in lines), "the fleet's serve line is checked"
    refused = {shlex.join(argv): accepted(argv) for argv in lines if accepted(argv) is not None}
    assert not refused, refused


def test_every_benchmark_command_in_the_guide_is_accepted():
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"python -m (benchmarks\.\w+)([^\n`]*)", text)
    assert found
    for module, rest in found:
        parser = importlib.import_module(module).build_parser()
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(shlex.split(rest))  # SystemExit on an option it does not have


def test_every_scraper_variable_named_is_one_the_package_reads():
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "scraper").rglob("*.py"))
    named = set()
    for path in (GUIDE, COMPOSE, KUBERNETES):
        named |= set(re.findall(r"\bSCRAPER_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")))
    assert {"SCRAPER_STATE", "SCRAPER_BROWSERS", "SCRAPER_API_KEY"} <= named
    unknown = sorted(name for name in named if not re.search(rf"\b{name}\b", source))
    assert not unknown, f"named in the deployment docs but read nowhere in scraper/: {unknown}"


@pytest.mark.parametrize("path", [COMPOSE, KUBERNETES], ids=lambda p: p.name)
def test_secrets_come_from_the_environment_and_every_browser_named_exists(path: Path):
    lines = yaml_lines(path)
    serve = [argv for argv in lines if argv[0] == "serve"]
    browsers = [url for argv in serve for url in flag_value(argv, "--browser")]
    paths = [value for argv in lines if argv[0] == "browser-server" for value in flag_value(argv, "--path")]
    assert serve and len(browsers) == 2 and paths
    assert all("$" in value for value in paths + browsers), "the browsers' path comes from a secret"
    assert not any("--api-key" in argv for argv in lines), "the key is never on a command line"
    hosts = {urlsplit(url).hostname for url in browsers} | {
        urlsplit(state).hostname for argv in serve for state in flag_value(argv, "--state")
    }
    if path == COMPOSE:
        names = set(documents(path)[0]["services"])
    else:
        found = kubernetes()
        browser = found["StatefulSet", "scraper-browser"]["spec"]
        pods = {f"scraper-browser-{i}.{browser['serviceName']}" for i in range(browser["replicas"])}
        names = pods | {name for kind, name in found if kind == "Service"}
    assert hosts <= names, hosts - names


def test_one_playwright_version_across_the_fleet():
    for path in (COMPOSE, KUBERNETES):
        text = path.read_text(encoding="utf-8")
        images = set(re.findall(r"playwright/python:v([\d.]+)-", text))
        versions = images | set(re.findall(r"playwright==([\d.]+)", text))
        assert images and len(versions) == 1, (path.name, versions)
        assert f"playwright=={versions.pop()}" in GUIDE.read_text(encoding="utf-8")


def test_the_readme_links_the_guide():
    assert "docs/deploy.md" in (ROOT / "README.md").read_text(encoding="utf-8")
