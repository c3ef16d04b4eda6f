// A training run's page: live state over the job's WebSocket, loss / validation loss and
// learning-rate charts (uPlot) gaining points as the run logs them, log tail, actions.
"use strict";

const panel = document.getElementById("run");
const jobId = panel.dataset.jobId;
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
const data = { step: [], loss: [], eval: [], lr: [] };
let status = panel.dataset.status;
let lastStep = -1;
let socket = null;

function chart(target, series, format) {
  const width = Math.max(280, document.getElementById(target).clientWidth || 480);
  const y = { size: 70 };
  if (format) y.values = (u, values) => values.map(format);
  return new uPlot(
    {
      width, height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, y],
      series: [{ label: "step" }, ...series],
    },
    [[]].concat(series.map(() => [])),
    document.getElementById(target),
  );
}

const lossChart = chart("loss-chart", [
  { label: "loss", stroke: "#2563eb", width: 2, spanGaps: true },
  { label: "val loss", stroke: "#b45309", width: 2, spanGaps: true, points: { size: 6 } },
]);
const lrChart = chart(
  "lr-chart",
  [{ label: "lr", stroke: "#15803d", width: 2, spanGaps: true }],
  (v) => (v === 0 ? "0" : v.toExponential(1)),
);

// A preference or reward run's own figures (trl's names, from each point's `extra`).
const objectiveBox = document.getElementById("objective-chart");
const objectiveKeys = objectiveBox ? JSON.parse(objectiveBox.dataset.series) : [];
const COLOURS = ["#2563eb", "#b45309", "#15803d", "#7c3aed"];
const objectiveChart = objectiveBox
  ? chart("objective-chart", objectiveKeys.map((key, i) => (
    { label: key, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true })))
  : null;
objectiveKeys.forEach((key) => { data[key] = []; });

function addPoints(points) {
  points.forEach((p) => {
    const extra = p.extra || {};
    let at = data.step.indexOf(p.step);
    if (at < 0) {
      at = data.step.length;
      data.step.push(p.step);
      ["loss", "eval", "lr", ...objectiveKeys].forEach((key) => data[key].push(null));
    }
    // a resumed run logs its steps again: the newest values win
    if (p.loss !== null) data.loss[at] = p.loss;
    if (p.eval_loss !== null) data.eval[at] = p.eval_loss;
    if (p.learning_rate !== null) data.lr[at] = p.learning_rate;
    objectiveKeys.forEach((key) => { if (key in extra) data[key][at] = extra[key]; });
  });
  if (points.length) lastStep = Math.max(lastStep, ...points.map((p) => p.step));
  lossChart.setData([data.step, data.loss, data.eval]);
  lrChart.setData([data.step, data.lr]);
  if (objectiveChart) objectiveChart.setData([data.step, ...objectiveKeys.map((key) => data[key])]);
  const count = data.loss.filter((v) => v !== null).length;
  document.getElementById("points").textContent = String(count);
  lossChart.root.dataset.points = String(count);
}

async function loadCurve() {
  try {
    const curve = await api(`/api/v1/training/${jobId}/curve?after=${lastStep}`);
    addPoints(curve.points);
  } catch (err) {
    toast(err.message);
  }
}

async function loadLog() {
  try {
    const body = await api(`/api/v1/jobs/${jobId}/log?lines=40`);
    const log = document.getElementById("run-log");
    log.textContent = body.lines.join("\n") || "(empty)";
    log.scrollTop = log.scrollHeight;  // the newest lines in view
  } catch (err) {
    document.getElementById("run-log").textContent = err.message;
  }
}

function showState(event) {
  const previous = status;
  status = event.status;
  panel.dataset.status = status;
  const badge = document.getElementById("run-status");
  badge.textContent = status;
  badge.className = `status status-${status}`;
  document.getElementById("run-progress").value = event.progress;
  document.getElementById("run-message").textContent = event.error || event.message || "";
  const m = event.metrics || {};
  if (m.step !== undefined) document.getElementById("run-step").textContent = `${m.step} / ${m.max_steps}`;
  if (m.tokens_per_second !== undefined) {
    document.getElementById("run-speed").textContent = String(Math.round(m.tokens_per_second));
  }
  document.getElementById("run-eta").textContent =
    m.eta_seconds !== undefined && !TERMINAL.has(status) ? `${Math.round(m.eta_seconds)} s` : "–";
  const terminal = TERMINAL.has(status);
  document.getElementById("run-cancel").hidden = terminal;
  document.getElementById("run-resume").hidden = !terminal || status === "succeeded";
  if (status === "succeeded" && previous !== "succeeded") location.reload();  // shows the model
}

function watch() {
  if (socket || TERMINAL.has(status)) return;
  socket = new WebSocket(wsUrl(`/ws/jobs/${jobId}`));
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "error") { toast(event.message); return; }
    showState(event);
    loadCurve();
  };
  socket.onclose = () => { socket = null; loadCurve(); loadLog(); };
}

async function act(action) {
  try {
    const job = await api(`/api/v1/jobs/${jobId}/${action}`, { method: "POST" });
    showState(job);
    toast(action === "cancel" ? "Cancel requested: the run saves a checkpoint and stops." : "Resumed from the last checkpoint.");
    watch();
  } catch (err) {
    toast(err.message);
  }
}

document.getElementById("run-cancel").addEventListener("click", () => act("cancel"));
document.getElementById("run-resume").addEventListener("click", () => act("resume"));
const merge = document.getElementById("merge");
if (merge) {
  merge.addEventListener("click", async () => {
    try {
      const job = await api("/api/v1/training/merge", {
        method: "POST", body: JSON.stringify({ adapter: merge.dataset.adapter }),
      });
      toast(`Merging as job ${job.id.slice(0, 8)}; the merged model appears on the models page.`);
      merge.disabled = true;
    } catch (err) {
      toast(err.message);
    }
  });
}

loadCurve();
loadLog();
watch();
setInterval(() => { if (!TERMINAL.has(status)) loadLog(); }, 3000);
