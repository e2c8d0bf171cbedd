"""Reading values out of the HTML a site served (BeautifulSoup) and out of the live DOM."""

from __future__ import annotations

import json
import re
from typing import Any

from bs4 import BeautifulSoup

__all__ = ["DOM_ATTRS", "element_attrs", "script_object"]

# Runs in the page: the attributes of the first element matching a selector, as the DOM has them now.
DOM_ATTRS = """
(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const out = {};
  for (const a of el.attributes) out[a.name] = a.value;
  return out;
}
"""


def element_attrs(html: str, selector: str) -> dict[str, str] | None:
    """Attributes (entities decoded) of the first element matching a CSS selector in ``html``."""
    if not html:
        return None
    soup = BeautifulSoup(html, "html.parser")
    element = soup.select_one(selector)
    if element is None:
        return None
    return {name: " ".join(v) if isinstance(v, list) else str(v) for name, v in element.attrs.items()}


def script_object(html: str, variable: str) -> dict[str, Any] | None:
    """The JSON object literal assigned to ``var <variable> = {...};`` in an inline script."""
    if not html:
        return None
    match = re.search(rf"\b{re.escape(variable)}\s*=\s*(\{{.*?\}})\s*;\s*(?:\n|</script>)", html, re.S)
    if not match:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
