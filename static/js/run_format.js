/* The run page's copies of runs/formatting.py, for what the browser writes itself: ticking clocks, the
 * counting-down estimate (run.js) and the live chart's tick values (run_chart.js). Each must format exactly
 * as its Python twin (tests/browser/test_live_story.py compares durations). */
(function () {
  "use strict";

  var TINY = 1e-3; // runs.formatting.TINY

  // runs.formatting.duration.
  function formatSeconds(total) {
    total = Math.floor(Math.max(0, total) + 0.5);
    if (total < 60) return total + " s";
    var m = Math.floor(total / 60), s = total % 60;
    if (m < 60) return m + " min " + (s < 10 ? "0" : "") + s + " s";
    var h = Math.floor(m / 60); m = m % 60;
    return h + " h " + (m < 10 ? "0" : "") + m + " min";
  }

  // runs.formatting.estimate: "~40 s", or while unsure the range in the larger end's unit ("~2–4 min").
  function rough(total, round) {
    if (total < 60) return [total, "s"];
    if (total < 3600) return [round(total / 60), "min"];
    return [round(total / 3600), "h"];
  }

  function formatEstimate(seconds, low, high) {
    var whole = function (v) { return Math.floor(Math.max(0, v) + 0.5); };
    if (isNaN(low) || isNaN(high)) return "~" + formatSeconds(seconds);
    var lo = rough(whole(low), Math.floor), hi = rough(Math.max(whole(high), whole(low)), Math.ceil);
    if (lo[1] === hi[1]) return "~" + (lo[0] === hi[0] ? lo[0] : lo[0] + "–" + hi[0]) + " " + hi[1];
    return "~" + lo[0] + " " + lo[1] + "–" + hi[0] + " " + hi[1];
  }

  // runs.formatting.number(value, digits): fixed decimals, tiny non-zero values in exponent form.
  function number(value, digits) {
    if (value !== 0 && Math.abs(value) < TINY) return value.toExponential(2);
    return value.toFixed(digits);
  }

  window.Runwatch = { formatDuration: formatSeconds, formatEstimate: formatEstimate, formatNumber: number };
})();
