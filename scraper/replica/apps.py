"""The one list of replica plugin apps: a site runs any of them, by the app's ``plugin`` name.

A new replica plugin is its app module and one line here.
"""

from __future__ import annotations

from .aiengine import AIEngineApp
from .aipkit import AIPKitApp
from .aipower import AIPowerApp
from .kognetiks import KognetiksApp
from .mxchat import MxChatApp
from .wordpress import WordPressApp

__all__ = ["APPS", "PLUGINS"]

APPS: dict[str, type[WordPressApp]] = {
    app.plugin: app
    for app in (
        AIPowerApp,
        AIEngineApp,
        AIPKitApp,
        KognetiksApp,
        MxChatApp,
    )
}
PLUGINS: tuple[str, ...] = tuple(APPS)
