// The upload form: drop a file on the zone, see the size limit before sending, and watch a progress bar.
// Without this script the form posts normally; with it, XHR sends the same form and follows the answer.
(function () {
  function setup(form) {
    var zone = form.querySelector(".drop-zone");
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector(".upload-progress");
    var fill = bar.querySelector(".progress-fill");
    var meter = bar.querySelector("[role=progressbar]");
    var status = bar.querySelector(".upload-status");
    var problem = form.querySelector(".client-error");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);

    function say(text) { problem.textContent = text; problem.hidden = !text; }
    function tooBig() {
      var file = input.files[0];
      if (file && maxBytes && file.size > maxBytes) {
        say("The file is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " + form.dataset.maxMb + " MB.");
        return true;
      }
      say("");
      return false;
    }
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; tooBig(); }
    });
    input.addEventListener("change", tooBig);
    form.addEventListener("submit", function (e) {
      if (!input.files.length) return;
      e.preventDefault();
      if (tooBig()) return;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      bar.hidden = false;
      xhr.upload.addEventListener("progress", function (ev) {
        if (!ev.lengthComputable) return;
        var pct = Math.round(100 * ev.loaded / ev.total);
        fill.style.width = pct + "%";
        meter.setAttribute("aria-valuenow", pct);
        status.textContent = pct < 100 ? pct + "% sent" : "Checking the file…";
      });
      xhr.addEventListener("load", function () {
        if (xhr.status < 300 && xhr.responseURL && xhr.responseURL.indexOf(form.action) === -1) {
          window.location.assign(xhr.responseURL);  // accepted: the server redirected to the preview
          return;
        }
        // Refused: show the server's form, with its message, in place of this one.
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var fresh = doc.getElementById("upload-section");
        var here = document.getElementById("upload-section");
        if (fresh && here) { here.replaceWith(fresh); init(); fresh.querySelector("[role=alert]") && fresh.querySelector("input[type=file]").focus(); }
        else { say("The upload failed (HTTP " + xhr.status + "). Try again."); bar.hidden = true; }
      });
      xhr.addEventListener("error", function () { say("The upload was interrupted. Try again."); bar.hidden = true; });
      xhr.send(new FormData(form));
    });
  }
  function init() { document.querySelectorAll("form.upload-form").forEach(setup); }
  document.addEventListener("DOMContentLoaded", init);
})();
