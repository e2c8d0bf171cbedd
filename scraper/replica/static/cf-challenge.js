/*
 * The challenge platform script of the replica's Cloudflare front, loaded by the "Just a moment..."
 * page. Like the real one it takes its time, asks the edge for the cf_clearance cookie and reloads
 * the page, which then passes. When the edge says the challenge cannot be solved ("solve": false:
 * the never-clearing mode, or a challenge that needs a person's click) it keeps verifying forever.
 * The server puts the settings in when it serves the file.
 */
(function () {
  "use strict";

  var settings = __SETTINGS__;
  var opt = window._cf_chl_opt || {};

  function show(id, visible) {
    var element = document.getElementById(id);
    if (element) {
      element.style.display = visible ? "" : "none";
    }
  }

  if (!settings.solve) {
    return;
  }

  window.setTimeout(function () {
    var body = "v_" + encodeURIComponent(opt.cRay || "") + "=" + encodeURIComponent(opt.md || "");
    fetch(settings.flow, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("challenge refused: " + response.status);
        }
        show("challenge-running", false);
        show("challenge-spinner", false);
        show("challenge-success", true);
        window.location.reload();
      })
      .catch(function () {
        show("challenge-running", false);
        show("challenge-spinner", false);
        show("challenge-error", true);
      });
  }, settings.delayMs);
})();
