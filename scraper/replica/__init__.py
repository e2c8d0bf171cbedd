"""Local look-alikes of WordPress chat plugins (AI Power, AI Engine, AIPKit, MxChat), served on 127.0.0.1.

They speak the plugins' protocols byte for byte (headers, status codes, JSON shapes, stream layout)
and serve pages whose scripts make the chat box work in a browser, so a client can be tested, shown
and measured without a live site. Standard library only, and independent of the rest of ``scraper``.

::

    from scraper.replica import ReplicaSite, Replica, SiteConfig

    with ReplicaSite("aipower", config=SiteConfig(chunk_delay=0)) as site:
        print(site.url, site.nonce)

    with Replica() as both:
        both.aipower.url, both.aiengine.url

    # AIPKit (AI Power 2.3+): several bots on /chat/, a cache POST then an EventSource stream
    with ReplicaSite("aipkit") as site:
        [bot.id for bot in site.config.bots]  # 25874 "Gemini" inline, 25875 "GPT-4o mini" in a popup

    # several plugins on one page and one WordPress
    with ReplicaSite("aipkit+aiengine") as site:
        site.plugins  # ("aipkit", "aiengine")

    # behind Cloudflare's JS challenge: a browser clears it by itself, a plain HTTP client gets a 403
    with ReplicaSite("aipower", config=SiteConfig(antibot="js_challenge", challenge_delay=0.3)) as site:
        site.clearance_for("Mozilla/5.0 ...")  # the cf_clearance value that User-Agent would be given
"""

from __future__ import annotations

from .config import ANTIBOT_MODES, DEFAULT_BOTS, NONCE_MODES, PAGE_MODES, Bot, RecordedRequest, ReplicaStats, SiteConfig
from .exchange import ClientGone
from .server import PLUGINS, Replica, ReplicaSite

__all__ = [
    "ANTIBOT_MODES",
    "DEFAULT_BOTS",
    "NONCE_MODES",
    "PAGE_MODES",
    "PLUGINS",
    "Bot",
    "ClientGone",
    "RecordedRequest",
    "Replica",
    "ReplicaSite",
    "ReplicaStats",
    "SiteConfig",
]
