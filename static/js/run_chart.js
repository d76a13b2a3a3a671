/* The run page's live chart: the scored fits the page holds (#chart-data), drawn as SVG with the same frame
 * as the results page's fold chart (results/charts.py, templates/runs/fold_chart.svg.html): a grid, axes, tick
 * values and axis titles, styled by the shared .fold-svg rules in app.css. run.js calls draw() after each batch.
 *
 * The x axis numbers each fit in the order it was scored (data-n: its place among the run's scored fits), as
 * the page keeps only the newest ones; the y axis is the primary metric over the range of the points shown.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg", Y_TICKS = 5, X_TICKS = 8, number = Runwatch.formatNumber;

  function svgEl(name, attrs, text) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // results.charts.nice_range: a padded range, so a flat or single-point series still gets a readable axis.
  function niceRange(low, high) {
    if (high - low < 1e-12) {
      var pad = Math.abs(low) * 0.05 || 0.05;
      return [low - pad, high + pad];
    }
    var p = (high - low) * 0.08;
    return [low - p, high + p];
  }

  // The frame comes from the <svg>'s viewBox and data-* attributes (templates/runs/detail.html).
  function frame(chart) {
    var box = chart.viewBox.baseVal, d = chart.dataset;
    return { width: box.width, height: box.height, left: +d.left, right: box.width - +d.right,
             top: +d.top, bottom: box.height - +d.bottom };
  }

  function drawAxes(chart, f, low, high, xs, y) {
    for (var i = 0; i < Y_TICKS; i++) {
      var v = low + (high - low) * i / (Y_TICKS - 1), ty = y(v).toFixed(1);
      chart.appendChild(svgEl("line", { "class": "grid", x1: f.left, x2: f.right, y1: ty, y2: ty }));
      chart.appendChild(svgEl("text", { "class": "tick y-tick", x: f.left - 6, y: ty, "text-anchor": "end",
                                        "dominant-baseline": "middle" }, number(v, 3)));
    }
    chart.appendChild(svgEl("line", { "class": "axis", x1: f.left, x2: f.left, y1: f.top, y2: f.bottom }));
    chart.appendChild(svgEl("line", { "class": "axis", x1: f.left, x2: f.right, y1: f.bottom, y2: f.bottom }));
    // At most X_TICKS or so labelled fits: every stride-th from the oldest, and the newest unless it would
    // crowd the one before it.
    var stride = Math.max(1, Math.ceil(xs.length / X_TICKS)), last = xs.length - 1, labelled = [];
    for (var k = 0; k <= last; k += stride) labelled.push(k);
    if (labelled[labelled.length - 1] !== last && last - labelled[labelled.length - 1] >= stride / 2) labelled.push(last);
    labelled.forEach(function (i) {
      chart.appendChild(svgEl("text", { "class": "tick x-tick", x: xs[i].x.toFixed(1), y: f.bottom + 14,
                                        "text-anchor": "middle" }, String(xs[i].n)));
    });
    var midY = (f.top + f.bottom) / 2;
    chart.appendChild(svgEl("text", { "class": "axis-title x-title", x: (f.left + f.right) / 2, y: f.height - 6,
                                      "text-anchor": "middle" }, chart.dataset.xLabel));
    chart.appendChild(svgEl("text", { "class": "axis-title y-title", x: 12, y: midY, "text-anchor": "middle",
                                      transform: "rotate(-90 12 " + midY + ")" }, chart.dataset.yLabel));
  }

  // `points`: the <i> elements of #chart-data, oldest first. Returns [low, high] of the values, or null.
  function draw(chart, points) {
    while (chart.firstChild) chart.firstChild.remove();
    var ys = [];
    points.forEach(function (p) {
      ["y", "m"].forEach(function (k) { if (p.dataset[k] !== "") ys.push(parseFloat(p.dataset[k])); });
    });
    if (!ys.length) return null;
    var lowest = Math.min.apply(null, ys), highest = Math.max.apply(null, ys);
    var range = niceRange(lowest, highest), low = range[0], high = range[1], f = frame(chart);
    var step = (f.right - f.left) / Math.max(1, points.length - 1);
    function x(i) { return points.length > 1 ? f.left + i * step : (f.left + f.right) / 2; }
    function y(v) { return f.top + (high - v) / (high - low) * (f.bottom - f.top); }
    drawAxes(chart, f, low, high, points.map(function (p, i) {
      return { x: x(i), n: parseInt(p.dataset.n, 10) || i + 1 };
    }), y);

    var line = [], key = null;
    function flush() { if (line.length > 1) chart.appendChild(svgEl("polyline", { points: line.join(" "), "class": "chart-mean" })); line = []; }
    points.forEach(function (p, i) {
      if (p.dataset.k !== key) { flush(); key = p.dataset.k; }
      if (p.dataset.m !== "") line.push(x(i).toFixed(1) + "," + y(parseFloat(p.dataset.m)).toFixed(1));
    });
    flush();
    points.forEach(function (p, i) {
      if (p.dataset.y === "") return;
      // A resume's reused folds are hollow: scored by the run it resumes, not fitted again.
      var reused = p.dataset.r === "1";
      var dot = svgEl("circle", { cx: x(i).toFixed(1), cy: y(parseFloat(p.dataset.y)).toFixed(1), r: 3,
                                  "class": reused ? "chart-dot chart-dot-reused" : "chart-dot" });
      dot.appendChild(svgEl("title", {}, chart.dataset.xLabel + " " + (p.dataset.n || i + 1) + ": " + p.dataset.y +
                                         (reused ? " (reused)" : "")));
      chart.appendChild(dot);
    });
    return [lowest, highest];
  }

  window.RunwatchChart = { draw: draw };
})();
