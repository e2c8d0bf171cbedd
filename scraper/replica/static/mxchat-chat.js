/* MxChat replica page script: the chat box of the replica site, speaking the plugin's protocol.
   A session id is made here and kept a day in the cookie mxchat_session_id_<bot>; a message is a
   FormData POST of mxchat_stream_chat (streamed data/content lines ending [DONE]) or, with streaming
   off, a urlencoded mxchat_handle_chat_request answered with one JSON object. */
(function () {
  "use strict";
  var settings = window.mxchatChat || {};
  var STREAMING_MODELS = ["gpt", "o1", "claude", "grok", "deepseek"];

  function streams() {
    var model = String(settings.model || "");
    return settings.enable_streaming_toggle === "on" &&
      (model === "openrouter" || STREAMING_MODELS.some(function (p) { return model.indexOf(p) === 0; }));
  }

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function newSession(bot) {
    var id = "mxchat_chat_" + Math.random().toString(36).substr(2, 9);
    document.cookie = "mxchat_session_id_" + bot + "=" + id + "; path=/; max-age=86400; SameSite=Lax";
    return id;
  }

  function session(bot) {
    return cookie("mxchat_session_id_" + bot) || newSession(bot);
  }

  function bubble(box, kind, text) {
    var outer = document.createElement("div");
    outer.className = kind;
    var inner = document.createElement("div");
    inner.setAttribute("dir", "auto");
    inner.textContent = text;
    outer.appendChild(inner);
    box.appendChild(outer);
    box.scrollTop = box.scrollHeight;
    return inner;
  }

  function failure(body) {
    if (body.status === "rate_limit_exceeded") return body.message || settings.rate_limit_message;
    var data = body.data;
    if (typeof data === "string") return data;
    if (data && (data.error_message || data.message)) return data.error_message || data.message;
    return body.message || "Something went wrong.";
  }

  function fields(bot, text) {
    return [
      ["message", text],
      ["session_id", session(bot)],
      ["nonce", settings.nonce || ""],
      ["current_page_url", location.href],
      ["current_page_title", document.title],
      ["bot_id", bot],
    ];
  }

  function readStream(response, target) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var text = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return text;
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split("\n");
        buffer = lines.pop();
        for (var i = 0; i < lines.length; i++) {
          var line = lines[i];
          if (line.indexOf("data: ") !== 0) continue;
          var data = line.slice(6);
          if (data === "[DONE]") return text;
          var value = JSON.parse(data);
          if (value.error) throw new Error(value.error_message || value.message || "error");
          text += value.content || "";
          target.textContent = text;
        }
        return pump();
      });
    }
    return pump();
  }

  function send(bot, box, text, retried) {
    var target = bubble(box, "bot-message", "…");
    var request;
    if (streams()) {
      var form = new FormData();
      form.append("action", "mxchat_stream_chat");
      fields(bot, text).forEach(function (f) { form.append(f[0], f[1]); });
      request = fetch(settings.ajax_url, { method: "POST", body: form, credentials: "same-origin" });
    } else {
      var body = new URLSearchParams([["action", "mxchat_handle_chat_request"]].concat(fields(bot, text)));
      request = fetch(settings.ajax_url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      });
    }
    request.then(function (response) {
      var type = response.headers.get("content-type") || "";
      if (type.indexOf("application/json") === -1) return readStream(response, target);
      return response.json().then(function (value) {
        if (value.success === false) {
          if (value.data && value.data.action === "reset_session" && !retried) {
            target.parentNode.remove();
            newSession(bot);
            send(bot, box, text, true);
            return null;
          }
          throw new Error(failure(value));
        }
        target.textContent = value.text;
        return value.text;
      });
    }).catch(function (error) {
      target.textContent = String(error.message || error);
      target.parentNode.className = "bot-message error-message";
    });
  }

  function wire(wrapper) {
    var bot = wrapper.getAttribute("data-bot-id");
    var input = document.getElementById("chat-input-" + bot);
    var button = document.getElementById("send-button-" + bot);
    var box = document.getElementById("chat-box-" + bot);
    if (!input || !button || !box) return;
    function submit() {
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      bubble(box, "user-message", text);
      send(bot, box, text, false);
    }
    button.addEventListener("click", submit);
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
    });
    var launcher = document.getElementById("floating-chatbot-button-" + bot);
    var floating = document.getElementById("floating-chatbot-" + bot);
    if (launcher && floating) {
      launcher.addEventListener("click", function () { floating.classList.toggle("hidden"); });
    }
  }

  function start() {
    var wrappers = document.querySelectorAll(".mxchat-chatbot-wrapper[data-bot-id]");
    for (var i = 0; i < wrappers.length; i++) wire(wrappers[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
