/*
 * Kognetiks Chatbot (replica page script).
 * The live kchat_settings is the shortcode's object, which has no nonce: the first message asks
 * chatbot_chatgpt_refresh_nonce for one. A message is one form-encoded POST answered by one JSON object;
 * a 403 refreshes the nonce and sends once more with the same client_message_id; a queued answer keeps
 * the typing indicator, as the plugin's script does. Reply HTML is shown with only the plugin's own tags.
 */
(function () {
  "use strict";

  var ALLOWED = { A: ["href", "target"], UL: [], LI: [], SPAN: [], BR: [], CENTER: [], IMG: ["src", "alt", "style"] };

  function settings() { return window.kchat_settings || {}; }

  function form(fields) {
    return Object.keys(fields).map(function (key) {
      return encodeURIComponent(key) + "=" + encodeURIComponent(fields[key]).replace(/%20/g, "+");
    }).join("&");
  }

  function post(fields, extraHeaders) {
    var headers = {
      "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
      "X-Requested-With": "XMLHttpRequest",
    };
    Object.keys(extraHeaders || {}).forEach(function (name) { headers[name] = extraHeaders[name]; });
    return fetch(settings().ajax_url, { method: "POST", headers: headers, body: form(fields), credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (json) {
          return { status: response.status, json: json };
        });
      });
  }

  function refreshNonce() {
    return post({ action: "chatbot_chatgpt_refresh_nonce" }).then(function (answer) {
      var data = answer.json && answer.json.success && answer.json.data;
      if (!data || !data.chatbot_message_nonce) throw new Error("Could not refresh the security token.");
      Object.keys(data).forEach(function (name) { settings()[name] = data[name]; });
      settings().nonce_timestamp = Date.now();
    });
  }

  // The reply's HTML with only the tags the plugin itself writes (links, images, the learnings list).
  function clean(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    (function walk(node) {
      Array.prototype.slice.call(node.childNodes).forEach(function (child) {
        if (child.nodeType !== 1) return;
        var allowed = ALLOWED[child.tagName];
        if (!allowed) {
          child.replaceWith(document.createTextNode(child.textContent));
          return;
        }
        Array.prototype.slice.call(child.attributes).forEach(function (attr) {
          var bad = allowed.indexOf(attr.name) < 0 || /^\s*javascript:/i.test(attr.value);
          if (bad) child.removeAttribute(attr.name);
        });
        walk(child);
      });
    })(template.content);
    return template.content;
  }

  function addMessage(box, kind, content) {
    var message = document.createElement("div");
    message.className = "chatbot-message chatbot-" + kind + "-text";
    if (typeof content === "string") message.textContent = content;
    else message.appendChild(content);
    box.conversation.appendChild(message);
    box.conversation.scrollTop = box.conversation.scrollHeight;
    return message;
  }

  function errorText(json, status) {
    var data = json && json.data;
    if (data && typeof data === "object") return data.message || "Error: " + status;
    return data || "Error: HTTP " + status;
  }

  function sendMessage(text, messageId, retried) {
    var config = settings();
    var fields = {
      action: "chatbot_chatgpt_send_message",
      message: text,
      user_id: config.user_id,
      page_id: config.page_id,
      session_id: config.session_id,
      client_message_id: messageId,
      chatbot_nonce: config.chatbot_message_nonce,
    };
    var headers = { "Cache-Control": "no-cache, no-store, must-revalidate", Pragma: "no-cache", Expires: "0" };
    return post(fields, headers).then(function (answer) {
      if (answer.status === 403 && !retried) {
        return refreshNonce().then(function () { return sendMessage(text, messageId, true); });
      }
      return answer;
    });
  }

  function send(box) {
    var text = box.input.value;
    if (!text.trim() || box.busy) return;
    box.busy = true;
    box.submit.disabled = true;
    box.input.value = "";
    addMessage(box, "user", text);
    var typing = addMessage(box, "typing-indicator", "…");
    var messageId = "client_" + Date.now() + "_" + Math.random().toString(36).substr(2, 9);
    var ready = settings().chatbot_message_nonce ? Promise.resolve() : refreshNonce();
    ready
      .then(function () { return sendMessage(text, messageId, false); })
      .then(function (answer) {
        var json = answer.json;
        if (answer.status === 200 && json && json.success && json.data && json.data.queued) {
          setTimeout(function () { typing.remove(); box.submit.disabled = false; box.busy = false; }, 5000);
          return;
        }
        typing.remove();
        if (answer.status === 200 && json && json.success && typeof json.data === "string") {
          addMessage(box, "bot", clean(json.data));
        } else {
          addMessage(box, "error", errorText(json, answer.status));
        }
        box.submit.disabled = false;
        box.busy = false;
      })
      .catch(function (error) {
        typing.remove();
        addMessage(box, "error", error.message);
        box.submit.disabled = false;
        box.busy = false;
      });
  }

  function start() {
    var element = document.getElementById("chatbot-chatgpt");
    if (!element || element.hasAttribute("data-kchat-ready")) return;
    element.setAttribute("data-kchat-ready", "1");
    var box = {
      conversation: document.getElementById("chatbot-chatgpt-conversation"),
      input: document.getElementById("chatbot-chatgpt-message"),
      submit: document.getElementById("chatbot-chatgpt-submit"),
      busy: false,
    };
    box.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send(box);
      }
    });
    box.submit.addEventListener("click", function () { send(box); });
    var erase = document.getElementById("chatbot-chatgpt-erase-btn");
    if (erase) erase.addEventListener("click", function () { box.conversation.textContent = ""; });
    var open = document.getElementById("chatgpt-open-btn");
    if (open && element.classList.contains("chatbot-floating-style")) {
      open.addEventListener("click", function () {
        var shown = element.style.display !== "none";
        element.style.display = shown ? "none" : "flex";
        if (!shown) box.input.focus();
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
