// okrflow pages: every 2 s, fetch the page's JSON twin and update the figures in place (no
// reload). Numbers print as the server prints them (pages/render.py: number, percent).
"use strict";
(function () {
  var STATUS = {on_track: "On track", at_risk: "At risk", off_track: "Off track",
    achieved: "Achieved", missed: "Missed", not_started: "Not started"};
  var NONE = "\u2014";
  var fmt = new Intl.NumberFormat("en-US", {maximumFractionDigits: 2});

  function number(x) { return typeof x === "number" && isFinite(x) ? fmt.format(x) : NONE; }
  function percent(x) {
    return typeof x === "number" && isFinite(x) ? Math.round(x * 100) + "%" : NONE;
  }
  function share(x) {
    return typeof x === "number" && isFinite(x) ? Math.min(100, Math.max(0, x * 100)) : 0;
  }
  function statusText(s) { return s === null ? "Waiting for its baseline" : (STATUS[s] || s); }
  function css(s) { return s === null ? "waiting" : s; }

  function set(root, field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  function setStatus(root, status) {
    root.className = root.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + css(status);
    var el = root.querySelector('[data-field="status"]');
    if (el) {
      el.className = "status status-" + css(status);
      if (el.textContent !== statusText(status)) { el.textContent = statusText(status); }
    }
  }
  function setBar(root, entry) {
    var bar = root.querySelector(".bar");
    if (!bar) { return; }
    var width = share(entry.progress);
    bar.querySelector(".fill").style.width = width.toFixed(1) + "%";
    bar.querySelector(".pace").style.left = share(entry.expected).toFixed(1) + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(width)));
    bar.setAttribute("aria-valuetext", percent(entry.progress) + " done, " +
      percent(entry.expected) + " expected by now, " + statusText(entry.status));
  }
  function figures(root, entry) {
    setStatus(root, entry.status);
    setBar(root, entry);
    set(root, "progress", percent(entry.progress));
    set(root, "expected", percent(entry.expected));
  }
  function byData(name, value) {
    var all = document.querySelectorAll("[data-" + name + "]");
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-" + name) === value) { return all[i]; }
    }
    return null;
  }

  function updateShop(report) {
    var shop = report.shops[0];
    shop.objectives.forEach(function (o) {
      var el = byData("objective", o.key);
      if (!el) { return; }
      figures(el, o);
      o.key_results.forEach(function (kr) {
        var li = byData("kr", o.key + "/" + kr.key);
        if (!li) { return; }
        figures(li, kr);
        set(li, "value", number(kr.value));
        set(li, "baseline", number(kr.baseline));
        set(li, "target", number(kr.target));
      });
    });
    (shop.kpis || []).forEach(function (k) {
      var row = byData("kpi", k.key);
      if (!row) { return; }
      set(row, "value", number(k.value));
      var health = k.healthy === true ? "Healthy" : k.healthy === false ? "Unhealthy" : NONE;
      set(row, "healthy", health);
    });
    var at = document.querySelector('[data-field="at"]');
    if (at && report.at) { at.textContent = report.at; at.setAttribute("datetime", report.at); }
  }

  var lastChart = null;
  function updateKeyResult(history) {
    var o = history.objectives[0];
    var kr = o.key_results[0];
    var last = kr.days[kr.days.length - 1];
    var root = byData("kr", o.key + "/" + kr.key);
    if (root && last) {
      figures(root, last);
      set(root, "value", number(last.value));
      set(root, "day", last.day);
      set(root, "target", number(last.target));
    }
    var key = JSON.stringify(kr.days);
    var chart = document.querySelector("[data-chart]");
    if (chart && lastChart !== null && key !== lastChart) {
      fetch(chart.getAttribute("data-chart"), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) { if (svg) { chart.innerHTML = svg; } });
      var body = document.querySelector("table.days tbody");
      if (body) {
        body.textContent = "";
        kr.days.slice().reverse().forEach(function (d) {
          var tr = document.createElement("tr");
          var th = document.createElement("th");
          th.scope = "row"; th.textContent = d.day; tr.appendChild(th);
          [number(d.value), percent(d.progress), percent(d.expected), statusText(d.status)]
            .forEach(function (t) {
              var td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
            });
          body.appendChild(tr);
        });
      }
    }
    lastChart = key;
  }

  var url = document.body.getAttribute("data-poll");
  var polls = 0;
  function poll() {
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (doc) {
        if (doc.shops) { updateShop(doc); } else if (doc.objectives) { updateKeyResult(doc); }
        polls += 1;
        document.body.setAttribute("data-polls", String(polls));
        set(document, "updated", "Live: updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { set(document, "updated", "Live updates paused (no answer)"); })
      .then(function () { setTimeout(poll, 2000); });
  }
  if (url && window.fetch) { setTimeout(poll, 2000); }
})();
