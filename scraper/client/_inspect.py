"""``scraper inspect``: what the browser finds on a chat page, for when a site changed.

Loads the page as a chat would (challenges included), then reports which plugin markers and versions
it found, every value a chat would use (secrets shortened), cookie names (never values), the checks
met and how long they took, and the timeline of requests the page made.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..browser import BrowserOptions, Lane, SitePool, get_runtime
from ..errors import ScraperError
from ..plugins import PLUGINS, find_bots, read_values
from ..wire import redact_url, secret_kind, shorten

__all__ = ["format_report", "inspect", "report_json"]


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """Values as a person may see them: secrets shortened."""
    return {k: (shorten(v) if v and secret_kind(k) else v) for k, v in sorted(values.items())}


async def inspect(url: str, *, timeout: float = 60.0, proxy: str | None = None, **browser: Any) -> dict[str, Any]:
    """Load ``url`` in the browser and return the report (see :func:`format_report`)."""
    runtime = get_runtime(BrowserOptions(**browser))  # type: ignore[typeddict-item]

    async def run() -> dict[str, Any]:
        lane = Lane(SitePool(runtime, url, proxy=proxy, max_pages=1))
        timeline: list[dict[str, Any]] = []
        context = await lane.ensure_context()  # launches the browser: not part of the page's time
        started = time.perf_counter()
        opened: dict[Any, dict[str, Any]] = {}

        def on_request(request: Any) -> None:
            entry = {
                "method": request.method,
                "url": request.url,
                "type": request.resource_type,
                "start_ms": round((time.perf_counter() - started) * 1000),
                "status": None,
                "ms": None,
            }
            opened[request] = entry
            timeline.append(entry)

        def on_done(request: Any, failed: bool) -> None:
            entry = opened.pop(request, None)
            if entry is None:
                return
            entry["ms"] = round((time.perf_counter() - started) * 1000) - entry["start_ms"]
            if failed:
                entry["failure"] = request.failure

        async def on_finished(request: Any) -> None:
            response = await request.response()
            if request in opened:
                opened[request]["status"] = response.status if response else None
            on_done(request, failed=False)

        context.on("request", on_request)
        context.on("requestfinished", on_finished)
        context.on("requestfailed", lambda request: on_done(request, failed=True))
        report: dict[str, Any] = {"url": redact_url(url), "user_agent": lane.user_agent, "profile": lane.profile_used}
        try:
            try:
                await lane.ready(timeout)
                report["page"] = {
                    "status": lane.page_status,
                    "bytes": len(lane.served_html.encode()),
                    "load_ms": round((time.perf_counter() - started) * 1000),
                }
            except ScraperError as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            report["challenges"] = [
                {"vendor": c.vendor, "kind": c.kind, "cleared": c.cleared, "seconds": c.seconds, "markers": c.markers}
                for c in lane.challenges
            ]
            plugins: list[dict[str, Any]] = []
            for found in await find_bots(lane, PLUGINS, timeout) if "error" not in report else []:
                entry: dict[str, Any] = {
                    "plugin": found.plugin.name,
                    "label": found.plugin.label,
                    "generation": found.plugin.generation_of(found.bots),
                    "version": found.version,
                    "markers": found.markers,
                    "bots": [],
                }
                for bot in found.bots:
                    shown: dict[str, Any] = {"id": bot.id, "name": bot.name, "plugin": bot.plugin}
                    try:
                        shown["values"] = _shown(await read_values(lane, found.plugin, bot, timeout))
                    except ScraperError as exc:
                        shown["error"] = f"{type(exc).__name__}: {exc}"
                    entry["bots"].append(shown)
                plugins.append(entry)
            report["plugins"] = plugins
            cookies = await context.cookies()
            report["cookies"] = sorted({c["name"] for c in cookies})
            for _ in range(40):  # let requests that just ended report it before the context closes
                if not opened:
                    break
                await asyncio.sleep(0.05)
            report["timeline"] = timeline
            return report
        finally:
            await lane.close()

    return await runtime.call(run())


def format_report(report: dict[str, Any]) -> str:
    """The report as text for a person."""
    lines = [f"scraper inspect {report['url']}"]
    page = report.get("page")
    if page:
        lines.append(f"page        HTTP {page['status']}, {page['bytes']} bytes, ready after {page['load_ms']} ms")
    if report.get("error"):
        lines.append(f"error       {report['error']}")
    lines.append(f"user agent  {report.get('user_agent')}")
    lines.append(f"profile     {report.get('profile') or 'none saved'}")
    challenges = report.get("challenges") or []
    if not challenges:
        lines.append("checks      none")
    for c in challenges:
        state = f"cleared after {c['seconds']:.1f} s" if c["cleared"] else "did not clear"
        lines.append(f"checks      {c['vendor']} {c['kind']} page, {state}")
    plugins = report.get("plugins") or []
    if not plugins and not report.get("error"):
        lines.append(f"plugins     no chat box found (looked for {', '.join(p.label for p in PLUGINS)})")
    for found in plugins:
        version = f" {found['version']}" if found.get("version") else ""
        lines.append(f"plugin      {found['label']}{version} (markers: {', '.join(found['markers']) or 'none'})")
        lines.append(f"  speaks    {found['generation']}")
        if not found["bots"]:
            lines.append("  no chat box with its values found")
        for bot in found["bots"]:
            lines.append(f"  bot {bot['id']} {bot['name']!r} ({bot['plugin']})")
            if bot.get("error"):
                lines.append(f"    error          {bot['error']}")
            for key, value in (bot.get("values") or {}).items():
                lines.append(f"    {key:<14} {value}")
    lines.append(f"cookies     {', '.join(report.get('cookies') or []) or 'none'}")
    lines.append("timeline")
    for entry in report.get("timeline") or []:
        status = entry.get("status") or entry.get("failure") or "…"
        took = f"{entry['ms']} ms" if entry.get("ms") is not None else ""
        lines.append(
            f"  +{entry['start_ms']:>5} ms  {entry['method']:<5} {status!s:<4} {entry['type']:<10} {took:>7}  "
            f"{entry['url'][:100]}"
        )
    return "\n".join(lines)


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)
