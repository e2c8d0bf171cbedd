"""Local look-alikes of two WordPress chat plugins, AI Power and AI Engine, served on 127.0.0.1.

They speak the plugins' protocols byte for byte (headers, status codes, JSON shapes, stream layout)
and serve pages whose scripts make the chat box work in a browser, so a client can be tested, shown
and measured without a live site. Standard library only, and independent of the rest of ``scraper``.

::

    from scraper.replica import ReplicaSite, Replica, SiteConfig

    with ReplicaSite("aipower", config=SiteConfig(chunk_delay=0)) as site:
        print(site.url, site.nonce)

    with Replica() as both:
        both.aipower.url, both.aiengine.url
"""

from __future__ import annotations

from .config import RecordedRequest, ReplicaStats, SiteConfig
from .exchange import ClientGone
from .server import PLUGINS, Replica, ReplicaSite

__all__ = ["PLUGINS", "ClientGone", "RecordedRequest", "Replica", "ReplicaSite", "ReplicaStats", "SiteConfig"]
