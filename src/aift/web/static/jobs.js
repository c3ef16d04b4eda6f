// Jobs page: list from the REST API, live progress over one WebSocket per active job.
"use strict";

const sockets = new Map();
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}

function renderRow(job) {
  let row = document.querySelector(`tr[data-job-id="${job.id}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.jobId = job.id;
  }
  row.replaceChildren();
  const idCell = document.createElement("td");
  const code = document.createElement("code");
  code.className = "id";
  code.textContent = job.id.slice(0, 8);
  idCell.append(code, document.createTextNode(" " + (job.title || "")));
  row.append(idCell, cell(job.kind));
  row.append(cell(job.status, `status status-${job.status}`));
  const progressCell = document.createElement("td");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = job.progress;
  progressCell.append(bar, document.createTextNode(` ${Math.round(job.progress * 100)}%`));
  row.append(progressCell);
  row.append(cell(job.error || job.message || ""));
  row.append(cell(new Date(job.created_at).toLocaleString()));
  const actions = document.createElement("td");
  if (!TERMINAL.has(job.status)) {
    actions.append(button("Cancel", () => act(job.id, "cancel")));
  } else if (job.resumable && job.status !== "succeeded") {
    actions.append(button("Resume", () => act(job.id, "resume")));
  }
  actions.append(button("Log", () => showLog(job.id), "secondary"));
  row.append(actions);
  row.dataset.status = job.status;
  return row;
}

function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
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

async function showLog(jobId) {
  const body = await api(`/api/v1/jobs/${jobId}/log?lines=200`);
  document.getElementById("log-panel").hidden = false;
  document.getElementById("log-job").textContent = jobId.slice(0, 8);
  document.getElementById("log-lines").textContent = body.lines.join("\n") || "(empty)";
}

function watch(job) {
  if (TERMINAL.has(job.status) || sockets.has(job.id)) return;
  const socket = new WebSocket(wsUrl(`/ws/jobs/${job.id}`));
  sockets.set(job.id, socket);
  socket.onmessage = async (event) => {
    const data = JSON.parse(event.data);
    if (data.type !== "job") return;
    const fresh = await api(`/api/v1/jobs/${job.id}`);
    renderRow(fresh);
  };
  socket.onclose = () => sockets.delete(job.id);
}

async function load() {
  const status = document.getElementById("status-filter").value;
  const query = status ? `?status=${status}` : "";
  const list = await api(`/api/v1/jobs${query}`);
  const tbody = document.querySelector("#jobs-table tbody");
  tbody.replaceChildren(...list.items.map(renderRow));
  document.getElementById("empty").hidden = list.items.length > 0;
  list.items.forEach(watch);
}

document.getElementById("status-filter").addEventListener("change", load);
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
