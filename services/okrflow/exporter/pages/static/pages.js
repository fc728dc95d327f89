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
  // A forecast in words, as pages/forecast_text.py says it.
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  var BANDS = [[0.8, "very likely"], [0.6, "likely"], [0.4, "as likely as not"],
    [0.2, "unlikely"], [0, "very unlikely"]];
  function band(p) {
    if (p >= 1) { return "certain"; }
    for (var i = 0; i < BANDS.length; i++) { if (p >= BANDS[i][0]) { return BANDS[i][1]; } }
    return "very unlikely";
  }
  function chance(p) {
    var shown = Math.floor(p * 100 + 0.5);
    if (shown === 0 && p > 0) { return "<1%"; }
    if (shown === 100 && p < 1) { return ">99%"; }
    return shown + "%";
  }
  function dayText(iso) {
    var parts = iso.split("-");
    return Number(parts[2]) + " " + MONTHS[Number(parts[1]) - 1];
  }
  function noForecast(entry) {
    return entry.forecast_reason ? "none (" + entry.forecast_reason + ")" : "none";
  }
  function krForecastText(kr, end) {
    var f = kr.forecast;
    if (!f || typeof f.probability !== "number") { return noForecast(kr); }
    var p = f.probability;
    var falling = typeof kr.target === "number" && typeof kr.baseline === "number" &&
      kr.target < kr.baseline;
    var goal = (falling ? "come down to " : "reach ") + number(kr.target) + " by " + dayText(end);
    var needs = f.required_per_day;
    if (p === 0 && !needs) { return "cannot " + goal + " any more"; }
    var head = band(p) + " (" + chance(p) + ") to " + goal;
    if (!needs) { return head + "; met now"; }
    if (f.required_per_slot !== undefined && f.required_per_slot !== null) {
      return head + "; needs " + number(f.required_per_slot) + " in every slot left";
    }
    return head + "; needs " + number(needs) + " a day";
  }
  function objectiveForecastText(o) {
    var f = o.forecast;
    if (!f || typeof f.probability !== "number") { return noForecast(o); }
    return band(f.probability) + " (" + chance(f.probability) + ") to be fully achieved by " +
      dayText(o.period.end) + "; median progress " + percent(f.p50_progress);
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
      set(el, "forecast", objectiveForecastText(o));  // its own: before its key results'
      o.key_results.forEach(function (kr) {
        var li = byData("kr", o.key + "/" + kr.key);
        if (!li) { return; }
        figures(li, kr);
        set(li, "forecast", krForecastText(kr, o.period.end));
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
        .then(function (svg) {
          if (!svg) { return; }
          chart.innerHTML = svg;
          var drawn = chart.querySelector("svg[data-forecast]");
          if (root && drawn) { set(root, "forecast", drawn.getAttribute("data-forecast")); }
        });
      var body = document.querySelector("table.days tbody");
      if (body) {
        body.textContent = "";
        kr.days.slice().reverse().forEach(function (d) {
          var tr = document.createElement("tr");
          var th = document.createElement("th");
          th.scope = "row"; th.textContent = d.day; tr.appendChild(th);
          var f = d.forecast;
          var p = f && typeof f.probability === "number" ? chance(f.probability) : NONE;
          [number(d.value), percent(d.progress), percent(d.expected), statusText(d.status), p]
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
