// Training page: the run form (generated from the run-config schema on the server) —
// fields shown only where they apply, a live memory/time estimate, and the start.
"use strict";

const form = document.getElementById("run-form");
const estimateBox = document.getElementById("estimate");

function valueOf(name) {
  const input = form.elements.namedItem(name);
  if (input && input.type === "checkbox") return input.checked ? "on" : "off";
  return input ? input.value : undefined;
}

// Hide (and leave out of the request) every field whose applies_when does not hold.
function applyConditions() {
  form.querySelectorAll("[data-applies-when]").forEach((field) => {
    const rules = JSON.parse(field.dataset.appliesWhen);
    const applies = Object.entries(rules).every(([name, values]) => values.includes(valueOf(name)));
    field.hidden = !applies;
    field.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !applies; });
  });
}

// A JSON field's value; a clear error naming the field when it does not parse.
function parseJson(input) {
  try {
    return JSON.parse(input.value);
  } catch (err) {
    throw new Error(`${input.name} is not valid JSON: ${err.message}`);
  }
}

function setPath(target, path, value) {
  const keys = path.split(".");
  let node = target;
  keys.slice(0, -1).forEach((key) => { node = node[key] = node[key] || {}; });
  node[keys[keys.length - 1]] = value;
}

// The run config as JSON: typed by each input's data-type; empty optional fields omitted.
function runConfig() {
  const config = {};
  form.querySelectorAll("input[name], select[name], textarea[name]").forEach((input) => {
    if (input.disabled || input.dataset.skip) return;
    const type = input.dataset.type;
    let value;
    if (type === "bool") value = input.checked;
    else if (input.value.trim() === "") return;
    else if (type === "int") value = parseInt(input.value, 10);
    else if (type === "float") value = parseFloat(input.value);
    else if (type === "json") value = parseJson(input);
    else if (type === "list" && input.value.includes(",")) {
      value = input.value.split(",").map((v) => v.trim()).filter(Boolean);
    } else value = input.value.trim();
    setPath(config, input.name, value);
  });
  return config;
}

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const GiB = 2 ** 30;

async function estimate() {
  let config;
  try {
    config = runConfig();
  } catch (err) {
    estimateBox.replaceChildren(el("p", err.message, "error"));
    return;
  }
  if (!config.base_model || !config.dataset) return;
  try {
    const e = await api("/api/v1/training/estimate", { method: "POST", body: JSON.stringify(config) });
    const parts = [
      `Memory ≈ ${(e.memory_bytes / GiB).toFixed(1)} GiB of ${(e.memory_available_bytes / GiB).toFixed(1)} GiB usable`,
      `${e.steps} steps`,
      `≈ ${e.tokens.toLocaleString()} tokens`,
    ];
    if (e.seconds !== null) parts.push(`about ${duration(e.seconds)} (${e.basis})`);
    const line = el("p", parts.join(" · "), e.fits ? "" : "error");
    const warnings = el("ul", undefined, "error");
    e.warnings.forEach((w) => warnings.append(el("li", w)));
    estimateBox.replaceChildren(line, warnings);
  } catch (err) {
    estimateBox.replaceChildren(el("p", err.message, "error"));
  }
}

let timer;
function scheduleEstimate() {
  clearTimeout(timer);
  timer = setTimeout(estimate, 400);
}

form.addEventListener("change", () => { applyConditions(); scheduleEstimate(); });
form.addEventListener("input", scheduleEstimate);
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("run-error");
  error.textContent = "";
  try {
    const job = await api("/api/v1/training", { method: "POST", body: JSON.stringify(runConfig()) });
    location.href = `/training/${job.id}`;
  } catch (err) {
    error.textContent = err.message;
  }
});
applyConditions();
estimate();
