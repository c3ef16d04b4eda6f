// Arena page: start a battle (one question, two models on hidden sides), stream both
// answers at once, vote, see which model was which, and the standings.
"use strict";

const form = document.getElementById("arena-form");
const votes = document.querySelectorAll("#arena-votes button");
let battle = null;

async function streamSide(id, side) {
  const box = document.getElementById(`answer-${side}`);
  box.textContent = "";
  const response = await fetch(`/api/v1/arena/battles/${id}/answers/${side}`, {
    method: "POST",
    headers: { Accept: "text/event-stream" },
    credentials: "same-origin",
  });
  if (!response.ok) {
    const error = await response.json().catch(() => null);
    throw new Error(error && error.error ? error.error.message : response.statusText);
  }
  for await (const { event, data } of sseEvents(response)) {
    const payload = JSON.parse(data);
    if (event === "token") box.textContent += payload.text;
    else if (event === "done") box.textContent = payload.answer;
    else if (event === "error") throw new Error(payload.message);
  }
}

async function start(event) {
  event.preventDefault();
  const error = document.getElementById("arena-error");
  error.textContent = "";
  const picked = [form.model1.value, form.model2.value];
  const body = {
    prompt: form.prompt.value,
    max_tokens: Number(form.max_tokens.value),
    temperature: Number(form.temperature.value),
  };
  if (picked[0] || picked[1]) {
    if (!picked[0] || !picked[1]) {
      error.textContent = "Pick both models, or leave both random.";
      return;
    }
    body.models = picked;
  }
  const button = document.getElementById("arena-start");
  button.disabled = true;
  votes.forEach((b) => { b.disabled = true; });
  try {
    battle = await api("/api/v1/arena/battles", { method: "POST", body: JSON.stringify(body) });
    document.getElementById("arena-battle").hidden = false;
    document.getElementById("side-a-heading").textContent = "Model A";
    document.getElementById("side-b-heading").textContent = "Model B";
    document.getElementById("arena-verdict").textContent = "";
    await Promise.all([streamSide(battle.id, "a"), streamSide(battle.id, "b")]);
    votes.forEach((b) => { b.disabled = false; });
  } catch (exc) {
    error.textContent = exc.message;
  } finally {
    button.disabled = false;
  }
}

async function vote(verdict) {
  votes.forEach((b) => { b.disabled = true; });
  try {
    const done = await api(`/api/v1/arena/battles/${battle.id}/vote`, {
      method: "POST", body: JSON.stringify({ winner: verdict }),
    });
    document.getElementById("side-a-heading").textContent = `Model A: ${done.model_a}`;
    document.getElementById("side-b-heading").textContent = `Model B: ${done.model_b}`;
    const said = { a: `${done.model_a} won`, b: `${done.model_b} won`, tie: "a tie", both_bad: "both bad (a tie)" };
    document.getElementById("arena-verdict").textContent = `Vote kept: ${said[verdict]}.`;
    await standings();
  } catch (exc) {
    document.getElementById("arena-verdict").textContent = exc.message;
  }
}

async function standings() {
  const board = await api("/api/v1/arena/leaderboard");
  const rows = board.standings.map((s) => {
    const tr = el("tr");
    tr.append(el("td", s.model), el("td", s.rating.toFixed(0)), el("td", String(s.battles)),
      el("td", String(s.wins)), el("td", String(s.losses)), el("td", String(s.ties)),
      el("td", `${(s.win_rate * 100).toFixed(0)}%`));
    return tr;
  });
  document.querySelector("#arena-standings tbody").replaceChildren(...rows);
  document.getElementById("arena-no-votes").hidden = board.votes > 0;
}

if (form) form.addEventListener("submit", start);
votes.forEach((b) => b.addEventListener("click", () => vote(b.dataset.vote)));
standings().catch((exc) => toast(exc.message));
