// Evaluations page: start a model evaluation, watch the runs, read a run's answers
// (misses first), compare selected runs (paired deltas, intervals, p-values).
"use strict";

const selected = [];
let timer = null;

function percent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

function bars(summary) {
  const box = document.getElementById("eval-bars");
  box.replaceChildren();
  for (const [name, value] of [["exact match", summary.exact_match], ["contains", summary.contains], ["F1", summary.f1]]) {
    const bar = el("div", undefined, "bar");
    const fill = el("span", undefined, "fill");
    fill.style.width = `${Math.round(value * 100)}%`;
    bar.append(el("span", `${name} ${percent(value)}`, "label"), fill);
    box.append(bar);
  }
}

async function showAnswers(job) {
  const result = await api(`/api/v1/evaluations/${job.id}`);
  const panel = document.getElementById("eval-detail");
  panel.hidden = false;
  document.getElementById("eval-detail-heading").textContent = `Answers of ${result.request.model}`;
  const s = result.summary;
  document.getElementById("eval-summary").textContent =
    `${s.examples} questions: exact match ${percent(s.exact_match)}, contains ${percent(s.contains)}, F1 ${s.f1.toFixed(3)} (${s.answers_per_second.toFixed(2)} answers/s)`;
  bars(s);
  document.getElementById("eval-judge").textContent = s.judge
    ? `LLM judge (${s.judge.model}): ${percent(s.judge.agreed)} of its clear verdicts say right, ${s.judge.unclear} unclear — a model's opinion, not a string match.`
    : "";
  const body = document.querySelector("#eval-answers tbody");
  const answers = [...result.answers].sort((a, b) => a.f1 - b.f1);
  body.replaceChildren(...answers.map((a) => {
    const tr = el("tr");
    tr.append(el("td", String(a.row)), el("td", a.question), el("td", a.expected), el("td", a.answer),
      el("td", a.exact_match ? "✓" : ""), el("td", a.f1.toFixed(2)),
      el("td", a.judged_correct === null || a.judged_correct === undefined ? "–" : (a.judged_correct ? "right" : "wrong")));
    return tr;
  }));
  panel.scrollIntoView({ block: "nearest" });
}

async function showHarness(job) {
  const result = await api(`/api/v1/evaluations/${job.id}`);
  const panel = document.getElementById("eval-harness");
  panel.hidden = false;
  document.getElementById("eval-harness-heading").textContent = `lm-eval results of ${result.request.model}`;
  const rows = [];
  for (const [task, figures] of Object.entries(result.results)) {
    for (const [metric, value] of Object.entries(figures)) {
      if (metric.includes("stderr") || metric === "sample_len") continue;
      const tr = el("tr");
      tr.append(el("td", task), el("td", metric), el("td", typeof value === "number" ? value.toFixed(4) : String(value)),
        el("td", String(result.samples[task] ?? "")));
      rows.push(tr);
    }
  }
  document.querySelector("#eval-harness-results tbody").replaceChildren(...rows);
  panel.scrollIntoView({ block: "nearest" });
}

function seconds(ms) {
  return ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`;
}

function yesNo(value) {
  return value === null || value === undefined ? "–" : (value ? "yes" : "no");
}

function showKbAnswers(result) {
  const panel = document.getElementById("kb-eval-result");
  panel.hidden = false;
  document.getElementById("kb-eval-result-heading").textContent =
    `Answers of ${result.knowledge_base} to ${result.questions} questions`;
  document.querySelector("#kb-eval-settings tbody").replaceChildren(...result.settings.map((s) => {
    const tr = el("tr");
    tr.append(el("td", s.setting), el("td", String(s.questions)), el("td", percent(s.contains)), el("td", percent(s.f1)),
      el("td", percent(s.first_citation_right)), el("td", percent(s.citation_recall)), el("td", percent(s.not_found_right)),
      el("td", seconds(s.first_token_ms_p50)), el("td", seconds(s.total_ms_p50)));
    return tr;
  }));
  document.querySelector("#kb-eval-rows tbody").replaceChildren(...result.rows.map((r) => {
    const tr = el("tr");
    tr.append(el("td", r.setting), el("td", r.question), el("td", r.answer), el("td", yesNo(r.contains)),
      el("td", yesNo(r.first_citation_right)), el("td", yesNo(r.supported)));
    return tr;
  }));
  panel.scrollIntoView({ block: "nearest" });
}

function row(job) {
  const tr = el("tr");
  tr.dataset.job = job.id;
  const pick = el("input");
  pick.type = "checkbox";
  pick.disabled = job.status !== "succeeded" || job.kind !== "evaluation.model";
  pick.checked = selected.includes(job.id);
  pick.setAttribute("aria-label", `Select ${job.title}`);
  pick.addEventListener("change", () => {
    const at = selected.indexOf(job.id);
    if (pick.checked && at < 0) selected.push(job.id);
    if (!pick.checked && at >= 0) selected.splice(at, 1);
    document.getElementById("eval-compare").disabled = selected.length < 2;
  });
  const choose = el("td");
  choose.append(pick);
  const config = job.config || {};
  const status = job.status === "running" ? `running ${Math.round(job.progress * 100)}%` : job.status;
  const kbJob = job.kind === "rag.evaluate_answers";
  const what = kbJob ? Object.keys(config.settings || {}).join(", ") : (config.model || "");
  const on = kbJob ? job.title.replace(/^evaluate answers of /, "")
    : (config.dataset ? config.dataset.slice(0, 8) : (config.tasks || []).join(", "));
  tr.append(choose, el("td", new Date(job.created_at).toLocaleString()), el("td", what),
    el("td", on),
    el("td", status, `status-${job.status}`),
    el("td", percent((job.metrics || {}).exact_match)), el("td", job.metrics && job.metrics.f1 !== undefined ? job.metrics.f1.toFixed(3) : "–"));
  const actions = el("td", undefined, "actions");
  if (job.status === "succeeded" && job.kind === "evaluation.model") {
    const open = el("button", "Answers", "secondary small");
    open.type = "button";
    open.setAttribute("aria-label", `Answers of ${job.title}`);
    open.addEventListener("click", () => showAnswers(job).catch((err) => toast(err.message)));
    actions.append(open);
  } else if (job.status === "succeeded" && kbJob) {
    const open = el("button", "Answers", "secondary small");
    open.type = "button";
    open.setAttribute("aria-label", `Answers of ${job.title}`);
    open.addEventListener("click", () => api(`/api/v1/evaluations/${job.id}`).then(showKbAnswers).catch((err) => toast(err.message)));
    actions.append(open);
  } else if (job.status === "succeeded") {
    const open = el("button", "Results", "secondary small");
    open.type = "button";
    open.setAttribute("aria-label", `Results of ${job.title}`);
    open.addEventListener("click", () => showHarness(job).catch((err) => toast(err.message)));
    actions.append(open);
  } else if (job.status === "failed") {
    actions.append(el("span", job.error || "", "error"));
  }
  tr.append(actions);
  return tr;
}

async function load() {
  const jobs = await api("/api/v1/evaluations");
  document.querySelector("#eval-table tbody").replaceChildren(...jobs.map(row));
  document.getElementById("eval-empty").hidden = jobs.length > 0;
  clearTimeout(timer);
  if (jobs.some((j) => ["queued", "running"].includes(j.status))) timer = setTimeout(load, 1500);
}

function metricsTable(pair) {
  const table = el("table");
  table.setAttribute("aria-label", `${pair.other_model} against ${pair.baseline_model}`);
  const head = el("tr");
  for (const name of ["metric", pair.baseline_model, pair.other_model, "delta", "95% interval", "p"]) {
    const th = el("th", name);
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const m of pair.metrics) {
    const tr = el("tr");
    const sign = (v) => `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}`;
    tr.append(el("td", m.metric), el("td", percent(m.baseline)), el("td", percent(m.other)),
      el("td", `${sign(m.delta)} pts`), el("td", `${sign(m.interval[0])} … ${sign(m.interval[1])}`),
      el("td", m.p_value.toPrecision(2)));
    body.append(tr);
  }
  table.append(thead, body);
  return table;
}

async function compare() {
  const query = selected.map((id) => `ids=${encodeURIComponent(id)}`).join("&");
  const result = await api(`/api/v1/evaluations/compare?${query}`);
  const box = document.getElementById("eval-comparison-body");
  box.replaceChildren();
  for (const pair of result.runs) {
    box.append(el("h3", `${pair.other_model} against ${pair.baseline_model} on ${pair.questions} questions`), metricsTable(pair));
    const list = el("ul", undefined, "differences");
    list.setAttribute("aria-label", "Questions that differ");
    for (const d of pair.differences.slice(0, 20)) {
      list.append(el("li", `row ${d.row}: ${d.question} — expected “${d.expected}”: “${d.baseline}” (${d.baseline_f1.toFixed(2)}) → “${d.other}” (${d.other_f1.toFixed(2)})`));
    }
    box.append(list);
  }
  document.getElementById("eval-comparison").hidden = false;
}

const form = document.getElementById("eval-form");
if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const error = document.getElementById("eval-error");
    error.textContent = "";
    try {
      await api("/api/v1/evaluations/model", {
        method: "POST",
        body: JSON.stringify({
          model: data.get("model"), dataset: data.get("dataset"), split: data.get("split"),
          limit: Number(data.get("limit")), max_tokens: Number(data.get("max_tokens")),
          judge: data.get("judge") || null,
        }),
      });
      toast("Evaluation started.");
      load();
    } catch (err) {
      error.textContent = err.message;
    }
  });
}
document.getElementById("eval-compare").addEventListener("click", () => compare().catch((err) => toast(err.message)));
load().catch((err) => toast(err.message));

const harness = document.getElementById("harness-form");
if (harness) {
  harness.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("harness-error");
    error.textContent = "";
    const tasks = harness.tasks.value.split(",").map((t) => t.trim()).filter(Boolean);
    try {
      await api("/api/v1/evaluations/harness", {
        method: "POST",
        body: JSON.stringify({
          model: harness.model.value, tasks, limit: Number(harness.limit.value),
          apply_chat_template: harness.chat.checked,
        }),
      });
      toast("lm-eval started.");
      load();
    } catch (err) {
      error.textContent = err.message;
    }
  });
}

const kbForm = document.getElementById("kb-eval-form");
if (kbForm) {
  kbForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("kb-eval-error");
    error.textContent = "";
    const body = new FormData();
    body.append("file", kbForm.file.files[0]);
    body.append("modes", [...kbForm.querySelectorAll("input[name=modes]:checked")].map((m) => m.value).join(","));
    if (kbForm.model.value) body.append("model", kbForm.model.value);
    body.append("background", kbForm.background.checked ? "true" : "false");
    const button = kbForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(`/api/v1/kb/${encodeURIComponent(kbForm.kb.value)}/evaluate-answers`, {
        method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const result = await response.json();
      if (!response.ok) throw new Error(result.error ? result.error.message : response.statusText);
      if (response.status === 202) {
        toast("A large question file: it runs as a job.");
        load();
      } else {
        showKbAnswers(result);
      }
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
}
