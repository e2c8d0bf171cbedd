/*
 * AI Power chat box (shortcode and floating widget).
 * Posts the visitor's message to admin-ajax.php with the fields the plugin's own script sends and
 * shows the reply while it streams. The data-* attributes of the box stay in the DOM.
 */
(function () {
  "use strict";

  var params = window.wpaicgParams || {};
  var LIMITED = "You have reached the usage limit for this chat. Please try again later.";

  function clientId() {
    var key = "wpaicg_chat_client_id";
    var id = null;
    try { id = window.localStorage.getItem(key); } catch (e) { id = null; }
    if (!id) {
      var chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
      id = "";
      for (var i = 0; i < 10; i++) id += chars.charAt(Math.floor(Math.random() * chars.length));
      try { window.localStorage.setItem(key, id); } catch (e) { /* private mode: keep it in memory */ }
    }
    return id;
  }

  // Reads an OpenAI-style event stream; `onText` gets the reply so far after each piece.
  function readStream(response, onText) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var state = { text: "", finished: false, error: null };

    function handle(block) {
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length || state.error) return;
      var payload = data.join("\n");
      if (payload === "[DONE]") { state.finished = true; return; }
      if (payload === "[LIMITED]") { state.error = LIMITED; return; }
      var obj;
      try { obj = JSON.parse(payload); } catch (e) { return; }
      if (obj.error) { state.error = (obj.error && obj.error.message) || String(obj.error); return; }
      if (obj.msg && (obj.tokenLimitReached || obj.messageFlagged || obj.ipBanned || obj.pineconeError)) {
        state.error = obj.msg;
        return;
      }
      var choice = obj.choices && obj.choices[0];
      if (!choice || state.finished) return;
      var piece = "";
      if (choice.delta && typeof choice.delta.content === "string") piece = choice.delta.content;
      else if (typeof choice.text === "string") piece = choice.text;
      if (piece) {
        state.text += piece;
        onText(state.text);
      }
      if (choice.finish_reason) state.finished = true;
    }

    function drain(final) {
      var parts = buffer.split(/\r?\n\r?\n/);
      buffer = final ? "" : parts.pop();
      parts.forEach(handle);
    }

    function pump() {
      return reader.read().then(function (step) {
        if (step.done) {
          buffer += decoder.decode();
          drain(true);
          return state;
        }
        buffer += decoder.decode(step.value, { stream: true });
        drain(false);
        return pump();
      });
    }
    return pump();
  }

  function setup(box) {
    var widget = box.getAttribute("data-type") === "widget";
    var prefix = widget ? "wpaicg-chatbox" : "wpaicg-chat-shortcode";
    var list = box.querySelector("." + prefix + "-messages");
    var input = box.querySelector("." + prefix + "-typing");
    var send = box.querySelector("." + prefix + "-send");
    if (!list || !input || !send) return;
    var history = [];
    var busy = false;

    function addMessage(kind, text, chatId) {
      var item = document.createElement("li");
      item.className = kind === "user" ? "wpaicg-user-message" : "wpaicg-ai-message";
      var line = document.createElement("p");
      var who = document.createElement("strong");
      who.className = "wpaicg-chat-avatar";
      who.textContent = kind === "user" ? "Human: " : "AI: ";
      var body = document.createElement("span");
      body.className = "wpaicg-chat-message";
      if (chatId) body.id = "wpaicg-chat-message-" + chatId;
      body.textContent = text;
      line.appendChild(who);
      line.appendChild(body);
      item.appendChild(line);
      list.appendChild(item);
      list.scrollTop = list.scrollHeight;
      return body;
    }

    function fields(message, chatId) {
      var botId = box.getAttribute("data-bot-id") || "0";
      var identity = botId !== "0" ? "custom_bot_" + botId : widget ? "widget" : "shortcode";
      var form = new URLSearchParams();
      form.append("_wpnonce", box.getAttribute("data-nonce") || params.search_nonce || "");
      form.append("post_id", box.getAttribute("data-post-id") || "");
      form.append("url", box.getAttribute("data-url") || window.location.href);
      form.append("action", widget ? "wpaicg_chatbox_message" : "wpaicg_chat_shortcode_message");
      form.append("message", message);
      form.append("bot_id", botId);
      form.append("chatbot_identity", identity);
      form.append("wpaicg_chat_history", JSON.stringify(history));
      form.append("wpaicg_chat_client_id", clientId());
      form.append("chat_id", chatId);
      return form.toString();
    }

    function finish(target, message, chatId, text, error) {
      if (error) {
        target.textContent = error;
        target.classList.add("wpaicg-chat-error");
      } else {
        target.textContent = text;
      }
      history.push({ id: "", text: "Human: " + message });
      history.push({ id: chatId, text: "AI: " + (error || text) });
      busy = false;
      box.classList.remove("wpaicg-busy");
    }

    function submit() {
      var message = input.value;
      if (busy || !message.trim()) return;
      busy = true;
      box.classList.add("wpaicg-busy");
      input.value = "";
      addMessage("user", message.trim());
      var chatId = String(1000 + Math.floor(Math.random() * 9000));
      var target = addMessage("ai", "", chatId);
      fetch(params.ajax_url || "/wp-admin/admin-ajax.php", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: fields(message, chatId),
      })
        .then(function (response) {
          var type = response.headers.get("content-type") || "";
          if (response.ok && type.indexOf("text/event-stream") >= 0 && response.body) {
            return readStream(response, function (text) { target.textContent = text; }).then(function (state) {
              finish(target, message, chatId, state.text, state.error);
            });
          }
          return response.text().then(function (raw) {
            var data = null;
            try { data = JSON.parse(raw); } catch (e) { data = null; }
            if (data && data.status === "success") finish(target, message, chatId, String(data.data || ""), null);
            else if (data && data.msg) finish(target, message, chatId, "", data.msg);
            else finish(target, message, chatId, "", raw.trim() || "Something went wrong (HTTP " + response.status + ")");
          });
        })
        .catch(function (error) {
          finish(target, message, chatId, "", "Something went wrong: " + ((error && error.message) || error));
        });
    }

    send.addEventListener("click", submit);
    send.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); submit(); }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); submit(); }
    });
  }

  function start() {
    var boxes = document.querySelectorAll(".wpaicg-chat-shortcode, .wpaicg-chatbox");
    for (var i = 0; i < boxes.length; i++) setup(boxes[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
