"""What the package puts into every page before the page's own scripts run.

A chat box's script may read its settings and strip them from the DOM at once (AI Engine removes
``data-system``); when the box itself is built by a script after load, the HTML as served never had
them. So a watcher notes the attributes of every chat box element as it appears or changes, before
the plugin's script can remove them. It uses the DOM functions as they were before any page script
ran, so a page that wraps ``querySelector`` and friends does not see it look.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..plugins import PLUGINS

__all__ = ["APPEARED", "CAPTURED", "captured_html", "page_script"]

CAPTURED = "() => { const boxes = window[Symbol.for('scraper.boxes')]; return boxes ? boxes.all() : []; }"
# Whether an element matching the selector is on the page now, or was seen before a script changed it.
APPEARED = "(selector) => { const boxes = window[Symbol.for('scraper.boxes')]; return !!boxes && boxes.has(selector); }"

_WATCH = """
(() => {
  const key = Symbol.for("scraper.boxes");
  if (window[key]) return;
  const selector = SELECTOR;
  const matches = Element.prototype.matches, all = Element.prototype.querySelectorAll;
  const first = Document.prototype.querySelector, make = Document.prototype.createElement;
  const set = Element.prototype.setAttribute;
  const seen = new Map();
  const note = (el) => {
    if (!(el instanceof Element) || !matches.call(el, selector)) return;
    const attrs = {};
    for (const a of el.attributes) attrs[a.name] = a.value;
    const before = seen.get(el);
    if (!before || Object.keys(attrs).length >= Object.keys(before).length) seen.set(el, attrs);
  };
  const scan = (node) => {
    note(node);
    if (node instanceof Element || node instanceof Document) for (const el of all.call(node, selector)) note(el);
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") note(change.target);
      else for (const node of change.addedNodes) scan(node);
    }
  }).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ATTRIBUTES });
  const has = (sel) => {
    if (first.call(document, sel)) return true;
    for (const attrs of seen.values()) {
      const probe = make.call(document, "div");  // detached: the page never sees it
      for (const [name, value] of Object.entries(attrs)) set.call(probe, name, value);
      if (matches.call(probe, sel)) return true;
    }
    return false;
  };
  Object.defineProperty(window, key, { value: { all: () => Array.from(seen.values()), has }, enumerable: false });
})();
"""


def page_script() -> str:
    """The init script: the chat box watcher for every plugin's box selector."""
    selector = ", ".join(plugin.bot_selector for plugin in PLUGINS)
    attributes = sorted(
        {"class", "data-config", "data-system", "data-params", "data-nonce", "data-post-id", "data-bot-id"}
    )
    return _WATCH.replace("SELECTOR", json.dumps(selector)).replace("ATTRIBUTES", json.dumps(attributes))


def captured_html(boxes: list[dict[str, Any]]) -> str:
    """The chat box elements the watcher saw, as HTML the plugins' box readers understand."""
    out = []
    for attrs in boxes:
        text = " ".join(f'{name}="{html.escape(str(value), quote=True)}"' for name, value in attrs.items())
        out.append(f"<div {text}></div>")
    return "\n".join(out)
