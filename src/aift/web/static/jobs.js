// Jobs page: the list from the REST API (filters by status and kind, paging), live
// progress over one WebSocket per active job, details with log, cancel/resume/delete.
"use strict";

const sockets = new Map();
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
const PAGE = 50;
let shown = PAGE;
let detailId = null;

function cell(text, cls) {
  return el("td", text, cls);
}

function button(label, onClick, cls, name) {
  const b = el("button", label, cls);
  b.type = "button";
  if (name) b.setAttribute("aria-label", name);
  b.addEventListener("click", onClick);
  return b;
}

function renderRow(job) {
  let row = document.querySelector(`tr[data-job-id="${job.id}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.jobId = job.id;
  }
  row.replaceChildren();
  const idCell = el("td");
  idCell.append(el("code", job.id.slice(0, 8), "id"), document.createTextNode(" "));
  if (job.kind === "training.run") {
    const link = el("a", job.title || "training run");
    link.href = `/training/${job.id}`;
    idCell.append(link);
  } else {
    idCell.append(document.createTextNode(job.title || ""));
  }
  row.append(idCell, cell(job.kind));
  row.append(cell(job.status, `status status-${job.status}`));
  const progressCell = el("td");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = job.progress;
  bar.setAttribute("aria-label", `Progress of job ${job.id.slice(0, 8)}`);
  progressCell.append(bar, document.createTextNode(` ${Math.round(job.progress * 100)}%`));
  row.append(progressCell);
  row.append(cell(job.error || job.message || ""));
  row.append(cell(new Date(job.created_at).toLocaleString()));
  const actions = el("td", undefined, "actions");
  const short = job.id.slice(0, 8);
  if (!TERMINAL.has(job.status)) {
    actions.append(button("Cancel", () => act(job.id, "cancel"), undefined, `Cancel job ${short}`));
  } else if (job.resumable && job.status !== "succeeded") {
    actions.append(button("Resume", () => act(job.id, "resume"), undefined, `Resume job ${short}`));
  }
  actions.append(button("Details", () => showDetail(job.id), "secondary", `Details of job ${short}`));
  if (TERMINAL.has(job.status)) {
    actions.append(button("Delete", () => remove(job.id), "secondary", `Delete job ${short}`));
  }
  row.append(actions);
  row.dataset.status = job.status;
  if (detailId === job.id) fillDetail(job);
  return row;
}

async function act(jobId, action) {
  try {
    const job = await api(`/api/v1/jobs/${jobId}/${action}`, { method: "POST" });
    renderRow(job);
    watch(job);
    toast(`${action} requested`);
  } catch (err) {
    toast(err.message);
  }
}

async function remove(jobId) {
  try {
    await api(`/api/v1/jobs/${jobId}`, { method: "DELETE" });
    document.querySelector(`tr[data-job-id="${jobId}"]`)?.remove();
    if (detailId === jobId) document.getElementById("detail-panel").hidden = true;
    toast(`Job ${jobId.slice(0, 8)} deleted.`);
  } catch (err) {
    toast(err.message);
  }
}

function fillDetail(job) {
  document.getElementById("detail-job").textContent = `${job.id.slice(0, 8)} · ${job.title}`;
  const facts = document.getElementById("detail-facts");
  facts.replaceChildren();
  const add = (key, value) => {
    if (value === null || value === undefined || value === "") return;
    facts.append(el("dt", key), el("dd", String(value)));
  };
  add("Status", job.status);
  add("Attempt", job.attempt);
  add("Created", new Date(job.created_at).toLocaleString());
  add("Started", job.started_at && new Date(job.started_at).toLocaleString());
  add("Finished", job.finished_at && new Date(job.finished_at).toLocaleString());
  add("Error", job.error);
  add("Worker", job.worker_host && `${job.worker_host} (pid ${job.worker_pid})`);
  document.getElementById("detail-config").textContent = JSON.stringify(job.config, null, 2);
  document.getElementById("detail-result-box").hidden = !job.result;
  document.getElementById("detail-result").textContent = JSON.stringify(job.result, null, 2);
}

async function showDetail(jobId) {
  try {
    const [job, log] = await Promise.all([
      api(`/api/v1/jobs/${jobId}`),
      api(`/api/v1/jobs/${jobId}/log?lines=200`),
    ]);
    detailId = jobId;
    fillDetail(job);
    document.getElementById("log-lines").textContent = log.lines.join("\n") || "(empty)";
    const panel = document.getElementById("detail-panel");
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  } catch (err) {
    toast(err.message);
  }
}

function watch(job) {
  if (TERMINAL.has(job.status) || sockets.has(job.id)) return;
  const socket = new WebSocket(wsUrl(`/ws/jobs/${job.id}`));
  sockets.set(job.id, socket);
  socket.onmessage = async (event) => {
    const data = JSON.parse(event.data);
    if (data.type !== "job") return;
    renderRow(await api(`/api/v1/jobs/${job.id}`));
  };
  socket.onclose = () => sockets.delete(job.id);
}

async function load() {
  const params = new URLSearchParams({ limit: String(shown) });
  const status = document.getElementById("status-filter").value;
  const kind = document.getElementById("kind-filter").value;
  if (status) params.set("status", status);
  if (kind) params.set("kind", kind);
  try {
    const list = await api(`/api/v1/jobs?${params}`);
    const tbody = document.querySelector("#jobs-table tbody");
    tbody.replaceChildren(...list.items.map(renderRow));
    document.getElementById("empty").hidden = list.items.length > 0;
    document.getElementById("more").hidden = list.total <= list.items.length;
    list.items.forEach(watch);
  } catch (err) {
    toast(err.message);
  }
}

document.getElementById("status-filter").addEventListener("change", () => { shown = PAGE; load(); });
document.getElementById("kind-filter").addEventListener("change", () => { shown = PAGE; load(); });
document.getElementById("more").addEventListener("click", () => { shown += PAGE; load(); });
document.getElementById("benchmark-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const job = await api("/api/v1/jobs", {
      method: "POST",
      body: JSON.stringify({
        kind: "system.benchmark",
        config: {
          steps: Number(form.get("steps")),
          seconds_per_step: Number(form.get("seconds_per_step")),
        },
      }),
    });
    toast(`job ${job.id.slice(0, 8)} queued`);
    await load();
  } catch (err) {
    toast(err.message);
  }
});
load();
setInterval(load, 5000);
