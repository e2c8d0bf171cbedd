"""Reading values out of HTML: a chat page as the server sent it, or a snapshot of its live DOM."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

__all__ = ["Document", "json_object", "script_object"]


class Document:
    """A page parsed once, asked many times (every plugin looks at the same HTML)."""

    def __init__(self, html: str) -> None:
        self.html = html or ""
        self._soup: BeautifulSoup | None = None

    @property
    def soup(self) -> BeautifulSoup:
        if self._soup is None:
            from bs4 import BeautifulSoup  # on first use: importing it costs more than a short command's run

            self._soup = BeautifulSoup(self.html, "html.parser")
        return self._soup

    def select(self, selector: str) -> list[dict[str, str]]:
        """The attributes (entities decoded) of every element matching a CSS selector, in page order."""
        return [attrs for _, attrs in self.elements(selector)]

    def elements(self, selector: str) -> list[tuple[tuple[int, int], dict[str, str]]]:
        """Each element matching ``selector`` as (its position in the source, its attributes)."""
        if not self.html:
            return []
        return [
            (
                (element.sourceline or 0, element.sourcepos or 0),
                {name: " ".join(v) if isinstance(v, list) else str(v) for name, v in element.attrs.items()},
            )
            for element in self.soup.select(selector)
        ]

    def first(self, selector: str) -> dict[str, str] | None:
        """The attributes of the first element matching ``selector``, or None."""
        found = self.select(selector)
        return found[0] if found else None

    def script_object(self, variable: str) -> dict[str, Any] | None:
        """The JSON object assigned to ``var <variable> = {...};`` in an inline script."""
        return script_object(self.html, variable)

    def contains(self, text: str) -> bool:
        return text in self.html


def script_object(html: str, variable: str) -> dict[str, Any] | None:
    """The JSON object literal assigned to ``var <variable> = {...};`` in an inline script."""
    if not html:
        return None
    match = re.search(rf"\b{re.escape(variable)}\s*=\s*(\{{.*?\}})\s*;\s*(?:\n|</script>)", html, re.S)
    if not match:
        return None
    return json_object(match.group(1))


def json_object(text: str | None) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object; None when it is missing, not JSON, or not an object."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
