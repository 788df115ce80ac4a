// The evidence app's page: finish the SMART launch (fhirclient), ask the service for the
// patient's summary (POST api/summary with the access token), and show it. One source of truth:
// the recommendation, outcomes, checklist, thresholds and bands all come from the service; this
// file only lays them out. All text goes in with textContent (never as HTML).
"use strict";

(function () {
  const Charts = window.EvidenceCharts;

  function byId(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function setStatus(text) {
    byId("app-status").textContent = text;
  }

  function showError(message, relaunch) {
    setStatus("The summary could not be shown.");
    const box = byId("app-error");
    box.replaceChildren(el("p", null, message));
    if (relaunch) {
      const p = el("p");
      const a = el("a", null, "Launch the app again");
      a.href = "launch.html";
      p.append(a);
      box.append(p);
    }
    box.hidden = false;
  }

  function describeError(status, body) {
    let text = "";
    if (body && body.resourceType === "OperationOutcome" && Array.isArray(body.issue) && body.issue[0]) {
      text = body.issue[0].diagnostics || body.issue[0].code || "";
    }
    return "The service answered HTTP " + status + (text ? ": " + text : ".");
  }

  function refList(refs) {
    const list = el("ul", "ref-list");
    (refs || []).forEach(function (ref) {
      const item = el("li");
      item.append(el("code", null, ref));
      list.append(item);
    });
    return list;
  }

  function fillRows(tableId, rows) {
    const body = byId(tableId).querySelector("tbody");
    body.replaceChildren();
    rows.forEach(function (cells) {
      const tr = el("tr");
      cells.forEach(function (cell) {
        tr.append(el("td", null, cell === undefined ? "" : cell));
      });
      body.append(tr);
    });
  }

  function showEvidence(summary, trial, focusPanel) {
    const panel = byId("evidence-panel");
    panel.replaceChildren();
    const head = el("h3", null, trial.ingredient + " " + Charts.dose(trial) + ": " + trial.outcomeText);
    head.id = "evidence-heading";
    panel.append(head);
    panel.append(el("p", "note", trial.start + " to " + (trial.end || "now") + ", " + trial.weeks + " weeks. " + (trial.why || "")));
    const refs = trial.evidence || [];
    panel.append(el("p", "note", refs.length + " record" + (refs.length === 1 ? "" : "s") + " (orders, renewals, statements):"));
    panel.append(refList(refs));
    panel.setAttribute("data-trial", String(trial.index));
    document.querySelectorAll(".trial-bar").forEach(function (bar) {
      bar.classList.toggle("selected", bar.getAttribute("data-trial") === String(trial.index));
    });
    if (focusPanel) {
      panel.setAttribute("tabindex", "-1");
      panel.focus();
    }
  }

  function renderHeader(summary) {
    const patient = summary.patient || {};
    const parts = ["Patient " + patient.id];
    if (patient.age !== undefined) {
      parts.push(patient.age + " years");
    }
    if (patient.gender) {
      parts.push(patient.gender);
    }
    byId("patient-line").textContent = parts.join(" · ");
    setStatus("Assessed on " + summary.episode.end + " with rule set " + summary.ruleset_version + ".");
  }

  function renderVerdict(summary) {
    const assessment = summary.assessment || {};
    const labels = summary.labels || {};
    const recommendation = assessment.recommendation;
    const verdict = byId("recommendation");
    verdict.textContent = (labels.recommendations || {})[recommendation] || recommendation;
    verdict.setAttribute("data-value", recommendation);
    verdict.className = "recommendation rec-" + recommendation;
    const reasons = byId("reasons");
    reasons.replaceChildren();
    reasons.append(el("li", null, (assessment.failed_adequate_trials || 0) + " failed adequate antidepressant trial(s) in the current episode"));
    (assessment.candidate_reasons || []).forEach(function (reason) {
      const item = el("li", null, "Candidate reason: " + ((labels.reasons || {})[reason] || reason));
      item.setAttribute("data-reason", reason);
      reasons.append(item);
    });
  }

  function renderCards(summary) {
    const holder = byId("cards");
    holder.replaceChildren();
    const cards = summary.cards || [];
    if (!cards.length) {
      holder.append(el("p", "note", "No card: the service stays silent for this patient."));
      return;
    }
    cards.forEach(function (card) {
      const box = el("div", "cds-card indicator-" + card.indicator);
      box.setAttribute("data-indicator", card.indicator);
      const summaryLine = el("p", "card-summary");
      summaryLine.append(el("span", "badge", card.indicator));
      summaryLine.append(document.createTextNode(" " + card.summary));
      box.append(summaryLine);
      if (card.detail) {
        const details = el("details");
        details.append(el("summary", null, "Card detail"));
        // The card's Markdown, shown as plain text (bold markers dropped; never parsed as HTML).
        details.append(el("pre", "card-detail", card.detail.replace(/\*\*/g, "")));
        box.append(details);
      }
      holder.append(box);
    });
  }

  function renderChecklist(summary) {
    const labels = (summary.labels || {}).statuses || {};
    const list = byId("checklist");
    list.replaceChildren();
    (summary.checklist || []).forEach(function (item) {
      const li = el("li", "check status-" + item.status);
      li.setAttribute("data-id", item.id);
      li.setAttribute("data-status", item.status);
      const line = el("div", "check-line");
      line.append(el("span", "status-badge", labels[item.status] || item.status));
      line.append(el("span", "check-label", item.label));
      li.append(line);
      if (item.status === "found") {
        if (item.why) {
          li.append(el("p", "check-why", item.why));
        }
        const unnamed = (item.evidence || []).filter(function (ref) {
          return !(item.why || "").includes(ref);
        });
        if (unnamed.length) {
          li.append(refList(unnamed));
        }
      }
      (item.gaps || []).forEach(function (gap) {
        li.append(el("p", "check-gap", gap));
      });
      list.append(li);
    });
  }

  function renderGaps(summary) {
    const list = byId("gap-list");
    list.replaceChildren();
    const gaps = (summary.assessment || {}).data_gaps || [];
    if (!gaps.length) {
      list.append(el("li", "note", "None: every check had the data it needs."));
      list.setAttribute("data-count", "0");
      return;
    }
    gaps.forEach(function (gap) {
      const item = el("li", "gap", gap);
      list.append(item);
    });
    list.setAttribute("data-count", String(gaps.length));
  }

  function renderLegend(summary) {
    const outcomes = (summary.labels || {}).outcomes || {};
    const present = new Set(((summary.assessment || {}).trials || []).map(function (t) { return t.outcome; }));
    const legend = byId("outcome-legend");
    legend.replaceChildren();
    Object.keys(outcomes).filter(function (o) { return present.has(o); }).forEach(function (outcome) {
      const item = el("li");
      const swatch = el("span", "swatch outcome-" + outcome);
      swatch.setAttribute("aria-hidden", "true");
      item.append(swatch, document.createTextNode(outcomes[outcome]));
      legend.append(item);
    });
  }

  function renderCharts(summary) {
    const trials = (summary.assessment || {}).trials || [];
    const episode = summary.episode;
    byId("episode-line").textContent = "Current episode: " + episode.start + " to " + episode.end;
    Charts.timeline(byId("timeline-chart"), summary, function (trial, bar, focusPanel) {
      showEvidence(summary, trial, focusPanel);
    });
    const gapCount = (summary.treatment_gaps || []).length;
    const adequate = (summary.thresholds || {}).min_adequate_weeks;
    const shaded = "Shaded: the current episode, " + (episode.basis || "") + ".";
    byId("timeline-caption").textContent = trials.length
      ? trials.length + " course(s); colour and text give the outcome" +
        (gapCount ? ", dashed boxes the gaps between courses" : "") + ". Adequate: minimum daily dose for " +
        adequate + " weeks or more. " + shaded
      : shaded;
    byId("evidence-panel").hidden = !trials.length;
    renderLegend(summary);
    const outcomes = (summary.labels || {}).outcomes || {};
    fillRows("trials-table", trials.map(function (t) {
      return [t.ingredient, Charts.dose(t), t.start, t.end || "now", t.weeks, outcomes[t.outcome] || t.outcome, t.why, (t.evidence || []).join(", ")];
    }));

    const series = summary.series || {};
    const thresholds = summary.thresholds || {};
    Charts.phq9(byId("phq9-chart"), summary);
    const bands = (thresholds.phq9_bands || []).map(function (b) { return b.label + " " + b.from + "–" + b.to; });
    byId("phq9-caption").textContent = (series.phq9 || []).length + " total(s). Bands: " + bands.join(", ") +
      ". Red lines: item 9 (self-harm thoughts) above 0.";
    fillRows("phq9-table", (series.phq9 || []).map(function (p) { return [p.date, "PHQ-9 total", p.value, p.ref]; })
      .concat((series.phq9_item9 || []).map(function (p) { return [p.date, "item 9", p.value, p.ref]; })));

    Charts.bp(byId("bp-chart"), summary);
    byId("bp-caption").textContent = (series.bp || []).length + " reading(s), filled systolic, open diastolic; limits on the mean of the last " +
      thresholds.bp_readings_averaged + " within " + thresholds.bp_window_days + " days.";
    fillRows("bp-table", (series.bp || []).map(function (r) { return [r.date, r.systolic, r.diastolic, r.ref]; }));

    Charts.weight(byId("weight-chart"), summary);
    byId("weight-caption").textContent = (series.weight || []).length + " weight(s).";
    fillRows("weight-table", (series.weight || []).map(function (w) { return [w.date, w.kg, w.ref]; }));
  }

  function render(summary) {
    byId("layout").hidden = false;
    renderHeader(summary);
    renderVerdict(summary);
    renderCards(summary);
    renderChecklist(summary);
    renderGaps(summary);
    renderCharts(summary);
    document.body.setAttribute("data-ready", "true");
  }

  async function main() {
    let client;
    try {
      client = await FHIR.oauth2.ready();
    } catch (e) {
      showError(
        "The app was not launched from an EHR, or its launch has expired or failed (" + e.message + "). " +
        "If the EHR's token endpoint is on another origin than its FHIR server, the service's operator " +
        "must add that origin to KETAMINE_CDS_APP_CONNECT_SRC.",
        true
      );
      document.body.setAttribute("data-ready", "error");
      return;
    }
    const patientId = client.patient.id;
    if (!patientId) {
      showError("The EHR did not say which patient to show (no patient in the launch context).", true);
      document.body.setAttribute("data-ready", "error");
      return;
    }
    const token = client.state.tokenResponse && client.state.tokenResponse.access_token;
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    setStatus("Reading the record and assessing…");
    let response;
    let body = null;
    try {
      response = await fetch("api/summary", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ fhirServer: client.state.serverUrl, patientId: patientId }),
        cache: "no-store",
        credentials: "same-origin",
      });
      body = await response.json();
    } catch (e) {
      showError("The service could not be reached (" + e.message + ").", false);
      document.body.setAttribute("data-ready", "error");
      return;
    }
    if (!response.ok) {
      showError(describeError(response.status, body), response.status === 401);
      document.body.setAttribute("data-ready", "error");
      return;
    }
    render(body);
  }

  main();
})();
