// Knowledge base pages: create, upload (one request per file, with its own progress and
// result), retry with a password, delete, re-index, search with every score.
"use strict";

async function refreshDocuments(kb) {
  const response = await fetch(`/partials/kb/${kb}/documents`, { credentials: "same-origin" });
  if (!response.ok) return;
  const holder = document.getElementById("documents");
  holder.outerHTML = await response.text();
  if (window.htmx) htmx.process(document.getElementById("documents"));
}

function uploadOne(kb, file, item) {
  // XMLHttpRequest, for upload progress; resolves with the server's JSON (or its error).
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    const bar = el("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    item.append(bar);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) bar.value = event.loaded / event.total;
    };
    request.onload = () => {
      bar.remove();
      let body = null;
      try { body = JSON.parse(request.responseText); } catch (error) { body = null; }
      resolve({ ok: request.status < 400, body, status: request.status });
    };
    request.onerror = () => {
      bar.remove();
      resolve({ ok: false, body: null, status: 0 });
    };
    const form = new FormData();
    form.append("files", file, file.name);
    request.open("POST", `/api/v1/kb/${kb}/documents`);
    request.withCredentials = true;
    request.send(form);
  });
}

function describe(result) {
  if (!result.ok) {
    const message = result.body && result.body.error ? result.body.error.message : "the server could not be reached";
    return [`not uploaded: ${message}`, "error"];
  }
  const body = result.body;
  if (body.rejected.length) return [`rejected: ${body.rejected[0].reason}`, "error"];
  if (body.duplicates.length) return [`already in this knowledge base as ${body.duplicates[0].name}`, "muted"];
  return ["accepted — ingesting (see Documents)", "ok"];
}

const upload = document.getElementById("upload");
if (upload) {
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    input.files = event.dataTransfer.files;
  });
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const kb = upload.dataset.kb;
    const list = document.getElementById("upload-results");
    list.replaceChildren();
    for (const file of Array.from(input.files)) {
      const item = el("li");
      item.dataset.file = file.name;
      item.append(el("strong", file.name), document.createTextNode(" "));
      list.append(item);
      const [text, cls] = describe(await uploadOne(kb, file, item));
      item.append(el("span", text, cls));
      await refreshDocuments(kb);
    }
    input.value = "";
  });
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id === "kb-create") {
    event.preventDefault();
    const status = document.getElementById("kb-status");
    status.textContent = "";
    const body = {
      name: form.name.value.trim(),
      chunking: {
        chunk_tokens: Number(form.chunk_tokens.value),
        overlap_tokens: Number(form.overlap_tokens.value),
      },
    };
    if (form.embedding_model.value) body.embedding_model = form.embedding_model.value;
    try {
      const kb = await api("/api/v1/kb", { method: "POST", body: JSON.stringify(body) });
      location.href = `/kb/${kb.id}`;
    } catch (error) {
      status.textContent = error.message;
    }
  } else if (form.classList.contains("retry-form")) {
    event.preventDefault();
    await act(form.dataset.kb, () => api(`/api/v1/kb/${form.dataset.kb}/documents/${form.dataset.doc}/retry`, {
      method: "POST", body: JSON.stringify({ password: form.password.value }),
    }));
  } else if (form.id === "search") {
    event.preventDefault();
    await search(form);
  } else if (form.id === "evaluate") {
    event.preventDefault();
    await evaluate(form);
  }
});

// Retrieval evaluation: upload the question file, show the metrics and every question.
async function evaluate(form) {
  const status = document.getElementById("eval-status");
  const target = document.getElementById("eval-result");
  status.textContent = "";
  target.replaceChildren(el("p", "evaluating… (about a tenth of a second per question)", "muted"));
  const body = new FormData();
  body.append("file", form.file.files[0]);
  body.append("mode", form.mode.value);
  body.append("rerank", form.rerank.checked ? "true" : "false");
  try {
    const response = await fetch(`/api/v1/kb/${form.dataset.kb}/evaluate`, { method: "POST", body, credentials: "same-origin" });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error ? result.error.message : response.statusText);
    const summary = el("dl", undefined, "stats");
    for (const [name, value] of Object.entries(result.metrics)) {
      summary.append(el("dt", name), el("dd", value.toFixed(3)));
    }
    const table = el("table");
    table.id = "eval-table";
    const head = el("tr");
    ["Question", "Expected", "Rank", "Top hit"].forEach((h) => { const th = el("th", h); th.scope = "col"; head.append(th); });
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    for (const row of result.rows) {
      const tr = el("tr", undefined, row.rank === 1 ? "" : "miss");
      tr.append(el("td", row.question), el("td", row.expected),
        el("td", row.rank === null ? "not in top 10" : String(row.rank)),
        el("td", row.top_document ? `${row.top_document}, p. ${row.top_page}` : "–"));
      table.tBodies[0].append(tr);
    }
    const about = `${result.questions} questions · ${result.mode}${result.reranked ? " + re-rank" : ""} · ${result.seconds.toFixed(1)} s`;
    target.replaceChildren(el("p", about, "muted"), summary, table, ...result.notes.map((n) => el("p", n, "muted")));
  } catch (error) {
    target.replaceChildren();
    status.textContent = error.message;
  }
}

async function act(kb, call) {
  try {
    await call();
  } catch (error) {
    toast(error.message);
  }
  await refreshDocuments(kb);
}

document.addEventListener("click", async (event) => {
  const data = event.target.dataset || {};
  if (data.delete) {
    await act(data.kb, () => api(`/api/v1/kb/${data.kb}/documents/${data.delete}`, { method: "DELETE" }));
  } else if (data.retry) {
    await act(data.kb, () => api(`/api/v1/kb/${data.kb}/documents/${data.retry}/retry`, {
      method: "POST", body: JSON.stringify({}),
    }));
  } else if (event.target.id === "reindex") {
    try {
      const job = await api(`/api/v1/kb/${data.kb}/reindex`, { method: "POST", body: JSON.stringify({}) });
      toast(`re-index started: job ${job.id.slice(0, 8)}`);
    } catch (error) {
      toast(error.message);
    }
  }
});

async function search(form) {
  const status = document.getElementById("search-status");
  const hits = document.getElementById("hits");
  status.textContent = "";
  hits.replaceChildren(el("p", "searching…", "muted"));
  try {
    const result = await api(`/api/v1/kb/${form.dataset.kb}/search`, {
      method: "POST",
      body: JSON.stringify({ query: form.query.value, mode: form.mode.value }),
    });
    hits.replaceChildren();
    for (const note of result.notes) hits.append(el("p", note, "muted"));
    if (result.rerank_skipped) hits.append(el("p", `Not re-ranked: ${result.rerank_skipped}`, "muted"));
    if (!result.hits.length) hits.append(el("p", "Nothing found.", "muted"));
    const list = el("ol", undefined, "hits");
    for (const hit of result.hits) {
      const item = el("li");
      item.append(el("strong", `${hit.document}, ${pagesOf(hit)}`));
      item.append(el("div", scoresOf(hit), "muted"));
      item.append(el("p", hit.text.slice(0, 400)));
      const open = el("button", "Show on the page", "secondary small");
      open.type = "button";
      open.addEventListener("click", () => sourceViewer.open(form.dataset.kb, hit));
      item.append(open);
      list.append(item);
    }
    hits.append(list, el("p", `${Math.round(result.latency_ms)} ms`, "muted"));
  } catch (error) {
    hits.replaceChildren();
    status.textContent = error.message;
  }
}
