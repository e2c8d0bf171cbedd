/*
 * AIPKit chat boxes (replica page script).
 * Each element with data-config (an inline .aipkit_chat_container, or a popup's .aipkit_popup_wrapper whose
 * inner container has none) becomes a working chat: the message is cached with a FormData POST, then read
 * back as an EventSource stream. A 403 from the cache POST gets one fresh nonce and one retry; the stream
 * step has no retry, its errors are shown as "<errorPrefix> <message>".
 */
(function () {
  "use strict";

  var SELECTOR = ".aipkit_chat_container[data-config], .aipkit_popup_wrapper[data-config]";
  var NONCE_ACTION = typeof window.aipkit_getChatNonceAction === "string" && window.aipkit_getChatNonceAction
    ? window.aipkit_getChatNonceAction
    : "aipkit_get_frontend_chat_nonce";

  // A version 4 UUID from crypto.getRandomValues.
  function uuid4() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // The visitor's id: made once, kept in localStorage across tabs and reloads.
  function guestId() {
    var id = localStorage.getItem("aipkit_guest_uuid");
    if (!id) {
      id = uuid4();
      localStorage.setItem("aipkit_guest_uuid", id);
    }
    window.aipkit_guest_uuid = id;
    return id;
  }

  // The conversation of this tab, made on the first message.
  function conversationId() {
    var id = sessionStorage.getItem("aipkit_current_conversation_uuid");
    if (!id) {
      id = uuid4();
      sessionStorage.setItem("aipkit_current_conversation_uuid", id);
    }
    return id;
  }

  function clientMessageId(botId) {
    return "aipkit-client-msg-" + botId + "-" + Date.now() + "-" + Math.random().toString(36).slice(2, 7);
  }

  function addMessage(box, sender, text) {
    var message = document.createElement("div");
    message.className = "aipkit_chat_message aipkit_chat_message-" + sender;
    var bubble = document.createElement("div");
    bubble.className = "aipkit_chat_bubble";
    bubble.textContent = text;
    message.appendChild(bubble);
    box.messages.appendChild(message);
    box.messages.scrollTop = box.messages.scrollHeight;
    return message;
  }

  function errorText(config, message) {
    var prefix = (config.text && config.text.errorPrefix) || "Error:";
    return prefix + " " + message;
  }

  // POST the refresh action; the new nonce goes into the bot's config, so the stream step uses it too.
  function refreshNonce(config) {
    var form = new FormData();
    form.append("action", NONCE_ACTION);
    if (config.botId) form.append("bot_id", config.botId);
    return fetch(config.ajaxUrl, { method: "POST", body: form, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (json) {
        if (!json || !json.success || !json.data || !json.data.nonce) throw new Error("Nonce refresh failed");
        config.nonce = json.data.nonce;
      });
  }

  // Step 1: the message into the plugin's cache; resolves with the cache key.
  function cacheMessage(config, text, retried) {
    var form = new FormData();
    form.append("action", "aipkit_cache_sse_message");
    form.append("message", text);
    form.append("_ajax_nonce", config.nonce || "");
    form.append("bot_id", config.botId);
    form.append("user_client_message_id", clientMessageId(config.botId));
    return fetch(config.ajaxUrl, { method: "POST", body: form }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (json) {
        if (response.ok && json && json.success && json.data && json.data.cache_key) return json.data.cache_key;
        var code = json && json.data && json.data.code;
        if (!retried && (response.status === 403 || code === "nonce_failure_cache_sse")) {
          return refreshNonce(config).then(function () { return cacheMessage(config, text, true); });
        }
        throw new Error((json && json.data && json.data.message) || "HTTP " + response.status);
      });
    });
  }

  // Step 2: the stream of the cached message, in the query order the plugin's script uses.
  function streamUrl(config, cacheKey) {
    var params = new URLSearchParams();
    params.append("action", "aipkit_frontend_chat_stream");
    params.append("cache_key", cacheKey);
    params.append("bot_id", config.botId);
    params.append("session_id", guestId());
    params.append("conversation_uuid", conversationId());
    if (config.postId > 0) params.append("post_id", config.postId);
    params.append("_ts", Date.now());
    params.append("_ajax_nonce", config.nonce || "");
    return config.ajaxUrl + (config.ajaxUrl.indexOf("?") === -1 ? "?" : "&") + params.toString();
  }

  function streamReply(box, cacheKey) {
    return new Promise(function (resolve) {
      var config = box.config;
      var source = new EventSource(streamUrl(config, cacheKey));
      var message = null;
      var bubble = null;
      var text = "";
      var finished = false;

      function botBubble(id) {
        if (!message) {
          message = addMessage(box, "bot", "");
          message.classList.add("aipkit_message_streaming");
          bubble = message.querySelector(".aipkit_chat_bubble");
        }
        if (id) message.id = id;
      }

      function finish(error) {
        if (finished) return;
        finished = true;
        source.close();
        if (error) {
          if (message && !text) message.remove();
          addMessage(box, "error", errorText(config, error));
        } else if (message) {
          message.classList.remove("aipkit_message_streaming");
          message.classList.add("aipkit_message_complete");
        }
        resolve();
      }

      source.addEventListener("message_start", function (e) {
        botBubble(JSON.parse(e.data).message_id);
      });
      source.addEventListener("message", function (e) {
        var data = JSON.parse(e.data);
        if (typeof data.delta !== "string") return;
        botBubble();
        text += data.delta;
        bubble.textContent = text;
      });
      source.addEventListener("warning", function (e) {
        botBubble();
        var note = document.createElement("em");
        note.className = "aipkit_chat_warning";
        note.textContent = " " + JSON.parse(e.data).error;
        message.appendChild(note);
      });
      source.addEventListener("done", function () { finish(null); });
      source.addEventListener("error", function (e) {
        if (typeof e.data === "string") {  // the plugin's own error event
          var data = {};
          try { data = JSON.parse(e.data); } catch (ignored) { /* keep the generic text */ }
          finish(data.error || config.text.streamError);
        } else {  // the connection ended without done or error
          finish(config.text.connError || "Connection error.");
        }
      });
    });
  }

  function send(box) {
    var text = box.input.value;
    if (!text.trim() || box.busy) return;
    box.busy = true;
    box.input.value = "";
    addMessage(box, "user", text);
    cacheMessage(box.config, text, false)
      .then(function (cacheKey) { return streamReply(box, cacheKey); })
      .catch(function (error) { addMessage(box, "error", errorText(box.config, error.message)); })
      .then(function () { box.busy = false; });
  }

  function openPopup(wrapper, container, trigger, botId) {
    var open = trigger.getAttribute("aria-expanded") !== "true";
    trigger.setAttribute("aria-expanded", open ? "true" : "false");
    container.setAttribute("aria-hidden", open ? "false" : "true");
    container.inert = !open;
    wrapper.classList.toggle("aipkit_popup_open", open);
    localStorage.setItem("aipkit_popup_hint_seen_" + botId + "_v1", "1");
    if (open) container.querySelector(".aipkit_chat_input_field").focus();
  }

  function init(element) {
    if (element.hasAttribute("data-aipkit-ready")) return;
    element.setAttribute("data-aipkit-ready", "1");
    var config;
    try {
      config = JSON.parse(element.getAttribute("data-config"));
    } catch (error) {
      console.error("AIPKit: the chatbot's data-config is not valid JSON", error);
      return;
    }
    config.text = config.text || {};
    var popup = element.classList.contains("aipkit_popup_wrapper");
    var container = popup ? element.querySelector(".aipkit_popup_content") : element;
    var box = {
      config: config,
      input: container.querySelector(".aipkit_chat_input_field"),
      messages: container.querySelector(".aipkit_chat_messages"),
      busy: false,
    };
    box.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send(box);
      }
    });
    container.querySelector(".aipkit_send_btn").addEventListener("click", function () { send(box); });
    if (popup) {
      var trigger = element.querySelector(".aipkit_popup_trigger");
      trigger.addEventListener("click", function () { openPopup(element, container, trigger, config.botId); });
    }
  }

  function start() {
    guestId();
    Array.prototype.forEach.call(document.querySelectorAll(SELECTOR), init);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
