/* The run page: only what htmx cannot do by itself.
 *
 * htmx's ws extension receives the server-rendered fragments and swaps them (hx-swap-oob). This file adds:
 * resuming from the last seq on reconnect, dropping batches the page already has, the connection
 * indicator, the polling fallback, ticking clocks, log scroll pinning / trimming / filters, and the stop
 * dialog.
 */
(function () {
  "use strict";

  var LOG_LINES_KEPT = 500;      // lines kept in the DOM while following the log
  var LOG_LINES_HARD_CAP = 3000; // even while the user reads older lines
  var RETRY_CODES = [1006, 1011, 1012, 1013]; // the ws extension reconnects on these by itself
  var AUTH_ERRORS = {
    4401: "You are not logged in any more. Log in again to watch this run.",
    4403: "You do not have access to this run.",
    4404: "This run does not exist any more."
  };

  var page, state = { seq: 0, logSeq: 0, metricSeq: 0, ended: false, open: false, everOpen: false, failures: 0, poller: null,
                      pollOk: false };

  function backoff(n) {
    // Exponential with jitter, capped at 10 s: a restarted server is found again quickly.
    return Math.min(10000, 500 * Math.pow(2, n)) * (0.5 + Math.random() / 2);
  }

  htmx.config.wsReconnectDelay = backoff;
  var formatSeconds = Runwatch.formatDuration, formatEstimate = Runwatch.formatEstimate; // run_format.js

  // Every (re)connection resumes after the last seq the page holds, not the seq it was rendered with.
  htmx.createWebSocket = function (url) {
    if (page) url = url.replace(/([?&]after=)\d*/, "$1" + state.seq);
    var socket = new WebSocket(url);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  // Dedupe for every batch (socket or poll): drop a batch that is wholly old, and log lines already shown.
  htmx.defineExtension("rw-live", {
    transformResponse: function (text) {
      if (!page || text.indexOf('id="rw-cursor"') < 0) return text;
      var tpl = document.createElement("template");
      tpl.innerHTML = text;
      var cursor = tpl.content.getElementById("rw-cursor");
      var last = parseInt(cursor.dataset.last, 10) || 0;
      var hasEvents = cursor.dataset.first !== "";
      if (hasEvents && cursor.dataset.full !== "1" && last <= state.seq) return "";
      tpl.content.querySelectorAll('[hx-swap-oob="beforeend"] .log-line').forEach(function (line) {
        if (parseInt(line.dataset.seq, 10) <= state.logSeq) line.remove();
      });
      // Fold rows and chart points the page already holds (a batch that overlaps what it has).
      tpl.content.querySelectorAll("#metrics-rows .fold-row, #chart-data i").forEach(function (el) {
        if (parseInt(el.dataset.seq, 10) <= state.metricSeq) el.remove();
      });
      if (last > state.seq || cursor.dataset.full === "1") state.seq = last;
      if (cursor.dataset.terminal === "1") setTimeout(ended, 0);
      setTimeout(showSeq, 0);
      return tpl.innerHTML;
    }
  });

  // --- Connection indicator, reconnects, polling ---------------------------------------------------

  function setConn(kind, label) {
    var conn = document.getElementById("conn");
    conn.dataset.state = kind;
    conn.querySelector(".conn-label").textContent = label;
  }

  function showSeq() {
    document.getElementById("conn-seq").textContent = state.seq.toLocaleString();
  }

  function ended() {
    if (state.ended) return;
    state.ended = true;
    stopPolling();
    setConn("ended", "Finished");
    page.dataset.terminal = "1"; // hides the fold and variant chips (app.css), which describe a running run
    page.removeAttribute("ws-connect"); // the ws extension stops reconnecting when this is gone
    tick();
    // It ended while this page watched it (a run that had ended before the page loaded never gets here).
    var outcome = document.getElementById("run-outcome"), title = document.querySelector(".run-title h1");
    RunwatchNotify.ended(page.dataset.run, title ? title.textContent.replace(/\s+/g, " ").trim() : "Run",
                         outcome && outcome.dataset.note, window.location.href);
  }

  function startPolling() {
    if (state.poller || state.ended) return;
    var poller = document.createElement("div");
    poller.setAttribute("hx-get", page.dataset.liveUrl);
    poller.setAttribute("hx-trigger", "every 2s");
    poller.setAttribute("hx-swap", "none");
    poller.id = "rw-poller";
    document.getElementById("poller").appendChild(poller);
    htmx.process(poller);
    state.poller = poller;
  }

  function stopPolling() {
    if (state.poller) state.poller.remove(); // htmx stops an `every` trigger whose element is gone
    state.poller = null;
    state.pollOk = false;
  }

  // While the socket is down the poll keeps the page current: say so, not "Offline", as long as it answers.
  function onPollAnswered(evt) {
    if (!state.poller || evt.detail.elt !== state.poller || state.ended || state.open) return;
    state.pollOk = evt.detail.successful;
    if (state.pollOk) setConn("polling", "Live (polling)");
    else setConn(state.failures >= 4 ? "offline" : "reconnecting", state.failures >= 4 ? "Offline" : "Reconnecting…");
  }

  function onConnecting() {
    if (state.ended || state.pollOk) return;
    setConn(state.everOpen || state.failures ? "reconnecting" : "connecting",
            state.everOpen || state.failures ? "Reconnecting…" : "Connecting…");
  }

  function onOpen() {
    state.open = state.everOpen = true;
    state.failures = 0;
    stopPolling();
    setConn("live", "Live");
    document.getElementById("conn-error").hidden = true;
  }

  function onClose(evt) {
    var code = evt.detail.event.code, wrapper = evt.detail.socketWrapper;
    state.open = false;
    if (state.ended) return;
    if (AUTH_ERRORS[code]) {
      // Not transient: say so and stop; retrying would not help.
      state.ended = true;
      stopPolling();
      page.removeAttribute("ws-connect");
      setConn("offline", "Offline");
      var err = document.getElementById("conn-error");
      err.textContent = AUTH_ERRORS[code];
      err.hidden = false;
      return;
    }
    state.failures += 1;
    if (!state.pollOk) {
      setConn(state.failures >= 4 ? "offline" : "reconnecting", state.failures >= 4 ? "Offline" : "Reconnecting…");
    }
    startPolling();
    if (RETRY_CODES.indexOf(code) < 0 && wrapper) {
      // e.g. 1001 "going away" from a server shutting down: the extension would give up, we do not.
      setTimeout(function () { if (!state.open && !state.ended) wrapper.reconnect(); }, backoff(state.failures));
    }
  }

  // --- Clocks ---------------------------------------------------------------------------------------

  var firstSeen = new WeakMap();

  function since(el) {
    if (!firstSeen.has(el)) firstSeen.set(el, Date.now());
    return (Date.now() - firstSeen.get(el)) / 1000;
  }

  function runStatus() {
    var badge = document.getElementById("run-badge");
    return badge ? badge.dataset.status : "";
  }

  function tick() {
    var status = runStatus(), active = !state.ended && (status === "running" || status === "cancelling");
    // Elapsed and the running step's clock: while the run is active.
    document.querySelectorAll(".js-elapsed[data-ticking='1'], .js-clock[data-ticking='1']").forEach(function (el) {
      if (active && el.dataset.elapsed !== "") el.textContent = formatSeconds(parseFloat(el.dataset.elapsed) + since(el));
    });
    // The estimate: only while running. A progress fragment rendered before a stop may still carry one.
    document.querySelectorAll(".js-eta").forEach(function (el) {
      if (status !== "running" || state.ended || el.dataset.eta === "") el.textContent = "—";
      else {
        var gone = since(el);
        el.textContent = formatEstimate(parseFloat(el.dataset.eta) - gone, parseFloat(el.dataset.etaLow) - gone,
                                        parseFloat(el.dataset.etaHigh) - gone);
      }
    });
    var stale = document.getElementById("stale-warning");
    if (stale && !stale.hidden) {
      stale.querySelector(".js-stale").textContent = Math.round(parseFloat(stale.dataset.seconds || "0") + since(stale));
    }
  }

  // --- Metrics: the newest rows, and the chart drawn from the points the page holds ----------------------

  var METRIC_ROWS = 30, CHART_POINTS = 120;

  // The server sends each scored fit once (a row and a point); the page keeps the newest ones and redraws
  // the chart (run_chart.js) from them.
  function drawMetrics() {
    var rows = document.getElementById("metrics-rows"), data = document.getElementById("chart-data");
    var chart = document.getElementById("metrics-chart");
    if (!rows || !data || !chart) return;
    while (rows.children.length > METRIC_ROWS) rows.lastElementChild.remove();
    while (data.children.length > CHART_POINTS) data.firstElementChild.remove();
    var points = Array.from(data.children), seqs = points.map(function (p) { return parseInt(p.dataset.seq, 10) || 0; });
    state.metricSeq = Math.max(state.metricSeq, seqs.length ? Math.max.apply(null, seqs) : 0);
    var drawn = RunwatchChart.draw(chart, points), range = document.getElementById("chart-range");
    if (range) range.textContent = drawn ? "· range " + drawn[0].toFixed(4) + "–" + drawn[1].toFixed(4) : "";
  }

  // --- Log panel --------------------------------------------------------------------------------------

  var log = { pinned: true, holding: false, filter: { levels: {}, q: "", tag: null } };

  function logScroll() { return document.getElementById("log-scroll"); }
  function logLines() { return document.getElementById("log-lines"); }

  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 8; }

  function scrollToBottom() {
    var el = logScroll();
    el.scrollTop = el.scrollHeight;
    log.pinned = true;
    log.holding = false;
    document.getElementById("log-jump").hidden = true;
  }

  function visible(line) {
    var f = log.filter;
    if (f.levels[line.dataset.level] === false) return false;
    if (f.tag && line.dataset[f.tag.name] !== f.tag.value) return false;
    return !f.q || line.textContent.toLowerCase().indexOf(f.q) >= 0;
  }

  function applyFilters(lines) {
    lines.forEach(function (line) { line.hidden = !visible(line); });
  }

  function trim() {
    var lines = logLines().children, keep = log.pinned && !log.holding ? LOG_LINES_KEPT : LOG_LINES_HARD_CAP;
    if (lines.length <= keep) return;
    var drop = lines.length - keep;
    for (var i = 0; i < drop; i++) lines[0].remove();
    // The dropped lines are one click away.
    var older = document.querySelector("#log-older .load-older");
    if (older) older.hidden = false;
  }

  function onLogChange(mutations) {
    var added = [];
    mutations.forEach(function (m) {
      m.addedNodes.forEach(function (n) {
        if (n.nodeType !== 1) return;
        if (n.classList.contains("log-line")) added.push(n);
        else if (n.id === "log-lines") added = added.concat(Array.from(n.children));
      });
    });
    if (!added.length) return;
    applyFilters(added);
    var last = logLines().lastElementChild;
    state.logSeq = Math.max(state.logSeq, last ? parseInt(last.dataset.seq, 10) || 0 : 0);
    trim();
    if (log.pinned && !log.holding) scrollToBottom();
    else document.getElementById("log-jump").hidden = false;
  }

  function setupLog() {
    var scroll = logScroll();
    var last = logLines().lastElementChild;
    state.logSeq = last ? parseInt(last.dataset.seq, 10) || 0 : 0;
    scroll.scrollTop = scroll.scrollHeight;
    scroll.addEventListener("scroll", function () {
      // Scrolling up pauses following; scrolling back to the bottom resumes it.
      log.pinned = atBottom(scroll);
      if (log.pinned) { log.holding = false; document.getElementById("log-jump").hidden = true; }
    }, { passive: true });
    new MutationObserver(onLogChange).observe(scroll, { childList: true, subtree: true });
    document.getElementById("log-jump").addEventListener("click", scrollToBottom);

    var form = document.querySelector(".log-filters");
    form.addEventListener("submit", function (evt) { evt.preventDefault(); }); // filters apply as you type
    form.addEventListener("input", function () {
      form.querySelectorAll("input[name=level]").forEach(function (box) { log.filter.levels[box.value] = box.checked; });
      log.filter.q = document.getElementById("log-search").value.trim().toLowerCase();
      applyFilters(Array.from(logLines().children));
    });
    scroll.addEventListener("click", function (evt) {
      var tag = evt.target.closest(".tag");
      if (!tag) return;
      setTag({ name: tag.dataset.tag, value: tag.dataset.value, label: tag.textContent });
    });
    document.querySelector("#log-tag-filter .clear-tag").addEventListener("click", function () { setTag(null); });
  }

  function setTag(tag) {
    log.filter.tag = tag;
    var chip = document.getElementById("log-tag-filter");
    chip.hidden = !tag;
    chip.querySelector(".tag-text").textContent = tag ? "Only " + tag.label : "";
    applyFilters(Array.from(logLines().children));
  }

  // --- Stop flow ---------------------------------------------------------------------------------------

  var savedHeader = null;

  function onConfirm(evt) {
    var form = evt.detail.elt;
    if (!form || form.id !== "stop-form") return;
    if (form.dataset.confirmed === "1") return; // confirmed in the dialog already (below)
    evt.preventDefault();
    RunwatchStop.ask(function () {
      if (!form.isConnected) {
        // The stream replaced the header while the dialog was open. Its answer would go to a detached form
        // and be lost, and the badge is no longer the one the user saw: act on the header shown now.
        var current = document.getElementById("stop-form");
        if (current) {
          current.dataset.confirmed = "1";
          htmx.trigger(current, "submit");
        } else {
          var error = document.getElementById("stop-error");
          error.textContent = runStatus() === "cancelling" ? "The run is already stopping."
                                                           : "The run has already " + runStatus() + "; there is nothing to stop.";
          error.hidden = false;
        }
        return;
      }
      // Show the request at once; the server's answer (or the stream) confirms it.
      var header = document.getElementById("run-header");
      savedHeader = header.cloneNode(true);
      RunwatchStop.showCancelling(document.getElementById("run-badge"));
      form.hidden = true;
      document.getElementById("stop-error").hidden = true;
      evt.detail.issueRequest(true);
    });
  }

  function onStopAnswered(evt) {
    if (!evt.detail.elt || evt.detail.elt.id !== "stop-form" || evt.detail.successful) return;
    var xhr = evt.detail.xhr, error = document.getElementById("stop-error");
    error.textContent = RunwatchStop.failureText(xhr);
    error.hidden = false;
    var header = document.getElementById("run-header");
    if (savedHeader && header) {
      header.replaceWith(savedHeader);
      htmx.process(savedHeader);
    }
    savedHeader = null;
  }

  // --- Wiring -------------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    page = document.getElementById("run-page");
    if (!page) return;
    state.seq = parseInt(page.dataset.seq, 10) || 0;
    if (page.dataset.terminal === "1") state.ended = true;
    page.addEventListener("htmx:wsConnecting", onConnecting);
    page.addEventListener("htmx:wsOpen", onOpen);
    page.addEventListener("htmx:wsClose", onClose);
    document.body.addEventListener("htmx:configRequest", function (evt) {
      if (evt.detail.elt === state.poller) evt.detail.parameters.after = state.seq;
      if (evt.detail.elt.classList && evt.detail.elt.classList.contains("load-older")) {
        var first = logLines().firstElementChild;
        if (first) evt.detail.parameters.before = first.dataset.seq;
        log.holding = true; // reading history: do not trim what was just loaded
      }
    });
    document.body.addEventListener("htmx:confirm", onConfirm);
    document.body.addEventListener("htmx:afterRequest", onStopAnswered);
    document.body.addEventListener("htmx:afterRequest", onPollAnswered);
    // A swapped-in fragment shows its clocks and estimate right, not a second later.
    document.body.addEventListener("htmx:oobAfterSwap", function () { setTimeout(tick, 0); });
    page.addEventListener("htmx:wsOpen", function (evt) { state.wrapper = evt.detail.socketWrapper; });
    window.addEventListener("online", function () {
      if (state.wrapper && !state.open && !state.ended) state.wrapper.reconnect();
    });
    setupLog();
    drawMetrics();
    if (page.dataset.terminal !== "1") {
      RunwatchNotify.setup(document.getElementById("notify-btn"), document.getElementById("notify-status"), "this run ends");
    }
    document.body.addEventListener("htmx:oobAfterSwap", function (evt) {
      var id = evt.detail.target && evt.detail.target.id;
      if (id !== "chart-data" && id !== "metrics-rows" && id !== "run-metrics") return;
      // Once per batch, not once per swapped element.
      if (!state.drawPending) { state.drawPending = true; setTimeout(function () { state.drawPending = false; drawMetrics(); }, 0); }
    });
    tick();
    setInterval(tick, 1000);
  });
})();
