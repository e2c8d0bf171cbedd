"""Which chat a request means: the one resolver behind ``scraper serve`` and the ``Client`` façade.

A request picks its chat by, in this order of precedence:

* ``site`` (an extension): any chat page, ``{"url": ..., "plugins": [...], "bot": ...}``; with ``provider``
  naming a preset, the page is a mirror of that preset (its plugins and models apply);
* ``provider``: a preset's name (``chatgptfree``) or a site the catalog was given (``NAME``);
* ``model``: a preset's model or alias (``gpt-4o-mini`` is ChatgptFree's, ``gpt-4`` Chatgpt4Online's), a
  site's ``NAME``, or ``NAME/BOT`` for one bot of that site's page.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, ModelNotSupportedError, ScraperError
from ..plugins import PLUGINS, Bot, plugins_named
from ..wire import logger
from ._presets import PRESETS
from ._providers import WordPressChat
from ._service import ChatService, ChatTarget

__all__ = ["ModelCatalog", "ModelInfo", "Resolved", "check_page_url"]

log = logger("scraper.models")
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SITE_KEYS = frozenset({"url", "plugins", "bot", "fallback_urls"})
MAX_FALLBACK_URLS = 3  # pages a request may name besides its url: each is a page load and a warm site


@dataclass(frozen=True)
class Resolved:
    """Where a request's chat goes, the model name its answer carries, and who offers that model."""

    target: ChatTarget
    model: str
    owned_by: str


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /v1/models``."""

    id: str
    owned_by: str


def check_page_url(url: Any, what: str = "site.url") -> str:
    """An http(s) URL with a host (a bare origin gets its "/", as a browser gives it), or ConfigError."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be an http:// or https:// URL of a chat page, not {url!r}.")
    return urlunsplit(parts._replace(path=parts.path or "/"))


class ModelCatalog:
    """The models one server (or one :class:`~scraper.Client`) offers, and the chat each name means.

    ``sites`` maps a name to a chat page (``--site NAME=URL``); ``allow_urls`` says whether requests may
    name pages of their own (``site``).
    """

    def __init__(self, sites: Mapping[str, str] | None = None, *, allow_urls: bool = True) -> None:
        self.preset_models = _preset_models()
        self.sites = {name: self._check_site(name, url) for name, url in (sites or {}).items()}
        self.allow_urls = allow_urls
        self.created = int(time.time())
        self._bots: dict[str, tuple[Bot, ...]] = {}

    def _check_site(self, name: str, url: str) -> str:
        if not _SITE_NAME.match(name):
            raise ConfigError(f"A site name is letters, digits, '.', '_' or '-' (no '/'), not {name!r}.")
        if name in self.preset_models or name in PRESETS:
            raise ConfigError(f"The site name {name!r} is taken by a preset or one of its models; pick another.")
        return check_page_url(url, f"the URL of site {name!r}")

    # -- resolving ------------------------------------------------------------------------------------------
    def resolve(
        self, model: str | None, *, provider: str | None = None, site: Mapping[str, Any] | None = None
    ) -> Resolved:
        """The chat a request means; ConfigError (400) or ModelNotSupportedError (404) saying why not."""
        if site is not None:
            return self._page(model, provider, site)
        if provider:
            if provider in PRESETS:
                return self._preset(provider, model)
            if provider in self.sites:
                return self._site(provider, model)
            known = ", ".join([*PRESETS, *self.sites])
            raise ConfigError(f"Unknown provider {provider!r}; known: {known}.")
        if not model:
            raise ConfigError("`model` is required: GET /v1/models lists them (e.g. gpt-4o-mini).")
        if model in self.preset_models:
            return self._preset(self.preset_models[model], model)
        if model.partition("/")[0] in self.sites:
            return self._site(model.partition("/")[0], model)
        known = ", ".join([*self.preset_models, *self.sites])
        raise ModelNotSupportedError(f"No model {model!r} here; the models are: {known} (and NAME/BOT per site bot).")

    def _preset(self, name: str, model: str | None) -> Resolved:
        preset = PRESETS[name]
        return Resolved(preset.target(), preset.get_model(model), name)

    def _site(self, name: str, model: str | None) -> Resolved:
        wanted, slash, bot = (model or name).partition("/")
        if wanted != name or (slash and not bot):
            raise ModelNotSupportedError(f"Site {name!r} offers the models {name!r} and {name}/BOT, not {model!r}.")
        return Resolved(ChatTarget(self.sites[name], None, bot or None), model or name, name)

    def _page(self, model: str | None, provider: str | None, site: Mapping[str, Any]) -> Resolved:
        if not self.allow_urls:
            raise ConfigError(
                "This server takes no page URLs (`site`): it listens beyond loopback without --allow-urls. "
                "Use a model from GET /v1/models."
            )
        unknown = sorted(set(site) - _SITE_KEYS)
        if unknown:
            raise ConfigError(f"`site` takes url, plugins, bot and fallback_urls, not {', '.join(unknown)}.")
        url = check_page_url(site.get("url"))
        fallbacks = site.get("fallback_urls") or []
        if not isinstance(fallbacks, (list, tuple)):
            raise ConfigError("site.fallback_urls must be a list of page URLs, tried in order when url has no chat.")
        if len(fallbacks) > MAX_FALLBACK_URLS:
            raise ConfigError(
                f"site.fallback_urls takes at most {MAX_FALLBACK_URLS} pages (each one tried costs a page load), "
                f"not {len(fallbacks)}."
            )
        fallback_urls = tuple(check_page_url(other, "each of site.fallback_urls") for other in fallbacks)
        plugins = site.get("plugins")
        if plugins is not None:
            if not isinstance(plugins, (list, tuple)) or not all(isinstance(p, str) for p in plugins):
                known = ", ".join(dict.fromkeys(p.family for p in PLUGINS))
                raise ConfigError(f"site.plugins must be a list of plugin names ({known}, ...).")
            plugins_named(plugins)  # ConfigError naming the known ones
        bot = site.get("bot")
        if bot is not None and (isinstance(bot, bool) or not isinstance(bot, (str, int))):
            raise ConfigError("site.bot must be a bot's id or name.")
        if provider is not None and provider not in PRESETS:
            raise ConfigError(f"With `site`, `provider` names a preset ({', '.join(PRESETS)}), not {provider!r}.")
        chat = PRESETS[provider] if provider else WordPressChat
        resolved = chat.get_model(model)
        by_model = chat.bot_model(resolved)
        target = ChatTarget(url, tuple(plugins) if plugins else chat.plugins, bot, fallback_urls, by_model)
        return Resolved(target, resolved, provider or "site")

    # -- listing --------------------------------------------------------------------------------------------
    async def models(self, service: ChatService, timeout: float = 30) -> list[ModelInfo]:
        """Every model: the presets' models and aliases, each site, and ``NAME/BOT`` for each bot of its
        page (found on first use; a page that cannot be read lists its name alone, and is tried again)."""
        found = [ModelInfo(model, owner) for model, owner in self.preset_models.items()]
        bots = await asyncio.gather(*(self._bots_of(service, name, timeout) for name in self.sites))
        for name, site_bots in zip(self.sites, bots, strict=True):
            found.append(ModelInfo(name, name))
            found += [ModelInfo(f"{name}/{bot.id}", name) for bot in site_bots]
        return found

    async def _bots_of(self, service: ChatService, name: str, timeout: float) -> tuple[Bot, ...]:
        if name not in self._bots:
            try:
                self._bots[name] = tuple(await service.bots(ChatTarget(self.sites[name]), timeout=timeout))
            except ScraperError as exc:
                log.warning("could not list the bots of site %s: %s", name, exc)
                return ()
        return self._bots[name]


def _preset_models() -> dict[str, str]:
    """Every preset's models and aliases, each with the preset that offers it (the first, if several)."""
    owners: dict[str, str] = {}
    for name, preset in PRESETS.items():
        for model in [*preset.get_models(), *preset.model_aliases]:
            owners.setdefault(model, name)
    return owners
