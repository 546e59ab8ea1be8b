(function () {
  "use strict";
  var table = document.getElementById("findings-table");
  if (table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var check = document.getElementById("filter-check");
    var severity = document.getElementById("filter-severity");
    var source = document.getElementById("filter-source");
    var text = document.getElementById("filter-text");
    var count = document.getElementById("shown-count");
    var apply = function () {
      var needle = text.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var visible = (!check.value || row.dataset.check === check.value) &&
          (!severity.value || row.dataset.severity === severity.value) &&
          (!source.value || row.dataset.source === source.value) &&
          (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1);
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      count.textContent = shown.toLocaleString("en") + " shown";
    };
    [check, severity, source].forEach(function (el) { el.addEventListener("change", apply); });
    text.addEventListener("input", apply);
  }
  var setAll = function (open) {
    document.querySelectorAll("details.cluster").forEach(function (d) { d.open = open; });
  };
  var expand = document.getElementById("expand-all");
  var collapse = document.getElementById("collapse-all");
  if (expand) { expand.addEventListener("click", function () { setAll(true); }); }
  if (collapse) { collapse.addEventListener("click", function () { setAll(false); }); }
})();
