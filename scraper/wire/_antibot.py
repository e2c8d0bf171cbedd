"""Recognising anti-bot pages: one table of markers, one detector.

A marker names a vendor, what kind of page it means, and where to look (a response header, the page
title, or the HTML). ``challenge`` pages clear by themselves in a real browser (a script runs, a
clearance cookie arrives, the page reloads); ``interactive`` ones need a person; ``block`` pages never
clear. Add a vendor by adding rows to :data:`MARKERS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["MARKERS", "Challenge", "Marker", "detect"]

Kind = Literal["challenge", "interactive", "block"]
_SEVERITY: dict[str, int] = {"challenge": 0, "interactive": 1, "block": 2}


@dataclass(frozen=True)
class Marker:
    """One sign of an anti-bot page. ``pattern`` is a case-insensitive regular expression."""

    vendor: str
    kind: Kind
    where: Literal["header", "title", "html"]
    pattern: str
    header: str = ""  # the header's name, when ``where`` is "header"
    strong: bool = True  # False: seen on ordinary pages too, so it only adds to a strong marker

    def matches(self, headers: Mapping[str, str], title: str, html: str) -> bool:
        if self.where == "header":
            return bool(re.search(self.pattern, headers.get(self.header, ""), re.I))
        return bool(re.search(self.pattern, title if self.where == "title" else html, re.I))


MARKERS: tuple[Marker, ...] = (
    Marker("Cloudflare", "challenge", "header", r"^challenge$", header="cf-mitigated"),
    Marker("Cloudflare", "challenge", "title", r"^Just a moment\.\.\.$"),
    Marker("Cloudflare", "challenge", "html", r"id=[\"']challenge-form[\"']"),
    Marker("Cloudflare", "challenge", "html", r"window\._cf_chl_opt"),
    Marker("Cloudflare", "challenge", "html", r"/cdn-cgi/challenge-platform/", strong=False),
    Marker("Cloudflare", "interactive", "html", r"class=[\"'][^\"']*\bcf-turnstile\b", strong=False),
    Marker("Cloudflare", "interactive", "html", r"challenges\.cloudflare\.com/turnstile", strong=False),
    Marker("Cloudflare", "block", "title", r"^Attention Required! \| Cloudflare$"),
    Marker("DDoS-Guard", "challenge", "title", r"^DDoS-Guard$"),
    Marker("DDoS-Guard", "challenge", "header", r"^ddos-guard$", header="server"),
    Marker("Sucuri", "block", "title", r"Sucuri WebSite Firewall"),
    Marker("Sucuri", "block", "header", r".+", header="x-sucuri-id"),
    Marker("Imperva", "challenge", "html", r"_Incapsula_Resource"),
)

_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)


@dataclass
class Challenge:
    """An anti-bot page met on the way: who, what kind, which markers, and how long it took."""

    vendor: str
    kind: Kind
    url: str
    markers: list[str] = field(default_factory=list)
    seconds: float | None = None  # how long it took to clear; None while it has not
    cleared: bool = False


def detect(url: str, headers: Mapping[str, str], html: str) -> Challenge | None:
    """The anti-bot page this response is, if it is one."""
    lowered = {k.lower(): v for k, v in headers.items()}
    match = _TITLE.search(html[:20_000])
    title = " ".join(match.group(1).split()) if match else ""
    hits = [m for m in MARKERS if m.matches(lowered, title, html)]
    vendors = {m.vendor for m in hits if m.strong}
    if not vendors:
        return None
    vendor_hits = [m for m in hits if m.vendor in vendors]
    worst = max(vendor_hits, key=lambda m: _SEVERITY[m.kind])
    return Challenge(
        vendor=worst.vendor,
        kind=worst.kind,
        url=url,
        markers=[f"{m.where}:{m.header or ''}{'=' if m.header else ''}{m.pattern}" for m in vendor_hits],
    )
