"""``scraper inspect``: what the browser finds on a chat page, for when a site changed.

Loads the page as a chat would (challenges included), then reports which plugin markers and versions
it found, every value a chat would use (secrets shortened), cookie names (never values), the checks
met and how long they took, and the timeline of requests the page made.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from ._aiengine import AIEnginePlugin
from ._aipower import AIPowerPlugin
from ._browser import BrowserOptions, get_runtime
from ._errors import ScraperError
from ._plugin import ChatPlugin
from ._session import SiteSession

__all__ = ["format_report", "inspect", "report_json", "shorten"]

_SECRET = re.compile(r"nonce|session|client_id", re.I)
_PLUGINS: tuple[tuple[ChatPlugin, tuple[str, ...], str], ...] = (
    (AIPowerPlugin(), ("wpaicg-chat-shortcode", "wpaicg-chatbox", "wpaicgParams"), "gpt3-ai-content-generator"),
    (AIEnginePlugin(), ("mwai-chatbot-container", "mwai-chatbot"), "ai-engine"),
)


def shorten(value: Any) -> str:
    """A secret as its first and last two characters and its length: enough to compare, not to use."""
    text = str(value)
    return f"{text[:2]}…{text[-2:]} ({len(text)} chars)" if len(text) > 6 else "…"


def _markers(html: str) -> list[dict[str, Any]]:
    found = []
    for plugin, markers, slug in _PLUGINS:
        hits = [m for m in markers if m in html]
        if hits:
            version = re.search(rf"/plugins/{re.escape(slug)}/[^\"'?]*\?ver=([\w.\-]+)", html)
            found.append(
                {"plugin": plugin.name, "label": plugin.label, "markers": hits, "version": version and version.group(1)}
            )
    return found


async def inspect(url: str, *, timeout: float = 60.0, proxy: str | None = None, **browser: Any) -> dict[str, Any]:
    """Load ``url`` in the browser and return the report (see :func:`format_report`)."""
    runtime = get_runtime(BrowserOptions(**browser))  # type: ignore[typeddict-item]

    async def run() -> dict[str, Any]:
        session = SiteSession(runtime, url, proxy=proxy)
        timeline: list[dict[str, Any]] = []
        context = await session.ensure_context()  # launches the browser: not part of the page's time
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
        report: dict[str, Any] = {"url": url, "user_agent": session.user_agent, "profile": session.profile_used}
        try:
            try:
                await session.open(timeout)
                report["page"] = {
                    "status": session.page_status,
                    "bytes": len(session.served_html.encode()),
                    "load_ms": round((time.perf_counter() - started) * 1000),
                }
            except ScraperError as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            report["challenges"] = [
                {"vendor": c.vendor, "kind": c.kind, "cleared": c.cleared, "seconds": c.seconds, "markers": c.markers}
                for c in session.challenges
            ]
            plugins = _markers(session.served_html) if "error" not in report else []
            for found in plugins:
                plugin = next(p for p, _, _ in _PLUGINS if p.name == found["plugin"])
                try:
                    values = await plugin.read_values(session, timeout)
                    found["values"] = {
                        k: (shorten(v) if v and _SECRET.search(k) else v) for k, v in sorted(values.items())
                    }
                except ScraperError as exc:
                    found["error"] = f"{type(exc).__name__}: {exc}"
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
            await session.close()

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
        lines.append("plugins     no AI Power or AI Engine chat box found")
    for found in plugins:
        version = f" {found['version']}" if found.get("version") else ""
        lines.append(f"plugin      {found['label']}{version} (markers: {', '.join(found['markers'])})")
        if found.get("error"):
            lines.append(f"  error     {found['error']}")
        for key, value in (found.get("values") or {}).items():
            lines.append(f"  {key:<16} {value}")
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
