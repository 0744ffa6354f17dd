/* Monitor: follow /monitor/events (Server-Sent Events) and keep the tables current. Text only, never HTML. */
(function () {
  "use strict";
  var events = document.getElementById("events");
  var live = document.getElementById("live-state");
  if (!events || !window.EventSource) { return; }
  var MAX_ROWS = 200;
  var body = events.tBodies[0];
  var url = events.getAttribute("data-stream") + "?after=" + encodeURIComponent(events.getAttribute("data-after") || "0");
  var source = new EventSource(url);

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function badgeCell(row, text, tone, note, noteClass) {
    var td = cell(row, "");
    var span = document.createElement("span");
    span.className = "badge" + (tone ? " " + tone : "");
    span.textContent = text;
    td.appendChild(span);
    if (note) {
      var p = document.createElement("p");
      p.className = noteClass;
      p.textContent = note;
      td.appendChild(p);
    }
  }

  function setLive(text, tone) {
    live.textContent = text;
    live.className = "badge live" + (tone ? " " + tone : "");
  }

  function replaceRows(table, items, build, empty) {
    var tbody = document.createElement("tbody");
    items.forEach(function (item) {
      var row = document.createElement("tr");
      build(row, item);
      tbody.appendChild(row);
    });
    if (!items.length && empty) {
      var row = document.createElement("tr");
      var td = cell(row, empty);
      td.colSpan = table.tHead.rows[0].cells.length;
      td.className = "muted";
      tbody.appendChild(row);
    }
    table.replaceChild(tbody, table.tBodies[0]);
  }

  source.onopen = function () { setLive("live", "ok"); };

  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      setLive("stopped: reload the page", "bad");  // e.g. the session ended and the stream was refused
    } else {
      setLive("reconnecting…", "");
    }
  };

  source.onmessage = function (message) {
    var e = JSON.parse(message.data);
    if (document.getElementById("event-" + e.id)) { return; }
    var row = document.createElement("tr");
    row.id = "event-" + e.id;
    cell(row, e.time);
    cell(row, e.kind);
    cell(row, e.source);
    cell(row, e.modem);
    cell(row, e.receiver);
    badgeCell(row, e.result, e.tone);
    cell(row, e.cause);
    var placeholder = body.querySelector("tr.empty");
    if (placeholder) { body.removeChild(placeholder); }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
  };

  source.addEventListener("status", function (message) {
    var status = JSON.parse(message.data);
    var down = document.getElementById("component-down");
    if (down) {
      down.hidden = !status.component;
      down.textContent = status.component ? status.component + ": the modems' status below is the last one recorded." : "";
    }
    replaceRows(document.getElementById("modems"), status.modems, function (row, m) {
      cell(row, m.name);
      badgeCell(row, m.state, m.tone, m.error, "error");
      cell(row, m.signal).className = "nowrap";
      cell(row, m.operator);
      cell(row, m.since);
    }, "No modem yet.");
    replaceRows(document.getElementById("feeders"), status.feeders, function (row, f) {
      cell(row, f.title);
      badgeCell(row, f.state, f.tone, f.cause, "help");
      cell(row, f.since);
    }, "");
  });
}());
