/* The stop confirmation, one for the run page (run.js) and the runs list (runs_list.js): the dialog of
 * templates/includes/stop_dialog.html, asked before a Stop request is sent, and the optimistic badge shown
 * while the request is under way (the page reverts it, with a message, if the request fails). */
(function () {
  "use strict";

  window.RunwatchStop = {
    // Opens the dialog; calls onStop() only if the user chose "Stop run".
    ask: function (onStop) {
      var dialog = document.getElementById("stop-dialog");
      dialog.returnValue = "";
      dialog.addEventListener("close", function () {
        if (dialog.returnValue === "stop") onStop();
      }, { once: true });
      dialog.showModal();
    },
    showCancelling: function (badge) {
      badge.className = "badge badge-cancelling";
      badge.dataset.status = "cancelling";
      badge.textContent = "Cancelling…";
      badge.setAttribute("aria-label", "Run status: Cancelling");
    },
    // The words for a failed Stop request: the server's reason (409: "This run already completed…"), or
    // that it could not be reached.
    failureText: function (xhr) {
      return xhr && xhr.status ? (xhr.responseText || "The run could not be stopped.")
                               : "Could not reach the server; the run was not stopped. Try again.";
    }
  };
})();
