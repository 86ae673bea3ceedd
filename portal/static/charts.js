// Draws every chart of a page from its JSON figure (plotly.js, served by the portal itself).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.plot[data-figure]").forEach(function (target) {
    var source = document.getElementById(target.dataset.figure);
    if (!source || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, {displaylogo: false, responsive: true})
      .then(function () { target.dataset.rendered = "true"; });
  });
});
