// Small conveniences for the wizard; every step works without them.
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    // Ticking a model opens its parameters.
    document.querySelectorAll("details.model input[type=checkbox]").forEach(function (box) {
      box.addEventListener("change", function () { if (box.checked) box.closest("details").open = true; });
      box.addEventListener("click", function (e) { e.stopPropagation(); });
    });
    // Show the synthetic settings only for a synthetic dataset, and the runner's settings for its runner.
    function toggle(radioName, attr, sections) {
      var radios = document.querySelectorAll("input[name=" + radioName + "]");
      if (!radios.length) return;
      function update() {
        var chosen = document.querySelector("input[name=" + radioName + "]:checked");
        var value = chosen ? chosen.value : "";
        sections.forEach(function (pair) {
          var el = document.querySelector(pair[0]);
          if (el) el.hidden = !pair[1](value);
        });
      }
      radios.forEach(function (r) { r.addEventListener("change", update); });
      update();
    }
    toggle("source", "", [[".synthetic-settings", function (v) { return v.indexOf("synthetic:") === 0; }]]);
    toggle("runner", "", [[".runner-training", function (v) { return v === "training"; }],
                          [".runner-evaluation", function (v) { return v === "evaluation"; }]]);
    // Missing categories are filled only for the columns one-hot encoding keeps.
    toggle("encode", "", [[".cat-imputer", function (v) { return v === "encode"; }]]);
    // Choosing a target column picks its guessed task (the user can still change it).
    var target = document.querySelector("select[name=target]");
    if (target) {
      target.addEventListener("change", function () {
        var guess = document.querySelector('.guess[data-column="' + CSS.escape(target.value) + '"]');
        var radio = guess && document.querySelector('input[name=task][value="' + guess.dataset.task + '"]');
        if (radio) radio.checked = true;
      });
    }
  });
})();
