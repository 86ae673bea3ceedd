// Draws every chart of a page from its JSON figure (plotly.js, served by the portal itself). No mode bar:
// its per-chart style rules would need inline <style>, which the CSP forbids (the global rules go into
// the plotly-rules.css sheet the page links as "plotly.js-style-global").
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.plot[data-figure]").forEach(function (target) {
    var source = document.getElementById(target.dataset.figure);
    if (!source || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, {displaylogo: false, displayModeBar: false, responsive: true})
      .then(function () { target.dataset.rendered = "true"; });
  });
});
