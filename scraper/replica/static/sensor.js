/*
 * The bot sensor the replica's edge injects at the top of a page's <head>.
 *
 * It runs before every other script of the page. It wraps fetch, XMLHttpRequest and the DOM query
 * methods so that each call's stack can be looked at, runs its browser checks (botd's verdict among
 * them) and posts them to the edge. The edge answers with the chat nonce when every required check
 * passed; the nonce is written into the page a set delay after the load event, never before. Chat
 * requests get the sensor token only when they come from a stack free of automation frames.
 * The front (scraper/replica/sensor.py) fills in __SETTINGS__ per page.
 */
(function () {
  "use strict";

  var settings = __SETTINGS__;
  var win = window;
  var NativeError = win.Error;
  var pageFetch = win.fetch; // the page's own fetch: every wrapped call ends in it
  var XHR = win.XMLHttpRequest;
  var xhrOpen = XHR.prototype.open;
  var xhrSend = XHR.prototype.send;
  var xhrSetHeader = XHR.prototype.setRequestHeader;
  var docQuery = Document.prototype.querySelectorAll;
  var stringify = JSON.stringify;
  var started = performance.now();

  // Frames that automation tools put under the code they run in a page.
  var MARKERS = [
    ["playwright_utility_script", /UtilityScript\./],
    ["playwright_evaluate", /eval at evaluate/],
    ["playwright_binding", /__playwright/],
    ["puppeteer_evaluate", /__puppeteer_evaluation_script__/],
    ["puppeteer_source", /pptr:/],
    ["selenium_call_function", /\bcallFunction\b/],
    ["selenium_cdc", /\$cdc_|\$wdc_/],
    ["selenium_execute", /\bexecute(Async)?Script\b/],
    ["webdriver_globals", /__webdriver_|webdriverio/i],
  ];
  var MAX_SAMPLES = 8;
  var SAMPLE_LINES = 12;

  var counts = {
    fetch: { calls: 0, tainted: 0 },
    xhr: { calls: 0, tainted: 0 },
    query: { calls: 0, tainted: 0 },
  };
  var markerCounts = {};
  var samples = [];
  var token = "";
  var reportSent = false;
  var updatePending = false;

  // -- call stacks ---------------------------------------------------------------------------------

  // Which automation markers the current call stack holds, and the stack itself.
  function inspectStack() {
    var limit = NativeError.stackTraceLimit;
    NativeError.stackTraceLimit = 100; // page code may have shortened it to hide its callers
    var stack = "";
    try {
      stack = String(new NativeError("sensor").stack || "");
    } finally {
      NativeError.stackTraceLimit = limit;
    }
    var found = [];
    for (var i = 0; i < MARKERS.length; i++) {
      if (MARKERS[i][1].test(stack)) found.push(MARKERS[i][0]);
    }
    return { markers: found, stack: stack };
  }

  function tally(kind, seen, what) {
    var bucket = counts[kind];
    bucket.calls++;
    if (!seen.markers.length) return;
    bucket.tainted++;
    seen.markers.forEach(function (name) { markerCounts[name] = (markerCounts[name] || 0) + 1; });
    if (samples.length < MAX_SAMPLES) {
      samples.push({
        kind: kind,
        what: String(what).slice(0, 200),
        markers: seen.markers,
        stack: seen.stack.split("\n").slice(1, SAMPLE_LINES + 1).join("\n"),
      });
    }
    scheduleUpdate();
  }

  function stackState() {
    return { counts: counts, markers: markerCounts, samples: samples };
  }

  // -- talking to the edge -------------------------------------------------------------------------

  function post(url, body) {
    return pageFetch.call(win, url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: stringify(body),
      credentials: "same-origin",
    });
  }

  // Counts gathered after the report go to the edge too; at most one update waits at a time.
  function scheduleUpdate() {
    if (!reportSent || updatePending) return;
    updatePending = true;
    win.setTimeout(function () {
      updatePending = false;
      post(settings.update, { page: settings.page, stack: stackState() }).catch(function () {});
    }, 0);
  }

  // -- chat requests -------------------------------------------------------------------------------

  function isChat(url) {
    var target;
    try { target = new URL(String(url), win.location.href); } catch (e) { return false; }
    if (target.origin !== win.location.origin) return false;
    var route = target.searchParams.get("rest_route") || "";
    return /\/admin-ajax\.php$/.test(target.pathname) || target.pathname.indexOf("/wp-json/mwai") === 0 ||
      route.replace(/^\/+/, "").indexOf("mwai") === 0;
  }

  // The headers the edge reads on a chat request; the token only for a clean stack on a page that passed.
  function chatHeaders(markers) {
    var headers = [["X-Sensor-Page", settings.page], ["X-Sensor-Stack", markers.length ? "tainted " + markers.join(" ") : "clean"]];
    if (!markers.length && token) headers.push(["X-Sensor", token]);
    return headers;
  }

  function sensorFetch(input, init) {
    var seen = inspectStack();
    var url = input instanceof Request ? input.url : input;
    tally("fetch", seen, url);
    if (isChat(url)) {
      var headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
      chatHeaders(seen.markers).forEach(function (pair) { headers.set(pair[0], pair[1]); });
      init = Object.assign({}, init, { headers: headers });
    }
    return init === undefined ? pageFetch.call(win, input) : pageFetch.call(win, input, init);
  }

  var xhrTargets = new WeakMap();

  function sensorOpen(method, url) {
    var seen = inspectStack();
    tally("xhr", seen, url);
    xhrTargets.set(this, { url: url, markers: seen.markers });
    return xhrOpen.apply(this, arguments);
  }

  function sensorSend() {
    var seen = inspectStack();
    var target = xhrTargets.get(this);
    tally("xhr", seen, target ? target.url : "");
    if (target && isChat(target.url)) {
      var markers = target.markers.concat(seen.markers.filter(function (m) { return target.markers.indexOf(m) < 0; }));
      var self = this;
      chatHeaders(markers).forEach(function (pair) { xhrSetHeader.call(self, pair[0], pair[1]); });
    }
    return xhrSend.apply(this, arguments);
  }

  function wrapQuery(proto, name) {
    var original = proto[name];
    proto[name] = function (selectors) {
      tally("query", inspectStack(), selectors);
      return original.apply(this, arguments);
    };
  }

  win.fetch = sensorFetch;
  XHR.prototype.open = sensorOpen;
  XHR.prototype.send = sensorSend;
  wrapQuery(Document.prototype, "querySelector");
  wrapQuery(Document.prototype, "querySelectorAll");
  wrapQuery(Element.prototype, "querySelector");
  wrapQuery(Element.prototype, "querySelectorAll");

  // -- checks --------------------------------------------------------------------------------------

  function result(pass, detail) {
    return { pass: !!pass, detail: detail };
  }

  function failed(error) {
    return result(false, { error: String((error && error.message) || error) });
  }

  function safely(check) {
    try { return check(); } catch (error) { return failed(error); }
  }

  var HEADLESS = /HeadlessChrome/;

  function checkBotd() {
    return import(settings.botd)
      .then(function (botd) { return botd.load({ monitoring: false }); })
      .then(function (detector) {
        var verdict = detector.detect();
        var detections = detector.getDetections() || {};
        var hits = Object.keys(detections).filter(function (name) { return detections[name] && detections[name].bot; });
        return result(!verdict.bot, { bot: verdict.bot, botKind: verdict.botKind || null, detectors: hits });
      });
  }

  function checkWebdriver() {
    return result(navigator.webdriver === false, { webdriver: String(navigator.webdriver) });
  }

  function checkUserAgent() {
    return result(!HEADLESS.test(navigator.userAgent), { userAgent: navigator.userAgent });
  }

  function checkBrands() {
    var data = navigator.userAgentData;
    if (!data) return result(true, { brands: null });
    var brands = (data.brands || []).map(function (b) { return b.brand + "/" + b.version; });
    return result(!brands.some(function (b) { return HEADLESS.test(b); }), { brands: brands });
  }

  // A dedicated worker gets its own navigator; an overridden User-Agent that misses it shows there.
  // A worker that never answers fails the check, but only after 10 s: a busy machine starts one slowly.
  function checkWorker() {
    return new Promise(function (resolve) {
      var source = "postMessage({ua: navigator.userAgent, brands: self.navigator.userAgentData ? " +
        "navigator.userAgentData.brands.map(function (b) { return b.brand + '/' + b.version; }) : null});";
      var url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      var worker = new Worker(url);
      var timer = win.setTimeout(function () { worker.terminate(); resolve(result(false, { error: "no answer" })); }, 10000);
      worker.onmessage = function (event) {
        win.clearTimeout(timer);
        worker.terminate();
        URL.revokeObjectURL(url);
        var ua = event.data.ua;
        var brands = event.data.brands || [];
        var headless = HEADLESS.test(ua) || brands.some(function (b) { return HEADLESS.test(b); });
        resolve(result(!headless && ua === navigator.userAgent, { userAgent: ua, brands: event.data.brands, sameAsPage: ua === navigator.userAgent }));
      };
      worker.onerror = function (event) {
        win.clearTimeout(timer);
        resolve(result(false, { error: String(event.message || "worker failed") }));
      };
    });
  }

  function checkChrome() {
    var chrome = win.chrome;
    var detail = { type: typeof chrome, keys: chrome && typeof chrome === "object" ? Object.keys(chrome) : [] };
    var pass = !!chrome && typeof chrome === "object" && typeof chrome.loadTimes === "function" &&
      typeof chrome.csi === "function" && !!chrome.app && typeof chrome.app === "object";
    return result(pass, detail);
  }

  function checkPlugins() {
    var plugins = navigator.plugins;
    var mimes = navigator.mimeTypes;
    var pass = plugins instanceof PluginArray && mimes instanceof MimeTypeArray && plugins.length > 0 && mimes.length > 0;
    return result(pass, { plugins: plugins ? plugins.length : null, mimeTypes: mimes ? mimes.length : null });
  }

  function checkLanguages() {
    var languages = navigator.languages;
    return result(!!languages && languages.length > 0 && !!navigator.language, {
      language: navigator.language,
      languages: languages ? Array.prototype.slice.call(languages) : null,
    });
  }

  // Old headless Chrome said "denied" for Notification and "prompt" to the Permissions API.
  function checkPermissions() {
    if (!win.Notification || !navigator.permissions) return Promise.resolve(result(false, { error: "no Notification or Permissions API" }));
    var notification = Notification.permission;
    return navigator.permissions.query({ name: "notifications" }).then(function (status) {
      var expected = { "default": "prompt", granted: "granted", denied: "denied" }[notification];
      return result(status.state === expected, { notification: notification, query: status.state });
    });
  }

  // A desktop's screen holds the window with room to spare; a screen the size of the viewport is an emulator's.
  function checkScreen() {
    var s = { width: screen.width, height: screen.height, availWidth: screen.availWidth, availHeight: screen.availHeight };
    var inner = { width: win.innerWidth, height: win.innerHeight };
    var outer = { width: win.outerWidth, height: win.outerHeight };
    var pass = outer.width > 0 && outer.height > 0 &&
      s.width >= outer.width && s.height >= outer.height && s.width >= inner.width && s.height >= inner.height &&
      !(s.width === inner.width && s.height === inner.height);
    return result(pass, { screen: s, inner: inner, outer: outer });
  }

  // With the DevTools Runtime domain on, every console argument is turned into a remote object
  // right away, and building its preview reads an Error's name, even one nested in a plain object.
  // Without it, only the message text is formed: the nested error is never touched.
  function checkCdpRuntime() {
    var reads = { nested: 0, direct: 0, stack: 0 };
    function counted(key, property) {
      var error = new NativeError("sensor probe");
      Object.defineProperty(error, property, {
        configurable: true,
        get: function () { reads[key]++; return property === "stack" ? "" : "Error"; },
      });
      return error;
    }
    var log = console.debug;
    log.call(console, { probe: counted("nested", "name") });
    log.call(console, counted("direct", "name"));
    log.call(console, counted("stack", "stack"));
    var native = /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(log));
    return result(reads.nested === 0 && reads.direct <= 1, {
      nestedNameReads: reads.nested,
      directNameReads: reads.direct,
      stackReads: reads.stack,
      consoleDebugNative: native,
    });
  }

  var SOFTWARE_GL = /SwiftShader|llvmpipe|softpipe|Software|Mesa OffScreen/i;

  function checkGpu() {
    var canvas = document.createElement("canvas");
    var gl = canvas.getContext("webgl") || canvas.getContext("experimental-webgl");
    if (!gl) return result(false, { error: "no WebGL" });
    var info = gl.getExtension("WEBGL_debug_renderer_info");
    var vendor = info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR);
    var renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return result(!SOFTWARE_GL.test(renderer) && !SOFTWARE_GL.test(vendor), { vendor: vendor, renderer: renderer });
  }

  function checkStack() {
    var tainted = counts.fetch.tainted + counts.xhr.tainted + counts.query.tainted;
    return result(tainted === 0, stackState());
  }

  // -- the report and the nonce --------------------------------------------------------------------

  var loaded = new Promise(function (resolve) {
    if (document.readyState === "complete") resolve(performance.now());
    else win.addEventListener("load", function () { resolve(performance.now()); }, { once: true });
  });

  function writeNonce(nonce, loadedAt) {
    var boxes = docQuery.call(document, ".wpaicg-chat-shortcode, .wpaicg-chatbox");
    for (var i = 0; i < boxes.length; i++) boxes[i].setAttribute("data-nonce", nonce);
    if (win.wpaicgParams && typeof win.wpaicgParams === "object") win.wpaicgParams.search_nonce = nonce;
    post(settings.update, { page: settings.page, nonce: { afterLoadMs: Math.round(performance.now() - loadedAt) } })
      .catch(function () {});
  }

  function run() {
    var checks = {
      webdriver: safely(checkWebdriver),
      user_agent: safely(checkUserAgent),
      ua_brands: safely(checkBrands),
      chrome_object: safely(checkChrome),
      plugins: safely(checkPlugins),
      languages: safely(checkLanguages),
      screen: safely(checkScreen),
      cdp_runtime: safely(checkCdpRuntime),
      gpu: safely(checkGpu),
    };
    var pending = {
      botd: checkBotd(),
      worker_user_agent: checkWorker(),
      permissions: checkPermissions(),
    };
    var names = Object.keys(pending);
    return Promise.all(names.map(function (name) { return pending[name].catch(failed); })).then(function (results) {
      names.forEach(function (name, i) { checks[name] = results[i]; });
      checks.stack = checkStack();
      reportSent = true;
      return post(settings.report, {
        page: settings.page,
        checks: checks,
        stack: stackState(),
        elapsedMs: Math.round(performance.now() - started),
      });
    });
  }

  run()
    .then(function (response) { return response.json(); })
    .then(function (answer) {
      if (!answer || !answer.passed || !answer.nonce) return;
      token = answer.token || "";
      loaded.then(function (loadedAt) {
        var wait = Math.max(0, settings.delayMs - (performance.now() - loadedAt));
        win.setTimeout(function () { writeNonce(answer.nonce, loadedAt); }, wait);
      });
    })
    .catch(function () { /* no answer, no nonce */ });
})();
