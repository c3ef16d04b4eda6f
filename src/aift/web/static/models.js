// Models page: load, unload and pull through the JSON API; errors show in place, the
// tables are re-rendered by the server afterwards.
"use strict";

const status = document.getElementById("models-status");

async function refresh() {
  const response = await fetch("/partials/models", { credentials: "same-origin" });
  if (response.ok) document.getElementById("models").outerHTML = await response.text();
}

async function run(action, busyText) {
  status.textContent = "";
  toast(busyText);
  try {
    await action();
    await refresh();
  } catch (error) {
    status.textContent = error.message;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.classList.contains("load-form")) {
    event.preventDefault();
    const name = form.dataset.name;
    const body = { keep_alive: form.keep_alive.value.trim() || "5m" };
    if (form.engine.value) body.engine = form.engine.value;
    run(async () => {
      const loaded = await api(`/api/v1/models/${encodeURIComponent(name)}/load`, {
        method: "POST", body: JSON.stringify(body),
      });
      toast(`${loaded.name} loaded with ${loaded.engine}`);
    }, `loading ${name}…`);
  } else if (form.id === "export-form") {
    event.preventDefault();
    startExport(form);
  } else if (form.id === "pull-form") {
    event.preventDefault();
    const model = form.model.value.trim();
    run(async () => {
      const job = await api("/api/v1/models/pull", { method: "POST", body: JSON.stringify({ model }) });
      toast(`pulling ${model}: job ${job.id.slice(0, 8)}`);
    }, `asking to pull ${model}…`);
  }
});

// "Share" on a model the user's work made: the sharing dialog, pointed at that model.
document.addEventListener("click", (event) => {
  const name = event.target.dataset && event.target.dataset.shareModel;
  if (!name) return;
  const path = name.split("/").map(encodeURIComponent).join("/");
  window.showSharing(`/api/v1/models/${path}/shares`, name)
    .then(() => document.getElementById("share-dialog").showModal())
    .catch((err) => toast(err.message));
});

document.addEventListener("click", (event) => {
  const name = event.target.dataset && event.target.dataset.unload;
  if (!name) return;
  run(() => api(`/api/v1/models/${encodeURIComponent(name)}/unload`, { method: "POST" }),
    `unloading ${name}…`);
});

// Export (GGUF) or quantize (AWQ) as a job; refusals show under the form.
const exportStatus = document.getElementById("export-status");
const exportFormat = document.getElementById("export-format");

function syncExportFields() {
  const gguf = exportFormat.value === "gguf";
  for (const id of ["export-quant", "export-ollama"]) document.getElementById(id).disabled = !gguf;
}
if (exportFormat) {
  exportFormat.addEventListener("change", syncExportFields);
  syncExportFields();
}

async function startExport(form) {
  exportStatus.className = "";
  exportStatus.textContent = "";
  const fields = form.elements;
  const body = { model: fields.model.value };
  const name = fields.namedItem("name").value.trim();  // form.name is the form's own name
  if (name) body.name = name;
  let url = "/api/v1/models/quantize";
  if (fields.format.value === "gguf") {
    url = "/api/v1/models/export";
    body.quant = fields.quant.value;
    const ollama = fields.ollama.value.trim();
    if (ollama) body.ollama = ollama;
  }
  try {
    const job = await api(url, { method: "POST", body: JSON.stringify(body) });
    exportStatus.innerHTML = "";
    exportStatus.append(`${job.title}: `);
    const link = document.createElement("a");
    link.href = "/jobs";
    link.textContent = `job ${job.id.slice(0, 8)}`;
    exportStatus.append(link, " — the result appears in the table when it is done.");
    toast(`${job.title} queued`);
  } catch (error) {
    exportStatus.className = "error";
    exportStatus.textContent = error.message;
  }
}
