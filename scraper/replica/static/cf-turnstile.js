/*
 * The checkbox of the replica's Turnstile widget (inside its iframe). Only real input clears it:
 * a click whose event is trusted (a person, or a driver's input events) asks the edge for the
 * cf_clearance cookie and reloads the top page; a script's element.click() is ignored, as the real
 * widget ignores it. The server puts the settings in when it serves the frame.
 */
(function () {
  "use strict";

  var settings = __SETTINGS__;
  var box = document.getElementById("cf-chl-widget-checkbox");
  var label = document.getElementById("cf-chl-widget-status");
  var busy = false;

  function say(text) {
    if (label) {
      label.textContent = text;
    }
  }

  box.addEventListener("click", function (event) {
    if (!event.isTrusted) {
      event.preventDefault(); // not a person: leave the box unticked and ask for nothing
      return;
    }
    if (busy) {
      event.preventDefault();
      return;
    }
    busy = true;
    say("Verifying...");
    fetch(settings.flow, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "widget=" + encodeURIComponent(settings.widget) + "&interaction=click",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("challenge refused: " + response.status);
        }
        say("Success!");
        window.top.location.reload();
      })
      .catch(function () {
        busy = false;
        box.checked = false;
        say("Verification failed. Verify you are human");
      });
  });
})();
