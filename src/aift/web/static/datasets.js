// Datasets page: upload with the per-row report shown in place; delete.
"use strict";

async function refresh() {
  const response = await fetch("/partials/datasets", { credentials: "same-origin" });
  if (response.ok) document.getElementById("datasets").outerHTML = await response.text();
}

function showReport(report) {
  const box = document.getElementById("dataset-report");
  const ds = report.dataset;
  box.replaceChildren(el("p", `Added ${ds.name} (${ds.format}): ${ds.rows_train} train, ${ds.rows_val} validation, ${ds.rows_skipped} skipped.`, "ok"));
  const tokens = ds.stats && ds.stats.tokens;
  if (tokens) box.append(el("p", `Tokens per example: min ${tokens.min}, median ${tokens.p50}, p95 ${tokens.p95}, max ${tokens.max}.`));
  if (report.errors.length) {
    box.append(el("p", "Skipped rows:"));
    const list = el("ul", undefined, "row-errors");
    for (const error of report.errors.slice(0, 20)) list.append(el("li", `row ${error.row}: ${error.reason}`));
    box.append(list);
  }
  if (report.preview.length) {
    box.append(el("p", "The first example as the model sees it:"));
    const pre = el("pre", report.preview[0]);
    pre.tabIndex = 0;
    box.append(pre);
  }
}

function showError(body, fallback) {
  const box = document.getElementById("dataset-report");
  const error = body && body.error;
  box.replaceChildren(el("p", error ? error.message : fallback, "error"));
  box.firstChild.setAttribute("role", "alert");
  const details = error && Array.isArray(error.details) ? error.details : [];
  if (details.length) {
    const list = el("ul", undefined, "row-errors");
    for (const detail of details.slice(0, 20)) {
      list.append(el("li", typeof detail === "string" ? detail : JSON.stringify(detail)));
    }
    box.append(list);
  }
}

document.getElementById("dataset-upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  data.append("file", form.file.files[0]);
  if (form.val_file.files.length) data.append("val_file", form.val_file.files[0]);
  for (const field of ["name", "format", "val_ratio", "base_model"]) {
    if (form[field].value.trim()) data.append(field, form[field].value.trim());
  }
  if (form.skip_invalid.checked) data.append("skip_invalid", "true");
  const box = document.getElementById("dataset-report");
  box.replaceChildren(el("p", "checking every row…", "muted"));
  const response = await fetch("/api/v1/datasets", { method: "POST", body: data, credentials: "same-origin" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    showError(body, response.statusText);
    return;
  }
  showReport(body);
  form.reset();
  await refresh();
});

document.addEventListener("click", async (event) => {
  const id = event.target.dataset && event.target.dataset.deleteDataset;
  if (!id) return;
  try {
    await api(`/api/v1/datasets/${id}`, { method: "DELETE" });
  } catch (error) {
    toast(error.message);
  }
  await refresh();
});

// Writing a dataset from documents: the job starts, and its page (where the rows are
// reviewed as they arrive) opens.
const writeForm = document.getElementById("dataset-write");
if (writeForm) {
  writeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = {
      knowledge_base: form.knowledge_base.value,
      model: form.model.value || null,
      answers: form.answers.value,
      preference_pairs: form.preference_pairs.checked,
      phrasings: Number(form.phrasings.value),
      max_rows: Number(form.max_rows.value),
    };
    if (form.name.value.trim()) body.name = form.name.value.trim();
    const box = document.getElementById("dataset-write-report");
    box.replaceChildren(el("p", "starting…", "muted"));
    try {
      const started = await api("/api/v1/datasets/from-documents", { method: "POST", body: JSON.stringify(body) });
      location.assign(`/datasets/${started.dataset.id}`);
    } catch (error) {
      box.replaceChildren(el("p", error.message, "error"));
      box.firstChild.setAttribute("role", "alert");
    }
  });
}
