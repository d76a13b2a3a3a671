/* The runs list, live: only what htmx cannot do by itself.
 *
 * One WebSocket for the whole page (/ws/runs/list/, live/listfeed.py) brings rendered rows; each replaces
 * the row with its id unless the page holds a newer one (data-seq), and a run newer than the page's newest
 * one goes on top of the first, unfiltered page. Without a socket the page polls the rows that are still
 * active (views.list_rows, the same JSON) and says so. Also: the Stop dialog with the optimistic
 * "Cancelling…" (static/js/stop.js, as on the run page), ticking "Started 2m ago · ETA 5m", a notification
 * when a watched run ends (static/js/notify.js), and a CSRF token for Re-run forms that arrived live.
 */
(function () {
  "use strict";

  var POLL_MS = 5000;
  var ACTIVE = { queued: true, running: true, cancelling: true };
  var CLOSE_MESSAGES = { 4401: "You are not logged in any more. Log in again to see live updates." };
  var table, state = { socket: null, open: false, failures: 0, poller: null, closedFor: null };
  var seenAt = new WeakMap();

  function backoff(n) { return Math.min(10000, 500 * Math.pow(2, n)) * (0.5 + Math.random() / 2); }

  function rowEls() { return Array.from(document.querySelectorAll("#runs-rows .run-row")); }
  function activeIds() { return rowEls().filter(function (r) { return ACTIVE[r.dataset.status]; }).map(function (r) { return r.dataset.run; }); }
  function newestId() {
    return rowEls().reduce(function (m, r) { return Math.max(m, parseInt(r.dataset.run, 10) || 0); },
                           parseInt(table.dataset.after, 10) || 0);
  }
  function acceptsNew() { return table.dataset.new === "1"; }

  function query() {
    var q = "ids=" + activeIds().join(",");
    return acceptsNew() ? q + "&after=" + newestId() : q;
  }

  function setStatus(text) {
    var el = document.getElementById("live-status");
    el.textContent = text || "";
    el.hidden = !text;
  }

  // --- Rows ---------------------------------------------------------------------------------------------

  // A queued row's place in the queue changes when another run starts or ends, and a new run's row may be
  // rendered a moment before its job is queued: ask for the queued rows again then (one request, debounced).
  var queuedTimer = null;
  function refreshQueued() {
    if (queuedTimer) return;
    queuedTimer = setTimeout(function () {
      queuedTimer = null;
      var ids = rowEls().filter(function (r) { return r.dataset.status === "queued"; }).map(function (r) { return r.dataset.run; });
      if (!ids.length) return;
      fetch(table.dataset.rowsUrl + "?ids=" + ids.join(","), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) apply(data, true); })
        .catch(function () {});
    }, 500);
  }

  function apply(payload, quiet) {
    var after = newestId(), moved = false;
    (payload.rows || []).forEach(function (row) {
      var tpl = document.createElement("template");
      tpl.innerHTML = row.html.trim();
      var fresh = tpl.content.firstElementChild, current = document.getElementById("run-row-" + row.run);
      if (current) {
        if ((parseInt(current.dataset.seq, 10) || 0) > row.seq) return; // older than the row shown
        // A Stop under way: keep "Cancelling…" until the answer, or a row that really moved on.
        if (current.dataset.pending === "1" && !row.terminal && row.status !== "cancelling") return;
        var box = current.querySelector(".compare-pick");
        if (box && box.checked) fresh.querySelector(".compare-pick").checked = true;
        var wasActive = ACTIVE[current.dataset.status];
        if (current.dataset.status !== row.status && row.status !== "cancelling") moved = true;
        current.replaceWith(fresh);
        htmx.process(fresh);
        if (wasActive && row.terminal) notifyEnded(fresh);
      } else if (acceptsNew() && row.run > after) {
        var body = document.getElementById("runs-rows");
        body.prepend(fresh);
        htmx.process(fresh);
        body.closest("table").hidden = false;
        var empty = document.getElementById("runs-empty");
        if (empty) empty.hidden = true;
        moved = true;
      }
    });
    if (moved && !quiet) refreshQueued();
    tick();
  }

  function notifyEnded(row) {
    var link = row.querySelector("td a");
    RunwatchNotify.ended(row.dataset.run, row.dataset.name, row.dataset.note, link && link.href);
  }

  // --- The socket, and polling when there is none -------------------------------------------------------

  function connect() {
    if (!("WebSocket" in window)) { startPolling("This browser has no WebSocket"); return; }
    var url = (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + "/ws/runs/list/?" + query();
    var socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = function () {
      state.open = true;
      state.failures = 0;
      stopPolling();
      setStatus("");
      table.dataset.live = "socket";
    };
    socket.onmessage = function (evt) {
      var data;
      try { data = JSON.parse(evt.data); } catch (e) { return; }
      if (data && data.type === "rows") apply(data);
    };
    socket.onclose = function (evt) {
      state.open = false;
      if (CLOSE_MESSAGES[evt.code]) { stopPolling(); setStatus(CLOSE_MESSAGES[evt.code]); return; }
      state.failures += 1;
      startPolling("Live updates are unavailable");
      setTimeout(connect, backoff(state.failures));
    };
  }

  function startPolling(reason) {
    table.dataset.live = "polling";
    setStatus(reason + "; checking the running runs every " + POLL_MS / 1000 + " s.");
    if (state.poller) return;
    state.poller = setInterval(poll, POLL_MS);
    poll();
  }

  function stopPolling() {
    if (state.poller) clearInterval(state.poller);
    state.poller = null;
  }

  function poll() {
    if (!activeIds().length && !acceptsNew()) return; // nothing on the page can change
    fetch(table.dataset.rowsUrl + "?" + query(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () { /* the next poll tries again */ });
  }

  // --- Stop from a row (the run page's dialog and optimistic state) ----------------------------------------

  var saved = {};

  function onConfirm(evt) {
    var form = evt.detail.elt;
    if (!form || !form.classList || !form.classList.contains("row-stop")) return;
    if (form.dataset.confirmed === "1") return;
    evt.preventDefault();
    RunwatchStop.ask(function () {
      // The stream may have replaced the row while the dialog was open: act on the row shown now.
      var id = form.closest("tr").dataset.run, row = document.getElementById("run-row-" + id);
      var current = row && row.querySelector(".row-stop");
      if (!current) {
        if (row) showError(row, "The run has already " + row.dataset.status + "; there is nothing to stop.");
        return;
      }
      saved[id] = row.cloneNode(true);
      row.dataset.pending = "1";
      RunwatchStop.showCancelling(row.querySelector(".badge"));
      current.hidden = true;
      row.querySelector(".row-error").hidden = true;
      if (current === form) {
        evt.detail.issueRequest(true);
      } else {
        current.dataset.confirmed = "1";
        htmx.trigger(current, "submit");
      }
    });
  }

  function showError(row, text) {
    var error = row.querySelector(".row-error");
    error.textContent = text;
    error.hidden = false;
  }

  function onAnswered(evt) {
    var form = evt.detail.elt;
    if (!form || !form.classList || !form.classList.contains("row-stop")) return;
    var id = form.closest("tr") ? form.closest("tr").dataset.run : null;
    if (evt.detail.successful) { delete saved[id]; return; }
    var row = document.getElementById("run-row-" + id), before = saved[id];
    delete saved[id];
    if (row && before && row.dataset.pending === "1") {
      row.replaceWith(before);
      htmx.process(before);
      row = before;
    }
    if (row) showError(row, RunwatchStop.failureText(evt.detail.xhr));
  }

  // --- Clocks -------------------------------------------------------------------------------------------

  function compact(seconds) {
    var total = Math.floor(Math.max(0, seconds) + 0.5);
    if (total < 60) return total + "s";
    if (total < 3600) return Math.floor(total / 60) + "m";
    return Math.floor(total / 3600) + "h " + Math.floor(total % 3600 / 60) + "m";
  }

  function since(el) {
    if (!seenAt.has(el)) seenAt.set(el, Date.now());
    return (Date.now() - seenAt.get(el)) / 1000;
  }

  function tick() {
    document.querySelectorAll("#runs-rows .js-ago").forEach(function (el) {
      var start = parseFloat(el.dataset.since);
      if (start) el.textContent = compact(Date.now() / 1000 - start);
    });
    document.querySelectorAll("#runs-rows .js-eta-left").forEach(function (el) {
      el.textContent = compact(parseFloat(el.dataset.eta) - since(el));
    });
  }

  // --- Wiring -------------------------------------------------------------------------------------------

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    table = document.getElementById("runs-table");
    if (!table) return;
    document.body.addEventListener("htmx:confirm", onConfirm);
    document.body.addEventListener("htmx:afterRequest", onAnswered);
    // Rows that arrived live were rendered without a request, so without a CSRF field: add the page's.
    document.body.addEventListener("submit", function (evt) {
      var form = evt.target;
      if (form.method.toLowerCase() !== "post" || form.querySelector("[name=csrfmiddlewaretoken]")) return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "csrfmiddlewaretoken";
      input.value = csrfToken();
      form.appendChild(input);
    }, true);
    RunwatchNotify.setup(document.getElementById("notify-btn"), document.getElementById("notify-status"),
                         "a run shown here ends");
    connect();
    tick();
    setInterval(tick, 1000);
  });
})();
