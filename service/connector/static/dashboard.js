// hedui operators' dashboard: polls /dashboard/data and updates each card in place.
(function () {
  "use strict";
  var grid = document.getElementById("grid");
  var banner = document.getElementById("stale");
  var refreshMs = parseInt(grid.getAttribute("data-refresh-ms"), 10) || 5000;
  // Below this many calls in the window there is no rate to speak of (the status then
  // follows the latest call or check): the card says how many calls went well instead.
  var minCalls = parseInt(grid.getAttribute("data-min-calls"), 10) || 10;
  // A key of one region watches; pausing a partner (for every region) is not its to do.
  var mayPause = grid.getAttribute("data-may-pause") === "yes";
  var range = "hour";
  var cards = {};
  var last = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  // To a tenth, rounded down: a partner that failed a call never shows 100 %.
  function pct(v) {
    if (v === null || v === undefined) return "—";
    var tenths = Math.floor(Math.round(v * 1e6) / 1e3);
    return (tenths % 10 === 0 ? String(tenths / 10) : (tenths / 10).toFixed(1)) + " %";
  }
  function ms(v) { return v === null || v === undefined ? "—" : (v >= 1000 ? (v / 1000).toFixed(1) + " s" : Math.round(v) + " ms"); }
  function ago(iso) {
    if (!iso) return "never";
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }
  // Times of day on the 24-hour clock, as the charts' axes show them (the browser's zone).
  function clock(iso) { return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }); }
  function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function hhmm(iso) { return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }); }

  // The chart's time axis: its first bucket's start at the left, the middle bucket's under
  // the middle (the buckets are evenly spaced), and now at the right (the last bucket is
  // the one being counted).
  function timeAxis(c, points) {
    c.axis.textContent = "";
    if (!points.length) return;
    [hhmm(points[0].start), hhmm(points[Math.floor((points.length - 1) / 2)].start), "now"]
      .forEach(function (t) { c.axis.appendChild(el("span", "", t)); });
  }

  function stat(label) {
    var box = el("div", "stat");
    var value = el("b", "", "—");
    var small = el("small", "", label);
    box.appendChild(value);
    box.appendChild(small);
    return { box: box, value: value, label: small };
  }
  // The success rate, or with too few calls for one, how many of them went well.
  // After an outage the window restarts when the breaker closes: the figures count from
  // then, and the card says so rather than "no calls yet" beside the outage's errors.
  function success(s, h) {
    var since = h.window_restarted ? " since the breaker closed at " + clock(h.window_from) : "";
    if (h.calls === 0) {
      s.value.textContent = "—";
      s.label.textContent = since ? "no calls" + since : "no calls yet";
      s.box.title = since ? "No calls to this partner" + since + " (the window restarts then)"
        : "No calls to this partner in the last " + Math.round(h.window_s / 60) + " min";
    } else if (h.calls < minCalls) {
      s.value.textContent = (h.calls - h.failures) + " of " + h.calls;
      s.label.textContent = "calls ok";
      s.box.title = "Too few calls for a success rate (" + minCalls + " needed)" + since;
    } else {
      s.value.textContent = pct(h.success_rate);
      s.label.textContent = "success rate";
      s.box.title = h.failures + " of " + h.calls + " calls failed" + since;
    }
  }

  // The title above the plot; the scale (and the SLO) is written inside it, as axis labels,
  // so that the title has the whole width even in a narrow card.
  function chart(label) {
    var box = el("div", "chart");
    var title = el("small", "chart-title", label);
    var svg = svgEl("svg", { viewBox: "0 0 300 64", preserveAspectRatio: "none", role: "img", "aria-label": label });
    box.appendChild(title);
    box.appendChild(svg);
    // When the chart starts, its middle, and now: under the plot, as a time axis.
    var axis = el("div", "chart-axis");
    axis.setAttribute("aria-hidden", "true");
    box.appendChild(axis);
    return { box: box, svg: svg, title: title, label: label, axis: axis };
  }
  function axisLabel(svg, x, y, text, anchor, colour) {
    var t = svgEl("text", { x: x, y: y, "text-anchor": anchor || "start", fill: colour || "#8a96a3", "font-size": 10 });
    t.textContent = text;
    svg.appendChild(t);
  }
  // Draw in the chart's own pixels, so dots stay round and lines crisp at any card width.
  function widthOf(svg) {
    var w = Math.round(svg.getBoundingClientRect().width) || 300;
    svg.setAttribute("viewBox", "0 0 " + w + " 64");
    return w;
  }

  function build(name) {
    var card = el("section", "card");
    card.setAttribute("data-connector", name);
    var top = el("div", "top");
    var title = el("h2");
    var pill = el("span", "pill status", "unknown");
    top.appendChild(title); top.appendChild(pill);
    var sub = el("div", "sub");
    var reason = el("span", "reason");
    sub.appendChild(reason);
    sub.appendChild(el("code", "name", name));
    var badges = el("div", "badges");
    var stats = el("div", "stats");
    var s = { rate: stat("success rate"), p95: stat("p95 latency"), cpm: stat("calls / min"), ok: stat("last success") };
    Object.keys(s).forEach(function (k) { stats.appendChild(s[k].box); });
    var charts = el("div", "charts");
    var lat = chart("p95 latency"), err = chart("error rate");
    charts.appendChild(lat.box); charts.appendChild(err.box);
    var errors = el("ul", "errors");
    var actions = el("form", "actions");
    var input = el("input", "reason-input");
    input.placeholder = "Reason (kept in the record)";
    input.maxLength = 500;
    input.setAttribute("aria-label", "Reason for " + name);
    var button = el("button", "toggle", "Pause");
    button.type = "submit";
    var msg = el("span", "msg");
    actions.appendChild(input); actions.appendChild(button); actions.appendChild(msg);
    actions.addEventListener("submit", function (event) {
      event.preventDefault();
      toggle(name, input, button, msg);
    });
    [top, sub, badges, stats, charts, errors].concat(mayPause ? [actions] : []).forEach(function (n) { card.appendChild(n); });
    grid.appendChild(card);
    return { card: card, title: title, pill: pill, reason: reason, badges: badges, s: s, lat: lat, err: err,
             errors: errors, button: button, input: input, msg: msg, paused: false };
  }

  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }
  function empty(svg, w) {
    var t = svgEl("text", { x: w / 2, y: 37, "text-anchor": "middle", fill: "#9aa5b1", "font-size": 11 });
    t.textContent = "no calls in this range";
    svg.appendChild(t);
  }

  // p95 latency: a line through buckets with calls (gaps stay gaps), dots on lone points,
  // and the connector's SLO as a dashed line.
  function drawLatency(c, points, slo) {
    var svg = c.svg;
    clear(svg);
    var W = widthOf(svg);
    var n = points.length;
    var values = points.map(function (p) { return p.p95_ms; });
    var max = Math.max.apply(null, values.filter(function (v) { return v !== null; }).concat([slo]));
    var x = function (i) { return n > 1 ? 3 + (i * (W - 6)) / (n - 1) : W / 2; };
    var y = function (v) { return 60 - (Math.min(v, max) / max) * 50; };
    svg.appendChild(svgEl("line", { x1: 0, y1: y(slo), x2: W, y2: y(slo), stroke: "#d0a53c", "stroke-dasharray": "4 3" }));
    var any = false, path = "";
    values.forEach(function (v, i) {
      if (v === null) return;
      any = true;
      var joined = i > 0 && values[i - 1] !== null;
      path += (joined ? " L" : " M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      var lone = !joined && (i === n - 1 || values[i + 1] === null);
      if (lone) svg.appendChild(svgEl("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.2, fill: "#2457c5" }));
    });
    axisLabel(svg, 4, 9, ms(max));
    if (max > slo * 1.25) axisLabel(svg, W - 4, y(slo) - 3, "SLO " + ms(slo), "end", "#b08a2e");
    else axisLabel(svg, W - 4, y(slo) + 11, "SLO " + ms(slo), "end", "#b08a2e");
    c.svg.setAttribute("aria-label", c.title.textContent + ", scale up to " + ms(max) + ", SLO " + ms(slo));
    if (!any) { empty(svg, W); return; }
    svg.appendChild(svgEl("path", { d: path.trim(), fill: "none", stroke: "#2457c5", "stroke-width": 1.8, "stroke-linejoin": "round" }));
  }

  // Error rate: one bar per bucket with calls; grey when every call succeeded.
  function drawErrors(c, points) {
    var svg = c.svg;
    clear(svg);
    var W = widthOf(svg);
    var n = points.length, w = W / Math.max(1, n), any = false;
    axisLabel(svg, 4, 9, "100 %");
    points.forEach(function (p, i) {
      if (p.error_rate === null && !p.refused) return;
      any = true;
      var rate = p.error_rate === null ? 1 : p.error_rate;
      var h = Math.max(2, rate * 50);
      var onlyRefused = p.refused && p.error_rate === null;
      var bar = svgEl("rect", {
        x: (i * w + w * 0.15).toFixed(2), y: (60 - h).toFixed(1), width: Math.max(0.8, w * 0.7).toFixed(2), height: h.toFixed(1),
        fill: rate > 0 ? (onlyRefused ? "#8c6bd1" : "#c62828") : "#cbd5e1"
      });
      // Each bar says what it is on hover: a purple one is calls refused, not errors.
      var tip = svgEl("title", {});
      tip.textContent = hhmm(p.start) + ": " + (onlyRefused ? p.refused + " refused (paused or breaker open), no call made"
        : Math.round(rate * 100) + " % errors" + (p.refused ? ", " + p.refused + " refused" : ""));
      bar.appendChild(tip);
      svg.appendChild(bar);
    });
    if (!any) empty(svg, W);
  }

  function render(item) {
    var sum = item.summary, h = item.health, hist = item.history;
    var generatedAt = last ? last.generated_at : new Date().toISOString();
    var c = cards[sum.name] || (cards[sum.name] = build(sum.name));
    c.title.textContent = sum.title;
    c.card.setAttribute("data-status", h.status);
    c.pill.textContent = h.status;
    c.pill.className = "pill status " + h.status;
    c.reason.textContent = h.reason;
    c.badges.textContent = "";
    var breaker = el("span", "badge breaker " + h.breaker, "breaker " + h.breaker.replace("_", "-"));
    // An end already past (a partner paused while its breaker was open is not called, so
    // the breaker waits for the next call to try it) is not shown as if still ahead.
    if (h.breaker_until && Date.parse(h.breaker_until) > Date.parse(generatedAt)) {
      breaker.textContent += " until " + clock(h.breaker_until);
    } else if (h.breaker === "open") {
      breaker.title = "Tried again at the next call" + (sum.paused ? ", once resumed" : "");
    }
    c.badges.appendChild(breaker);
    c.badges.appendChild(el("span", "badge", sum.origin + " · v" + sum.version));
    if (h.last_probe) {
      // A failing check says why (it may be the only sign: no calls, nothing in the errors).
      var p = h.last_probe;
      var why = !p.ok && p.detail ? ": " + clip(p.detail, 60) : "";
      var check = el("span", "badge probe" + (p.ok ? "" : " open"), "check " + (p.ok ? "ok" : "failing") + " " + ago(p.at) + why);
      check.title = "Health check at " + clock(p.at) + (p.latency_ms != null ? ", " + Math.round(p.latency_ms) + " ms" : "") + (p.detail ? ": " + p.detail : "");
      c.badges.appendChild(check);
    }
    c.paused = !!sum.paused;
    if (sum.paused) {
      var held = el("span", "badge paused", "paused by " + sum.paused.paused_by + " at " + clock(sum.paused.paused_at) + ": " + clip(sum.paused.reason, 80));
      held.title = "Paused " + new Date(sum.paused.paused_at).toLocaleString([], { hourCycle: "h23" }) + " by " + sum.paused.paused_by + ": " + sum.paused.reason;
      c.badges.appendChild(held);
    }
    c.button.textContent = c.paused ? "Resume" : "Pause";
    c.button.className = "toggle " + (c.paused ? "resume" : "pause");
    success(c.s.rate, h);
    c.s.p95.value.textContent = ms(h.latency.p95_ms);
    var points = hist[range];
    // Over the window the figures cover: shorter than window_s once the breaker closed in
    // it (and at least a minute, so one call just after the close is not 60 a minute).
    var spanS = (Date.parse(generatedAt) - Date.parse(h.window_from)) / 1000;
    // Calls the partner received: those refused before reaching it (paused, breaker open)
    // are not calls to it, and the success figure beside this leaves them out too.
    var perMin = h.calls * 60 / Math.max(60, Math.min(h.window_s, spanS));
    c.s.cpm.value.textContent = perMin >= 10 ? Math.round(perMin) : perMin.toFixed(1);
    c.s.cpm.box.title = (h.window_restarted ? "Since the breaker closed at " + clock(h.window_from) + ". " : "") +
      (h.refused ? h.refused + " more refused before reaching the partner (paused or breaker open)" : "");
    c.s.ok.value.textContent = h.last_success_at ? ago(h.last_success_at) : "—";
    var span = range === "hour" ? "last hour" : "24 h";
    c.lat.title.textContent = "p95 latency · " + span;
    c.err.title.textContent = "error rate · " + span + (range === "day" ? ", 15-min bars" : "");
    c.err.svg.setAttribute("aria-label", c.err.title.textContent);
    drawLatency(c.lat, points, h.slo_p95_ms);
    drawErrors(c.err, points);
    timeAxis(c.lat, points);
    timeAxis(c.err, points);
    c.errors.textContent = "";
    if (!h.recent_errors.length) c.errors.appendChild(el("li", "none", "No recent errors"));
    h.recent_errors.slice(0, 5).forEach(function (e) {
      var li = el("li");
      var t = el("time", "", clock(e.at));
      li.appendChild(t);
      li.appendChild(document.createTextNode(e.outcome + (e.detail ? ": " + e.detail : "")));
      li.title = e.detail || e.outcome;
      c.errors.appendChild(li);
    });
  }

  function renderSummary(data) {
    // A paused partner is counted as paused, whatever its last health: no report uses it.
    var counts = { operational: 0, degraded: 0, down: 0, unknown: 0, paused: 0 };
    data.connectors.forEach(function (item) {
      counts[item.summary.paused ? "paused" : item.health.status] += 1;
    });
    var box = document.getElementById("summary");
    box.textContent = "";
    Object.keys(counts).forEach(function (k) {
      if (k === "paused" && !counts[k]) return;
      var chip = el("span", "chip" + (k === "paused" ? " paused" : ""), counts[k] + " " + k);
      chip.setAttribute("data-count", k);
      box.appendChild(chip);
    });
    (data.paused_disabled || []).forEach(function (held) {
      // Not enabled, so no card; its pause holds and applies again once it is enabled.
      var chip = el("span", "chip paused held", held.name + " paused while disabled (" +
        held.paused.reason + ")");
      chip.setAttribute("data-held", held.name);
      chip.title = "Paused by " + held.paused.paused_by + " at " + clock(held.paused.paused_at) +
        ": enabled again, it stays paused until resumed";
      box.appendChild(chip);
    });
    var windowS = data.connectors.length ? data.connectors[0].health.window_s : 300;
    var updated = el("span", "updated", "Rates over the last " + (windowS >= 120 ? Math.round(windowS / 60) + " min" : windowS + " s") +
      " · updated " + clock(data.generated_at) + " · every " + Math.round(refreshMs / 1000) + " s");
    updated.id = "updated";
    box.appendChild(updated);
  }

  // One fetch of the figures, drawn; `refresh` repeats it every refreshMs, and a pause or
  // resume draws at once what it changed (the badge, the count of paused partners).
  function load() {
    return fetch("/dashboard/data", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.assign("/dashboard"); throw new Error("signed out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (data) {
        last = data;
        data.connectors.forEach(render);
        renderSummary(data);
        grid.classList.remove("stale");
        banner.classList.remove("shown");
      })
      .catch(function (error) {
        if (error && error.message === "signed out") return;
        // The next poll tries again; meanwhile the page says its figures are not fresh:
        // the cards are greyed out and a banner says since when they are.
        var at = clock(new Date().toISOString());
        var said = "Could not refresh at " + at + (last ? " · showing " + clock(last.generated_at) : "") + " · trying again";
        var updated = document.getElementById("updated");
        if (updated) {
          updated.textContent = said;
          updated.className = "updated stale";
        }
        grid.classList.add("stale");
        banner.textContent = "The dashboard cannot reach hedui (" + at + "): " +
          (last ? "the cards show the figures of " + clock(last.generated_at) + ", not now" : "no figures yet") +
          ". Trying again every " + Math.round(refreshMs / 1000) + " s.";
        banner.classList.add("shown");
      });
  }

  function refresh() {
    load().finally(function () { window.setTimeout(refresh, refreshMs); });
  }

  function toggle(name, input, button, msg) {
    var c = cards[name];
    var reason = input.value.trim();
    // A pause says why (kept in the record); a resume may, as the API and the CLI allow.
    if (!reason && !c.paused) { msg.textContent = "Give a reason"; input.focus(); return; }
    msg.textContent = "";
    button.disabled = true;
    fetch("/dashboard/connectors/" + encodeURIComponent(name) + (c.paused ? "/resume" : "/pause"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(reason ? { reason: reason } : {})
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.detail || "failed");
        input.value = "";
        c.paused = !!body.paused;
        c.button.textContent = c.paused ? "Resume" : "Pause";
        c.button.className = "toggle " + (c.paused ? "resume" : "pause");
        load();
      });
    }).catch(function (e) { msg.textContent = e.message; })
      .finally(function () { button.disabled = false; });
  }

  document.querySelectorAll(".range button").forEach(function (b) {
    b.addEventListener("click", function () {
      range = b.getAttribute("data-range");
      document.querySelectorAll(".range button").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
      if (last) last.connectors.forEach(render);
    });
  });
  refresh();
})();
