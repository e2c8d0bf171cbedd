/*
 * AI Engine chatbot.
 * Reads its settings from data-params / data-system / data-theme, removes those attributes, renders
 * the chat, gets a guest nonce from start_session when the page has none, and streams the reply of
 * chats/submit into the conversation.
 */
(function () {
  "use strict";

  var SETTINGS = ["data-params", "data-system", "data-theme"];

  function randomId() {
    return (Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2)).slice(0, 11);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Reads AI Engine's event stream; `onLive` gets the reply text so far after each content chunk.
  async function readStream(response, onLive) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var result = { text: "", reply: null, error: null, newToken: null };

    function handle(block) {
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;
      var event;
      try { event = JSON.parse(data.join("\n")); } catch (e) { return; }
      if (event.type === "live") {
        if (!event.subtype || event.subtype === "content") {
          result.text += event.data || "";
          onLive(result.text);
        }
      } else if (event.type === "end") {
        var payload = event.data;
        try { if (typeof payload === "string") payload = JSON.parse(payload); } catch (e) { payload = {}; }
        if (payload && payload.success === false) result.error = payload.message || "The chat failed.";
        else if (payload) {
          result.reply = typeof payload.reply === "string" ? payload.reply : null;
          result.newToken = payload.new_token || null;
        }
      } else if (event.type === "error") {
        result.error = event.data || "Error";
      }
    }

    for (;;) {
      var step = await reader.read();
      if (step.done) break;
      buffer += decoder.decode(step.value, { stream: true });
      var parts = buffer.split(/\r?\n\r?\n/);
      buffer = parts.pop();
      parts.forEach(handle);
    }
    buffer += decoder.decode();
    if (buffer.trim()) handle(buffer);
    return result;
  }

  async function readJson(response) {
    var raw = await response.text();
    var data = null;
    try { data = JSON.parse(raw); } catch (e) { data = null; }
    if (!response.ok || !data || data.success === false) {
      var message = (data && data.message) || raw.trim() || "HTTP " + response.status;
      return { text: "", reply: null, error: message, newToken: null };
    }
    return { text: "", reply: String(data.reply || ""), error: null, newToken: data.new_token || null };
  }

  function init(container) {
    var params, system;
    try {
      params = JSON.parse(container.getAttribute("data-params") || "{}");
      system = JSON.parse(container.getAttribute("data-system") || "{}");
      JSON.parse(container.getAttribute("data-theme") || "{}");
    } catch (e) {
      console.error("AI Engine: the chatbot settings are not valid JSON.", e);
      return;
    }
    SETTINGS.forEach(function (name) { container.removeAttribute(name); });
    container.setAttribute("data-mwai-initialized", "true");

    var restUrl = String(system.restUrl || "/wp-json").replace(/\/+$/, "");
    var botId = system.botId || "default";
    var nonce = system.restNonce || null;
    var sessionId = system.sessionId || null;
    var storeKey = "mwai-chat-" + botId;
    var aiName = params.aiName || "AI: ";
    var busy = false;
    var state = null;

    if (params.localMemory) {
      try { state = JSON.parse(window.localStorage.getItem(storeKey) || "null"); } catch (e) { state = null; }
    }
    if (!state || !Array.isArray(state.messages)) state = { chatId: randomId(), messages: [] };

    function startConversation() {
      state = { chatId: randomId(), messages: [] };
      if (params.startSentence) {
        var now = Date.now();
        state.messages.push({
          id: randomId(), role: "assistant", content: params.startSentence, who: aiName,
          timestamp: now, key: "start-" + now,
        });
      }
    }
    if (!state.messages.length) startConversation();

    function save() {
      if (!params.localMemory) return;
      try { window.localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* storage full or off */ }
    }

    var chat = element("div", "mwai-chat mwai-" + (params.themeId || "chatgpt") + "-theme");
    chat.id = "mwai-chatbot-" + botId;
    chat.setAttribute("dir", "auto");
    var box = element("div", "mwai-window-box");
    var body = element("div", "mwai-body");
    var conversation = element("div", "mwai-conversation");
    var inputRow = element("div", "mwai-input");
    var inputText = element("div", "mwai-input-text");
    var textarea = element("textarea");
    textarea.placeholder = params.textInputPlaceholder || "Type your message...";
    if (params.textInputMaxLength) textarea.maxLength = params.textInputMaxLength;
    var submitButton = element("button", "mwai-input-submit", params.textSend || "Send");
    submitButton.type = "button";
    var footer = element("div", "mwai-footer");
    var clearButton = element("button", "mwai-clear", params.textClear || "Clear");
    clearButton.type = "button";
    inputText.appendChild(textarea);
    inputRow.appendChild(inputText);
    inputRow.appendChild(submitButton);
    footer.appendChild(clearButton);
    body.appendChild(conversation);
    body.appendChild(inputRow);
    body.appendChild(footer);
    box.appendChild(body);
    chat.appendChild(box);
    container.appendChild(chat);

    function show(message) {
      var user = message.role === "user";
      var reply = element("div", "mwai-reply " + (user ? "mwai-user" : "mwai-ai"));
      var name = element("span", "mwai-name");
      var label = user ? params.guestName || "Guest: " : message.who || aiName;
      name.appendChild(element("div", "mwai-name-text", label.trim()));
      var holder = element("div");
      var text = element("span", "mwai-text");
      var inner = element("span", "", message.content);
      text.appendChild(inner);
      holder.appendChild(text);
      reply.appendChild(name);
      reply.appendChild(holder);
      conversation.appendChild(reply);
      conversation.scrollTop = conversation.scrollHeight;
      return { reply: reply, text: inner };
    }

    function renderAll() {
      conversation.textContent = "";
      state.messages.forEach(show);
    }
    renderAll();

    async function startSession() {
      var response = await fetch(restUrl + "/mwai/v1/start_session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
      });
      var data = await response.json();
      if (data && data.sessionId) sessionId = data.sessionId;
      nonce = (data && data.restNonce) || null;
      if (!nonce) throw new Error("The site gave no nonce.");
    }

    async function post(history, text) {
      if (!("botId" in system)) {  // AI Engine 1.x: the bot by chatId, one JSON answer
        return fetch(restUrl + "/mwai-bot/v1/chat", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-WP-Nonce": nonce },
          body: JSON.stringify({
            id: system.id === undefined ? null : system.id, chatId: system.chatId, session: sessionId,
            clientId: state.chatId, contextId: system.contextId === undefined ? null : system.contextId,
            messages: history, newMessage: text,
          }),
        });
      }
      var stream = system.stream !== false;
      var payload = {
        botId: botId,
        customId: system.customId === undefined ? null : system.customId,
        session: sessionId,
        chatId: state.chatId,
        contextId: system.contextId === undefined ? null : system.contextId,
        messages: history,
        newMessage: text,
        newFileId: null,
        newFileIds: null,
        stream: stream,
      };
      var headers = { "Content-Type": "application/json", "X-WP-Nonce": nonce };
      if (stream) headers.Accept = "text/event-stream";
      return fetch(restUrl + "/mwai-ui/v1/chats/submit", {
        method: "POST",
        headers: headers,
        body: JSON.stringify(payload),
      });
    }

    async function nonceRefused(response) {
      if (response.status !== 401 && response.status !== 403) return false;
      try {
        var data = await response.clone().json();
        return data && (data.code === "rest_forbidden" || data.code === "rest_cookie_invalid_nonce");
      } catch (e) {
        return false;
      }
    }

    async function send() {
      var text = textarea.value.trim();
      if (busy || !text) return;
      busy = true;
      chat.classList.add("mwai-busy");
      textarea.value = "";
      var history = state.messages.slice();
      var user = {
        id: randomId(), role: "user", content: text, who: params.userName || "User: ", timestamp: Date.now(),
      };
      state.messages.push(user);
      show(user);
      var answer = { id: randomId(), role: "assistant", content: "", who: aiName, timestamp: Date.now(), isQuerying: true };
      var view = show(answer);
      var result;
      try {
        if (!nonce) await startSession();
        var response = await post(history, text);
        if (await nonceRefused(response)) {  // the session expired: one new nonce, one retry
          await startSession();
          response = await post(history, text);
        }
        var type = response.headers.get("content-type") || "";
        if (response.ok && type.indexOf("text/event-stream") >= 0 && response.body) {
          result = await readStream(response, function (sofar) { view.text.textContent = sofar; });
        } else {
          result = await readJson(response);
        }
      } catch (error) {
        result = { text: "", reply: null, error: String((error && error.message) || error), newToken: null };
      }
      if (result.newToken) nonce = result.newToken;
      answer.isQuerying = false;
      if (result.error) {
        answer.content = result.error;
        view.reply.classList.add("mwai-error");
      } else {
        answer.content = result.reply !== null ? result.reply : result.text;
        state.messages.push(answer);
        save();
      }
      view.text.textContent = answer.content;
      busy = false;
      chat.classList.remove("mwai-busy");
    }

    submitButton.addEventListener("click", send);
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(); }
    });
    clearButton.addEventListener("click", function () {
      startConversation();
      save();
      renderAll();
    });
  }

  function start() {
    var containers = document.querySelectorAll(".mwai-chatbot-container:not([data-mwai-initialized])");
    for (var i = 0; i < containers.length; i++) init(containers[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
