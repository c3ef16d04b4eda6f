// Search history page: filtered list (knowledge base, kind, text), details with every
// hit's scores, delete.
"use strict";

const PAGE = 50;
let shown = PAGE;
const form = document.getElementById("history-filters");

function showDetail(entry) {
  document.getElementById("history-detail").hidden = false;
  document.getElementById("history-detail-heading").textContent =
    `${entry.kind === "ask" ? "Question" : "Search"} in ${entry.kb_name}`;
  document.getElementById("history-detail-query").textContent = entry.query;
  const answer = document.getElementById("history-detail-answer");
  answer.replaceChildren();
  if (entry.answer !== null) {
    answer.append(el("h3", `Answer${entry.model ? ` (${entry.model})` : ""}`), el("blockquote", entry.answer));
  }
  const hits = document.getElementById("history-detail-hits");
  hits.replaceChildren(...entry.hits.map((hit) => {
    const item = el("li");
    item.append(el("strong", `${hit.document}, ${pagesOf(hit)}`), el("div", scoresOf(hit), "muted"));
    return item;
  }));
  document.getElementById("history-detail").scrollIntoView({ block: "nearest" });
}

async function remove(entry) {
  try {
    await api(`/api/v1/history/${entry.id}`, { method: "DELETE" });
    toast("Entry deleted.");
    document.getElementById("history-detail").hidden = true;
    load();
  } catch (err) {
    toast(err.message);
  }
}

function row(entry) {
  const tr = el("tr");
  tr.dataset.entry = entry.id;
  tr.append(
    el("td", new Date(entry.created_at).toLocaleString()),
    el("td", entry.kind),
    el("td", entry.kb_name),
    el("td", entry.query.length > 120 ? `${entry.query.slice(0, 119)}…` : entry.query),
    el("td", String(entry.hits.length)),
    el("td", `${Math.round(entry.latency_ms)} ms`),
  );
  const actions = el("td", undefined, "actions");
  const open = el("button", "Details", "secondary small");
  open.type = "button";
  open.setAttribute("aria-label", `Details of "${entry.query.slice(0, 40)}"`);
  open.addEventListener("click", () => showDetail(entry));
  const del = el("button", "Delete", "secondary small");
  del.type = "button";
  del.setAttribute("aria-label", `Delete "${entry.query.slice(0, 40)}"`);
  del.addEventListener("click", () => remove(entry));
  actions.append(open, del);
  tr.append(actions);
  return tr;
}

async function load() {
  const params = new URLSearchParams({ limit: String(shown + 1) });
  for (const name of ["kb", "kind", "q"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  try {
    const entries = await api(`/api/v1/history?${params}`);
    const visible = entries.slice(0, shown);
    document.querySelector("#history-table tbody").replaceChildren(...visible.map(row));
    document.getElementById("history-empty").hidden = visible.length > 0;
    document.getElementById("history-more").hidden = entries.length <= shown;
  } catch (err) {
    toast(err.message);
  }
}

let timer;
form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { shown = PAGE; load(); }, 250); });
form.addEventListener("submit", (event) => event.preventDefault());
document.getElementById("history-more").addEventListener("click", () => { shown += PAGE; load(); });
load();
