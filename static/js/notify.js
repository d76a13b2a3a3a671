/* Browser notifications when a watched run ends (run page and runs list).
 *
 * Permission is asked only when the user clicks "Notify me…" beside what they watch, never on page load.
 * The choice is remembered for the site (localStorage), so it is asked once. A page then shows one
 * notification per run that ends while it watches: completed with its best score, failed with its reason,
 * or stopped. The notification's tag is the run, so two open tabs still make one notification.
 */
(function () {
  "use strict";

  var KEY = "runwatch-notify";
  var shown = {};

  function supported() { return "Notification" in window; }
  function enabled() {
    return supported() && Notification.permission === "granted" && window.localStorage.getItem(KEY) === "1";
  }

  function setup(button, status, label) {
    if (!button) return;
    if (!supported()) {
      status.textContent = "This browser cannot show notifications.";
      return;
    }
    function refresh() {
      button.hidden = false;
      if (enabled()) {
        button.textContent = "Stop notifying me";
        status.textContent = "You will get a notification when " + label + ".";
      } else if (Notification.permission === "denied") {
        button.hidden = true;
        status.textContent = "Notifications are blocked for this site; allow them in the browser's site settings.";
      } else {
        button.textContent = button.dataset.label || button.textContent;
        status.textContent = "";
      }
    }
    button.dataset.label = button.textContent;
    button.addEventListener("click", function () {
      if (enabled()) {
        window.localStorage.removeItem(KEY);
        refresh();
        return;
      }
      Notification.requestPermission().then(function (permission) {
        if (permission === "granted") window.localStorage.setItem(KEY, "1");
        refresh();
      });
    });
    refresh();
  }

  // One notification for a run's end; `note` is the row's or the outcome's data-note ("Completed · best …").
  function ended(runId, name, note, url) {
    if (!enabled() || shown[runId]) return;
    shown[runId] = true;
    var n = new Notification(name + ": " + (note || "ended"), { body: note || "", tag: "runwatch-run-" + runId });
    n.onclick = function () { window.focus(); if (url) window.location.href = url; };
  }

  window.RunwatchNotify = { setup: setup, ended: ended, enabled: enabled };
})();
