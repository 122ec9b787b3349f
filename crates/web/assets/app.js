// codeclab dashboard: admin token handling, admin buttons, live updates, charts, frame viewer.
(function () {
  "use strict";
  var TOKEN_KEY = "codeclab-admin-token";

  function $(selector) { return document.querySelector(selector); }
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function showTokenState() {
    var state = $("#token-state");
    if (state) state.textContent = token() ? "token set" : "read-only";
  }

  function message(status, text) {
    var box = $("#admin-message");
    if (!box) return;
    box.setAttribute("data-status", String(status));
    box.textContent = text;
    box.className = status >= 200 && status < 300 ? "ok" : "error";
  }

  function post(url, body) {
    var headers = { "Content-Type": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    return fetch(url, { method: "POST", headers: headers, body: body, credentials: "omit" })
      .then(function (response) {
        return response.text().then(function (text) {
          var shown = text;
          try {
            var json = JSON.parse(text);
            shown = json.error ? json.error : JSON.stringify(json);
          } catch (e) { /* not JSON */ }
          message(response.status, response.status + " " + shown);
          if (response.ok) refresh();
        });
      })
      .catch(function (error) { message(0, String(error)); });
  }

  function setupAdmin() {
    var save = $("#token-save");
    if (save) save.addEventListener("click", function () {
      var input = $("#token-input");
      if (input && input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      if (input) input.value = "";
      showTokenState();
    });
    var clear = $("#token-clear");
    if (clear) clear.addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
    });
    showTokenState();
    all("button[data-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var body = "";
        var source = button.getAttribute("data-body");
        var note = button.getAttribute("data-note");
        if (source) body = $(source).value;
        if (note) {
          var payload = { body: $(note).value };
          var experiment = button.getAttribute("data-experiment");
          if (experiment) payload.experiment_id = Number(experiment);
          body = JSON.stringify(payload);
        }
        post(button.getAttribute("data-action"), body);
      });
    });
  }

  // Live updates.
  var lastLatest = null;
  function setField(name, value) {
    all('[data-field="' + name + '"]').forEach(function (element) {
      element.textContent = String(value);
      element.setAttribute("data-value", String(value));
    });
  }
  function refresh() {
    var containers = all("[data-live-refresh][id]");
    if (!containers.length) return;
    fetch(window.location.href, { credentials: "omit" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        containers.forEach(function (container) {
          var replacement = fresh.getElementById(container.id);
          if (replacement) container.innerHTML = replacement.innerHTML;
        });
      })
      .catch(function () { /* the next update retries */ });
  }
  function setupLive() {
    if (!window.EventSource) return;
    var source = new EventSource("/api/stream");
    // A page left for the back/forward cache must not keep its stream: browsers allow only a
    // few open connections per server.
    window.addEventListener("pagehide", function () { source.close(); });
    source.addEventListener("update", function (event) {
      var pulse = JSON.parse(event.data);
      var state = pulse.status.state;
      setField("header-status", state + (pulse.status.reason ? " (" + pulse.status.reason + ")" : ""));
      all('[data-field="status"]').forEach(function (e) { e.textContent = state; });
      all('[data-field="status-reason"]').forEach(function (e) { e.textContent = pulse.status.reason || ""; });
      ["queued", "running", "completed", "analysed", "failed", "cancelled"].forEach(function (s) {
        if (document.querySelector('[data-field="count:' + s + '"]')) setField("count:" + s, pulse.counts[s] || 0);
      });
      if (document.querySelector('[data-field="count:total"]')) setField("count:total", pulse.total);
      if (document.querySelector('[data-field="queue:queued"]')) setField("queue:queued", pulse.queue.queued);
      if (document.querySelector('[data-field="queue:running"]')) setField("queue:running", pulse.queue.running);
      var latest = JSON.stringify(pulse.latest);
      if (lastLatest !== null && latest !== lastLatest) refresh();
      lastLatest = latest;
    });
  }

  // Charts.
  var COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  function drawChart(holder) {
    if (!window.uPlot) return;
    var spec = JSON.parse(holder.textContent);
    var xs = [];
    spec.series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); }); });
    xs = xs.filter(function (x, i, a) { return a.indexOf(x) === i; }).sort(function (a, b) { return a - b; });
    if (!xs.length) {
      holder.parentNode.textContent = spec.title + ": not measured";
      holder.parentNode.className += " nm";
      return;
    }
    var data = [xs];
    spec.series.forEach(function (s) {
      var column = xs.map(function () { return null; });
      s.points.forEach(function (p) { column[xs.indexOf(p[0])] = p[1]; });
      data.push(column);
    });
    var series = [{ label: spec.x_label }];
    spec.series.forEach(function (s, i) {
      var entry = { label: s.label, stroke: COLOURS[i % COLOURS.length], spanGaps: true, points: { show: true, size: 6 } };
      if (spec.scatter) entry.paths = function () { return null; };
      series.push(entry);
    });
    var figure = holder.parentNode;
    var options = {
      title: spec.title,
      width: Math.min(560, Math.max(320, figure.clientWidth || 480)),
      height: 300,
      scales: { x: spec.log_x ? { time: false, distr: 3 } : { time: false } },
      axes: [{ label: spec.x_label }, { label: spec.y_label }],
      series: series
    };
    new window.uPlot(options, data, figure);
  }

  // Frame viewer.
  function setupFrames() {
    var viewer = $("#frame-viewer");
    if (!viewer) return;
    var id = viewer.getAttribute("data-experiment");
    function show() {
      var clip = $("#frame-clip").value;
      var base = "/api/experiments/" + id + "/frame.png?clip=" + encodeURIComponent(clip) +
        "&rate=" + encodeURIComponent($("#frame-rate").value) +
        "&frame=" + encodeURIComponent($("#frame-index").value || "0");
      var zoom = Number($("#frame-zoom").value);
      $("#frame-source").src = base + "&view=source";
      $("#frame-decoded").src = base + "&view=decoded";
      $("#frame-diff").src = base + "&view=diff&amplify=" + encodeURIComponent($("#frame-amplify").value);
      ["#frame-source", "#frame-decoded", "#frame-diff"].forEach(function (selector) {
        var image = $(selector);
        image.onload = function () { image.style.width = (image.naturalWidth * zoom) + "px"; };
      });
    }
    $("#frame-show").addEventListener("click", show);
    show();
    $("#frame-zoom").addEventListener("change", show);
    $("#frame-clip").addEventListener("change", function () {
      var option = $("#frame-clip").selectedOptions[0];
      $("#frame-index").max = Math.max(0, Number(option.getAttribute("data-frames")) - 1);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupAdmin();
    setupLive();
    all("script[data-chart]").forEach(drawChart);
    setupFrames();
  });
})();
