// Draws every chart of the page from the specs the server embedded as JSON (no inline script).
// Vega's expression interpreter replaces its code generator, so the page needs no eval.
(function () {
  "use strict";
  var holder = document.getElementById("troth-charts");
  if (!holder || typeof vegaEmbed === "undefined") {
    return;
  }
  var specs = JSON.parse(holder.textContent);
  var options = {
    actions: false,
    renderer: "svg",
    ast: true,
    expr: vega.expressionInterpreter,
    loader: { target: "_self" }
  };
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var spec = specs[element.getAttribute("data-chart")];
    if (!spec) {
      return;
    }
    vegaEmbed(element, spec, options)
      .then(function () {
        element.setAttribute("data-rendered", "true");
      })
      .catch(function (error) {
        element.setAttribute("data-rendered", "error");
        element.textContent = "This chart could not be drawn: " + error.message;
      });
  });
})();
