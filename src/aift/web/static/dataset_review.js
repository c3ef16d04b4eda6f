// Reviewing a dataset written from documents: rows with their source passages; accept,
// reject or edit them one by one or in bulk. Only accepted rows train. While the job
// still writes, new rows appear every few seconds.
"use strict";

const review = document.getElementById("review");
const datasetId = review.dataset.dataset;
const rowsUrl = `/api/v1/datasets/${datasetId}/rows`;
const PAGE = 50;
let shown = 0;

function filterValue() {
  return document.getElementById("review-filter").value;
}

const NOTES = { queued: " — waiting to start…", writing: " — still writing…", stopped: " — writing stopped (see its job)" };

function writing() {
  return ["queued", "writing"].includes(review.dataset.status);
}

function showCounts(counts) {
  const text = `${counts.pending} pending, ${counts.accepted} accepted, ${counts.rejected} rejected` +
    (NOTES[review.dataset.status] || "");
  document.getElementById("review-state").textContent = text;
}

function editable(value, label, field) {
  const box = el("textarea", undefined, "review-text");
  box.value = value;
  box.rows = Math.min(6, Math.max(2, Math.ceil(value.length / 60)));
  box.dataset.field = field;
  box.setAttribute("aria-label", label);
  return box;
}

function sourceCell(row) {
  const cell = el("td");
  cell.append(el("div", `${row.document} p. ${row.page}`));
  if (row.section) cell.append(el("div", row.section, "muted small"));
  const details = el("details");
  details.append(el("summary", "passage"));
  const passage = el("p", row.passage, "passage");
  details.append(passage);
  cell.append(details);
  return cell;
}

function rowElement(row) {
  const tr = el("tr");
  tr.dataset.id = row.id;
  const pick = el("input");
  pick.type = "checkbox";
  pick.className = "review-pick";
  pick.setAttribute("aria-label", `Select row ${row.id}`);
  const pickCell = el("td");
  pickCell.append(pick);
  const answerCell = el("td");
  answerCell.append(editable(row.answer, `Answer of row ${row.id}`, "answer"));
  if (row.rejected_answer !== null) {
    answerCell.append(el("div", "rejected reply:", "muted small"));
    answerCell.append(editable(row.rejected_answer, `Rejected reply of row ${row.id}`, "rejected_answer"));
  }
  const questionCell = el("td");
  questionCell.append(editable(row.question, `Question of row ${row.id}`, "question"));
  const actions = el("td", undefined, "review-actions");
  for (const [label, status, cls] of [["Accept", "accepted", ""], ["Reject", "rejected", "secondary"]]) {
    const button = el("button", label, `small ${cls}`);
    button.type = "button";
    button.dataset.one = status;
    actions.append(button);
  }
  const save = el("button", "Save edit", "small secondary");
  save.type = "button";
  save.dataset.save = "1";
  actions.append(save);
  const status = el("td", row.status + (row.edited ? " (edited)" : ""), `status-${row.status}`);
  tr.append(pickCell, questionCell, answerCell, sourceCell(row), el("td", row.support.toFixed(2)), status, actions);
  return tr;
}

async function load(more = false) {
  if (!more) shown = 0;
  const params = new URLSearchParams({ offset: String(shown), limit: String(PAGE) });
  if (filterValue()) params.set("status", filterValue());
  const page = await api(`${rowsUrl}?${params}`);
  const body = document.getElementById("review-rows");
  if (!more) body.replaceChildren();
  for (const row of page.rows) body.append(rowElement(row));
  shown += page.rows.length;
  if (!body.children.length) {
    const empty = el("tr");
    const cell = el("td", "No rows here.", "muted");
    cell.colSpan = 7;
    empty.append(cell);
    body.append(empty);
  }
  document.getElementById("review-more").hidden = shown >= page.total;
  showCounts(page.counts);
}

async function setStatus(body) {
  try {
    const counts = await api(`${rowsUrl}/review`, { method: "POST", body: JSON.stringify(body) });
    showCounts(counts);
  } catch (error) {
    toast(error.message);
  }
  await load();
}

async function saveEdit(tr) {
  const edit = {};
  for (const box of tr.querySelectorAll("textarea")) edit[box.dataset.field] = box.value.trim();
  try {
    await api(`${rowsUrl}/${tr.dataset.id}`, { method: "PATCH", body: JSON.stringify(edit) });
    toast("Saved and accepted.");
  } catch (error) {
    toast(error.message);
  }
  await load();
}

review.addEventListener("click", async (event) => {
  const target = event.target;
  const tr = target.closest("tr");
  if (target.dataset.one && tr) await setStatus({ status: target.dataset.one, ids: [Number(tr.dataset.id)] });
  else if (target.dataset.save && tr) await saveEdit(tr);
  else if (target.dataset.bulk) {
    const ids = [...review.querySelectorAll(".review-pick:checked")].map((box) => Number(box.closest("tr").dataset.id));
    if (!ids.length) toast("Select rows first.");
    else await setStatus({ status: target.dataset.bulk, ids });
  } else if (target.dataset.all) await setStatus({ status: target.dataset.all, all_with_status: "pending" });
  else if (target.id === "review-more") await load(true);
});

document.getElementById("review-all").addEventListener("change", (event) => {
  for (const box of review.querySelectorAll(".review-pick")) box.checked = event.target.checked;
});
document.getElementById("review-filter").addEventListener("change", () => load());

// While the job writes, look for new rows (and the end of writing) every few seconds.
async function follow() {
  if (!writing()) return;
  const info = await api(`/api/v1/datasets/${datasetId}`).catch(() => null);
  if (info && info.dataset.stats.generated) review.dataset.status = info.dataset.stats.generated.status;
  if (!review.querySelector("textarea:focus")) await load();
  if (writing()) setTimeout(follow, 3000);
}

load().then(() => setTimeout(follow, 3000));
