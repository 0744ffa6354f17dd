/* Device time page: show this browser's clock, and send it with the form (milliseconds since the epoch). */
(function () {
  "use strict";
  var form = document.getElementById("clock-form");
  var field = document.getElementById("browser-ms");
  var shown = document.getElementById("browser-time");
  if (!form || !field) { return; }
  form.addEventListener("submit", function () { field.value = String(Date.now()); });
  if (!shown) { return; }
  var format;
  try {
    format = new Intl.DateTimeFormat("sv-SE", {
      timeZone: shown.getAttribute("data-zone") || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
  } catch (e) {
    format = null;  // an unknown zone name: fall back to the browser's own
  }
  function tick() {
    var now = new Date();
    shown.textContent = format ? format.format(now) + " (" + shown.getAttribute("data-zone") + ")" : now.toString();
    shown.classList.remove("muted");
  }
  tick();
  window.setInterval(tick, 1000);
}());
