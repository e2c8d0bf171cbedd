"""What the package puts into every page before the page's own scripts run.

* **The request hook.** A chat request is sent by a function defined here and started by a timer, so
  a page script that wraps ``fetch`` (a bot sensor adds its token there, and looks at the call stack)
  sees a call like its own code's, with no automation frames, and the request still goes through the
  page's own (wrapped) ``fetch``. The body is read as it arrives and handed to Python on request, as
  base64 (or, in a browser without ``Uint8Array.prototype.toBase64``, as the bytes themselves when
  they are all ASCII): byte for byte either way.
* **The chat box watcher.** A chat box's script may read its settings and strip them from the DOM at
  once (AI Engine removes ``data-system``); when the box itself is built by a script after load, the
  HTML as served never had them. So the attributes of every chat box element are noted as it appears
  or changes, before the plugin's script can remove them.

Both use the functions as they were before any page script ran (``setTimeout``, the DOM queries), so
a page that wraps them does not see the package at work.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..plugins import PLUGINS

__all__ = ["ABORT", "APPEARED", "CAPTURED", "NEXT", "SETTLED", "START", "captured_html", "page_script"]

# Calls into the hook, by id; arguments travel as arguments, nothing is built by string formatting.
START = "([req]) => new Promise((done) => window[Symbol.for('scraper.hook')].later(req, done))"
NEXT = "(id) => window[Symbol.for('scraper.hook')].next(id)"
ABORT = "(id) => window[Symbol.for('scraper.hook')].abort(id)"

CAPTURED = "() => { const boxes = window[Symbol.for('scraper.boxes')]; return boxes ? boxes.all() : []; }"
# Whether an element matching the selector is on the page now, or was seen before a script changed it.
APPEARED = "(selector) => { const boxes = window[Symbol.for('scraper.boxes')]; return !!boxes && boxes.has(selector); }"
# "box" once such an element is there, "quiet" once the page has loaded and neither its DOM nor a
# resource load has changed for the given milliseconds, else false (``wait_for_function`` polls it).
SETTLED = (
    "([selector, ms]) => { const boxes = window[Symbol.for('scraper.boxes')];"
    " return !boxes ? false : boxes.has(selector) ? 'box' : boxes.quiet(ms) ? 'quiet' : false; }"
)

_HOOK = """
(() => {
  const key = Symbol.for("scraper.hook");
  if (window[key]) return;
  const timer = setTimeout, binary = String.fromCharCode, base64 = btoa, apply = Reflect.apply;
  const test = RegExp.prototype.test, native = Uint8Array.prototype.toBase64;
  const fetches = new Map();
  const waiting = new Set();  // requests whose timer has not fired yet: an abort must stop them there
  const ascii = /^[\x00-\x7f]*$/;
  // What arrived since the last pull, as one string. Where the browser has Uint8Array's own base64
  // (Chromium 140 on), always base64: it costs nothing in the page, where building a string of the
  // bytes first costs more than the third base64 adds to the DevTools protocol's share. Elsewhere the
  // bytes themselves when they are all ASCII (a non-ASCII string costs the protocol several times its
  // length), else base64 of that string.
  const take = (state) => {
    const chunks = state.queue.splice(0, state.queue.length);
    let all = chunks.length === 1 ? chunks[0] : null;
    if (!all) {
      let size = 0;
      for (const c of chunks) size += c.length;
      all = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) { all.set(c, at); at += c.length; }
    }
    const out = { text: "", data: "", done: state.done, error: state.error };
    if (native) { out.data = apply(native, all, []); return out; }
    let text = "";
    for (let i = 0; i < all.length; i += 0x8000) text += apply(binary, null, all.subarray(i, i + 0x8000));
    if (apply(test, ascii, [text])) out.text = text;
    else out.data = base64(text);
    return out;
  };
  const start = (req, done) => {
    const state = { queue: [], done: false, error: null, wake: null, aborted: false };
    const controller = new AbortController();
    state.controller = controller;
    fetches.set(req.id, state);
    state.notify = () => { if (state.wake) { const wake = state.wake; state.wake = null; wake(); } };
    let body = req.body;
    if (req.form) {
      body = new FormData();
      for (const [name, value] of req.form) body.append(name, value);
    }
    window.fetch(req.url, {
      method: req.method, headers: req.headers, body,
      credentials: "include", cache: "no-store", redirect: "follow", signal: controller.signal,
    }).then((response) => {
      const headers = {};
      response.headers.forEach((value, name) => { headers[name] = value; });
      done({ status: response.status, statusText: response.statusText, url: response.url, headers });
      const reader = response.body ? response.body.getReader() : null;
      if (!reader) { state.done = true; state.notify(); return; }
      const pump = () => reader.read().then((r) => {
        if (r.done) { state.done = true; state.notify(); return; }
        state.queue.push(r.value);
        state.notify();
        pump();
      }, (e) => {
        if (!state.aborted) state.error = String((e && e.message) || e);
        state.done = true;
        state.notify();
      });
      pump();
    }, (e) => {
      fetches.delete(req.id);
      done({ failed: String((e && e.message) || e) });
    });
  };
  const begin = (req, done) => {
    if (waiting.delete(req.id)) start(req, done);
    else done({ failed: "aborted before it was sent" });
  };
  const hook = {
    later: (req, done) => { waiting.add(req.id); timer(begin, 0, req, done); },
    next: (id) => {
      const state = fetches.get(id);
      if (!state) return { text: "", data: "", done: true, error: "the page no longer holds this request" };
      const step = () => {
        const out = take(state);
        if (state.done) fetches.delete(id);
        return out;
      };
      if (state.queue.length || state.done) return step();
      return new Promise((resolve) => { state.wake = () => resolve(step()); });
    },
    abort: (id) => {
      if (waiting.delete(id)) return true;  // stopped before it went out
      const state = fetches.get(id);
      if (!state) return false;
      state.aborted = true;
      fetches.delete(id);
      state.controller.abort();
      const running = !state.done;
      state.done = true;
      state.notify();  // a pull that waits for data ends now, with nothing
      return running;
    },
  };
  Object.defineProperty(window, key, { value: hook, enumerable: false });
})();
"""

_WATCH = """
(() => {
  const key = Symbol.for("scraper.boxes");
  if (window[key]) return;
  const selector = SELECTOR;
  const matches = Element.prototype.matches, all = Element.prototype.querySelectorAll;
  const first = Document.prototype.querySelector, make = Document.prototype.createElement;
  const set = Element.prototype.setAttribute;
  const now = Performance.prototype.now, entries = Performance.prototype.getEntriesByType;
  const seen = new Map();
  let changed = now.call(performance);
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
    changed = now.call(performance);
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
  const quiet = (ms) => {
    if (document.readyState !== "complete") return false;
    let last = changed;
    for (const entry of entries.call(performance, "resource")) last = Math.max(last, entry.responseEnd);
    return now.call(performance) - last >= ms;
  };
  const api = { all: () => Array.from(seen.values()), has, quiet };
  Object.defineProperty(window, key, { value: api, enumerable: false });
})();
"""


def page_script() -> str:
    """The init script: the request hook, and the chat box watcher for every plugin's box selector.

    It ends with a line break: a driver may wrap it in a function on one line (patchright does), where
    a last line comment would swallow the closing brace."""
    selector = ", ".join(plugin.bot_selector for plugin in PLUGINS)
    attributes = ["class", *sorted({name for plugin in PLUGINS for name in plugin.box_attributes})]
    watch = _WATCH.replace("SELECTOR", json.dumps(selector)).replace("ATTRIBUTES", json.dumps(attributes))
    return _HOOK + watch + "\n"


def captured_html(boxes: list[dict[str, Any]]) -> str:
    """The chat box elements the watcher saw, as HTML the plugins' box readers understand."""
    out = []
    for attrs in boxes:
        text = " ".join(f'{name}="{html.escape(str(value), quote=True)}"' for name, value in attrs.items())
        out.append(f"<div {text}></div>")
    return "\n".join(out)
