// The charts of the evidence app, drawn as SVG with Observable Plot (on d3). They draw what the
// service sent: trials, outcomes, thresholds, bands and windows all come from /app/api/summary;
// nothing here decides anything clinical. Colours are CSS custom properties (css/app.css).
"use strict";

window.EvidenceCharts = (function () {
  const formatDay = d3.utcFormat("%Y-%m-%d");

  function day(text) {
    return new Date(text + "T00:00:00Z");
  }

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function outcomeColour(outcome) {
    return cssVar("--outcome-" + outcome, "#777777");
  }

  // Plot appends a <style> element to each chart; inline styles are not allowed by the app's
  // Content-Security-Policy, so it is removed before the chart enters the page (css/app.css has
  // the same rules for .kc-plot).
  function place(container, svg, label, describedBy) {
    svg.querySelectorAll("style").forEach(function (node) {
      node.remove();
    });
    // Plot labels its groups ("bar", "x-axis tick"...); a plain <g> may not carry aria-label.
    svg.querySelectorAll("g[aria-label]").forEach(function (node) {
      node.removeAttribute("aria-label");
    });
    svg.setAttribute("aria-label", label);
    if (describedBy) {
      svg.setAttribute("aria-describedby", describedBy);
    }
    container.replaceChildren(svg);
    return svg;
  }

  function width(container, fallback) {
    return Math.max(Math.floor(container.getBoundingClientRect().width) || fallback, 160);
  }

  function note(container, text) {
    const p = document.createElement("p");
    p.className = "empty-note";
    p.textContent = text;
    container.replaceChildren(p);
  }

  function dose(trial) {
    return trial.max_daily_dose_mg !== undefined ? trial.max_daily_dose_mg + " mg/day" : "dose unknown";
  }

  function courses(summary) {
    const labels = summary.labels || {};
    const outcomes = labels.outcomes || {};
    return ((summary.assessment || {}).trials || []).map(function (trial, index) {
      return Object.assign({}, trial, {
        index: index,
        row: index + 1 + ". " + trial.ingredient + " " + dose(trial),
        from: day(trial.start),
        to: day(trial.end || summary.episode.end),
        outcomeText: outcomes[trial.outcome] || trial.outcome,
      });
    });
  }

  function domain(summary) {
    return [day(summary.window.start), day(summary.window.end)];
  }

  function episodeMarks(summary) {
    const episode = [{ from: day(summary.episode.start), to: day(summary.episode.end) }];
    return [
      Plot.rect(episode, { x1: "from", x2: "to", fill: cssVar("--episode-fill", "#eef3fb") }),
      Plot.ruleX(episode, { x: "from", stroke: cssVar("--episode-edge", "#5b7db1"), strokeDasharray: "4,3" }),
    ];
  }

  function timeline(container, summary, onSelect) {
    const trials = courses(summary);
    if (!trials.length) {
      note(container, "No antidepressant course in the record for this period.");
      return null;
    }
    const gaps = (summary.treatment_gaps || []).map(function (gap) {
      return Object.assign({}, gap, { row: "gaps between courses", from: day(gap.start), to: day(gap.end) });
    });
    const rows = trials.map(function (t) {
      return t.row;
    });
    if (gaps.length) {
      rows.push("gaps between courses");
    }
    const longest = d3.max(rows, function (r) {
      return r.length;
    });
    const today = [{ at: day(summary.episode.end) }];

    function interactive(index, scales, values, dimensions, context, next) {
      const g = next(index, scales, values, dimensions, context);
      g.querySelectorAll("rect").forEach(function (rect, j) {
        const trial = trials[index[j]];
        const label =
          trial.ingredient + ", " + dose(trial) + ", " + trial.weeks + " weeks, " + trial.start +
          " to " + (trial.end || "now") + ": " + trial.outcomeText + ". " + (trial.why || "") +
          " Show the evidence.";
        rect.setAttribute("tabindex", "0");
        rect.setAttribute("role", "button");
        rect.setAttribute("aria-label", label);
        rect.setAttribute("data-trial", String(trial.index));
        rect.setAttribute("data-ingredient", trial.ingredient);
        rect.setAttribute("data-outcome", trial.outcome);
        rect.classList.add("trial-bar");
        rect.addEventListener("click", function () {
          onSelect(trial, rect);
        });
        rect.addEventListener("mouseenter", function () {
          onSelect(trial, rect);
        });
        rect.addEventListener("focus", function () {
          onSelect(trial, rect);
        });
        rect.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            onSelect(trial, rect, true);
          }
        });
      });
      return g;
    }

    const svg = Plot.plot({
      className: "kc-plot",
      width: width(container, 800),
      height: 38 + 24 * rows.length,
      marginLeft: Math.min(8 + 6.4 * longest, 230),
      marginRight: 190,
      marginTop: 18,
      x: { type: "utc", domain: domain(summary), label: null },
      y: { domain: rows, label: null, padding: 0.25 },
      marks: episodeMarks(summary).concat([
        Plot.text(
          [{ at: day(summary.episode.start) }],
          { x: "at", frameAnchor: "top", textAnchor: "start", dx: 4, dy: -12, text: function () { return "current episode"; }, fill: cssVar("--episode-edge", "#5b7db1") }
        ),
        Plot.barX(gaps, {
          x1: "from", x2: "to", y: "row", fill: "white", stroke: cssVar("--gap-edge", "#555"),
          strokeDasharray: "3,2",
        }),
        Plot.text(gaps, {
          x: "to", y: "row", dx: 3, textAnchor: "start",
          text: function (g) { return g.weeks + " wk"; },
        }),
        Plot.barX(trials, {
          x1: "from", x2: "to", y: "row",
          fill: function (t) { return outcomeColour(t.outcome); },
          stroke: "#222", strokeWidth: 0.5,
          render: interactive,
        }),
        Plot.text(trials, {
          x: "to", y: "row", dx: 5, textAnchor: "start",
          text: function (t) { return t.outcomeText + " · " + t.weeks + " wk"; },
        }),
        Plot.ruleX(today, { x: "at", stroke: "#333", strokeDasharray: "2,2" }),
        Plot.text(today, { x: "at", frameAnchor: "top", dy: -12, text: function () { return "today"; } }),
      ]),
    });
    svg.setAttribute("role", "group");
    return place(container, svg, "Antidepressant trials over time, one bar per course", "timeline-caption");
  }

  function phq9(container, summary) {
    const series = summary.series || {};
    const totals = (series.phq9 || []).map(function (p) { return Object.assign({}, p, { at: day(p.date) }); });
    const item9 = (series.phq9_item9 || []).map(function (p) { return Object.assign({}, p, { at: day(p.date) }); });
    if (!totals.length && !item9.length) {
      note(container, "No PHQ-9 recorded in this period.");
      return null;
    }
    const thresholds = summary.thresholds || {};
    const bands = thresholds.phq9_bands || [];
    const positive = item9.filter(function (p) { return p.positive; });
    const other = item9.filter(function (p) { return !p.positive; });
    const bandFill = function (b) {
      return b.label === "severe" ? cssVar("--band-severe", "#f7dede") : cssVar("--band-other", "#f4f6f8");
    };
    const svg = Plot.plot({
      className: "kc-plot",
      width: width(container, 420),
      height: 160,
      marginLeft: 34,
      marginRight: 12,
      marginTop: 16,
      x: { type: "utc", domain: domain(summary), label: null, ticks: 5 },
      y: { domain: thresholds.phq9_range || [0, 27], label: "PHQ-9", ticks: 4 },
      marks: [
        Plot.rect(bands, { y1: "from", y2: "to", fill: bandFill }),
        Plot.text(bands, {
          y: function (b) { return (b.from + b.to) / 2; }, frameAnchor: "left", textAnchor: "start", dx: 4,
          text: "label", fill: cssVar("--muted-text", "#444"),
        }),
      ].concat(episodeMarks(summary).slice(1), [
        Plot.ruleY(thresholds.phq9_severe !== undefined ? [thresholds.phq9_severe] : [], {
          stroke: cssVar("--limit", "#9b1c1c"), strokeDasharray: "4,3",
        }),
        Plot.ruleX(positive, { x: "at", stroke: cssVar("--alert", "#b00020"), strokeWidth: 1.5 }),
        Plot.text(positive, {
          x: "at", frameAnchor: "top", textAnchor: "end", dx: -3, dy: -10, fill: cssVar("--alert", "#b00020"),
          text: function (p) { return "item 9 = " + p.value; },
        }),
        Plot.dot(other, {
          x: "at", y: function () { return 0.6; }, symbol: "diamond", r: 3, fill: "#666",
          title: function (p) { return "item 9 = " + p.value + " on " + p.date + " (" + p.ref + ")"; },
        }),
        Plot.line(totals, { x: "at", y: "value", stroke: cssVar("--series", "#1f3b73") }),
        Plot.dot(totals, {
          x: "at", y: "value", fill: cssVar("--series", "#1f3b73"), r: 3.5,
          title: function (p) { return "PHQ-9 " + p.value + " on " + p.date + " (" + p.ref + ")"; },
        }),
        Plot.text(totals, { x: "at", y: "value", dy: -9, text: "value" }),
      ]),
    });
    svg.setAttribute("role", "img");
    return place(container, svg, "PHQ-9 totals over time with severity bands and item 9 answers", "phq9-caption");
  }

  function bp(container, summary) {
    const readings = ((summary.series || {}).bp || []).map(function (r) { return Object.assign({}, r, { at: day(r.date) }); });
    if (!readings.length) {
      note(container, "No blood pressure recorded in this period.");
      return null;
    }
    const thresholds = summary.thresholds || {};
    const limits = [];
    if (thresholds.bp_systolic !== undefined) {
      limits.push({ value: thresholds.bp_systolic, text: thresholds.bp_systolic + " systolic limit" });
    }
    if (thresholds.bp_diastolic !== undefined) {
      limits.push({ value: thresholds.bp_diastolic, text: thresholds.bp_diastolic + " diastolic limit" });
    }
    const end = day(summary.episode.end);
    const screened = thresholds.bp_window_days !== undefined
      ? [{ from: d3.utcDay.offset(end, -thresholds.bp_window_days), to: end }]
      : [];
    const values = readings.flatMap(function (r) { return [r.systolic, r.diastolic]; })
      .concat(limits.map(function (l) { return l.value; }))
      .filter(function (v) { return v !== undefined; });
    const systolic = readings.filter(function (r) { return r.systolic !== undefined; });
    const diastolic = readings.filter(function (r) { return r.diastolic !== undefined; });
    const svg = Plot.plot({
      className: "kc-plot",
      width: width(container, 420),
      height: 160,
      marginLeft: 38,
      marginRight: 12,
      marginTop: 16,
      x: { type: "utc", domain: domain(summary), label: null, ticks: 5 },
      y: { domain: [Math.min(d3.min(values) - 10, 60), d3.max(values) + 10], label: "mmHg", ticks: 4 },
      marks: [
        Plot.rect(screened, { x1: "from", x2: "to", fill: cssVar("--window-fill", "#eef6ee") }),
        Plot.text(screened, {
          x: "to", frameAnchor: "top", textAnchor: "end", dx: -2, dy: -10,
          text: function () { return "last " + thresholds.bp_window_days + " days (screened)"; },
        }),
        Plot.ruleY(limits, { y: "value", stroke: cssVar("--limit", "#9b1c1c"), strokeDasharray: "4,3" }),
        Plot.text(limits, {
          y: "value", frameAnchor: "left", textAnchor: "start", dx: 4, dy: -6, text: "text",
          fill: cssVar("--limit", "#9b1c1c"),
        }),
        Plot.ruleX(readings.filter(function (r) { return r.systolic !== undefined && r.diastolic !== undefined; }), {
          x: "at", y1: "diastolic", y2: "systolic", stroke: "#999",
        }),
        Plot.line(systolic, { x: "at", y: "systolic", stroke: cssVar("--series", "#1f3b73") }),
        Plot.dot(systolic, {
          x: "at", y: "systolic", fill: cssVar("--series", "#1f3b73"), r: 3.5,
          title: function (r) { return "systolic " + r.systolic + " on " + r.date + " (" + r.ref + ")"; },
        }),
        Plot.line(diastolic, { x: "at", y: "diastolic", stroke: cssVar("--series", "#1f3b73"), strokeDasharray: "3,2" }),
        Plot.dot(diastolic, {
          x: "at", y: "diastolic", stroke: cssVar("--series", "#1f3b73"), fill: "white", r: 3.5,
          title: function (r) { return "diastolic " + r.diastolic + " on " + r.date + " (" + r.ref + ")"; },
        }),
      ],
    });
    svg.setAttribute("role", "img");
    return place(container, svg, "Blood pressure over time with the limits the screen uses", "bp-caption");
  }

  function weight(container, summary) {
    const weights = ((summary.series || {}).weight || []).map(function (w) { return Object.assign({}, w, { at: day(w.date) }); });
    if (!weights.length) {
      note(container, "No body weight recorded in this period.");
      return null;
    }
    const svg = Plot.plot({
      className: "kc-plot",
      width: width(container, 200),
      height: 160,
      marginLeft: 32,
      marginRight: 12,
      marginTop: 16,
      x: { type: "utc", domain: domain(summary), label: null, ticks: 3 },
      y: { label: "kg", ticks: 4, nice: true, zero: false },
      marks: [
        Plot.line(weights, { x: "at", y: "kg", stroke: cssVar("--series", "#1f3b73") }),
        Plot.dot(weights, {
          x: "at", y: "kg", fill: cssVar("--series", "#1f3b73"), r: 3,
          title: function (w) { return w.kg + " kg on " + w.date + " (" + w.ref + ")"; },
        }),
        Plot.text(weights.slice(-1), { x: "at", y: "kg", dy: -9, textAnchor: "end", text: function (w) { return w.kg + " kg"; } }),
      ],
    });
    svg.setAttribute("role", "img");
    return place(container, svg, "Body weight over time", "weight-caption");
  }

  return { timeline: timeline, phq9: phq9, bp: bp, weight: weight, dose: dose, formatDay: formatDay };
})();
