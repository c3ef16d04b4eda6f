// Chat page: conversations kept on the server (/api/v1/conversations), answers streamed
// from a served model (OpenAI chat API) or cited from a knowledge base (the ask API's
// events: sources, token…, done); Stop aborts; copy and regenerate; citation chips open
// the cited page (sourceViewer in app.js).
"use strict";

const list = document.getElementById("messages");
const status = document.getElementById("chat-status");
const settings = document.getElementById("chat-settings");
const input = document.getElementById("chat-input");
const heading = document.getElementById("conversation-heading");
let conversation = null;  // {id, title, …} once the first message is kept
let turns = [];           // [{role, content, model, citations}]
let controller = null;

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    credentials: "same-origin",
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  if (!response.ok) {
    const error = await response.json().catch(() => null);
    throw new Error(error && error.error ? (error.error.message || error.error) : response.statusText);
  }
  return response;
}

// -- rendering ----------------------------------------------------------------------
function chatSettings() {
  return {
    temperature: Number(settings.temperature.value),
    max_tokens: Number(settings.max_tokens.value),
    system: settings.system.value.trim() || null,
    sources: Number(settings.sources.value),
    mode: settings.mode.value,
    rerank: settings.rerank.checked,
    answer: settings.answer.value,
    unsupported: settings.unsupported.value,
  };
}

function bubble(turn) {
  const item = el("li", undefined, `message ${turn.role}`);
  item.append(el("strong", turn.role === "user" ? "You" : (turn.model || settings.model.value)));
  item.append(el("div", turn.content, "body"));
  list.append(item);
  return item;
}

// The answer's text with each valid [n] as a chip that opens that source.
function withChips(body, text, citations, kb) {
  const byNumber = new Map(citations.map((c) => [c.number, c]));
  body.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const source = byNumber.get(Number(match[1]));
    if (!source) continue;
    body.append(document.createTextNode(text.slice(last, match.index)));
    const chip = el("button", `[${source.number}]`, "chip");
    chip.type = "button";
    const page = source.support ? source.support.page : source.page_start;
    chip.setAttribute("aria-label", `Source ${source.number}: ${source.document}, page ${page}`);
    chip.addEventListener("click", () => sourceViewer.open(kb, source));
    body.append(chip);
    last = match.index + match[0].length;
  }
  body.append(document.createTextNode(text.slice(last)));
}

function showSources(item, turn) {
  if (turn.unsupported) {
    const flag = el("p", "Unsupported: the sources back none of this answer — it comes from the model's own knowledge.", "unsupported");
    flag.setAttribute("role", "status");
    item.querySelector(".body").after(flag);
  }
  const cited = turn.citations || [];
  const kb = turn.kb || settings.kb.value;
  if (!cited.length) return;
  withChips(item.querySelector(".body"), turn.content, cited.filter((c) => c.cited !== false), kb);
  const sources = el("ul", undefined, "sources");
  sources.setAttribute("aria-label", "Sources");
  for (const source of cited) {
    const where = source.support ? `page ${source.support.page}` : pagesOf(source);
    const open = el("button", `[${source.number}] ${source.document}, ${where}${source.cited === false ? " (not cited)" : ""}`, "link");
    open.type = "button";
    open.addEventListener("click", () => sourceViewer.open(kb, source));
    const entry = el("li");
    entry.append(open);
    sources.append(entry);
  }
  item.append(sources);
  if ((turn.quotes || []).length) {
    const quotes = el("ul", undefined, "quotes");
    quotes.setAttribute("aria-label", "Supporting quotes");
    for (const quote of turn.quotes) {
      const entry = el("li");
      entry.append(el("blockquote", quote.text), el("span", `[${quote.number}] ${quote.document}, page ${quote.page}`, "muted"));
      quotes.append(entry);
    }
    item.append(quotes);
  }
  for (const note of turn.notes || []) item.append(el("p", note, "muted"));
}

function actions(item, index) {
  const bar = el("div", undefined, "message-actions");
  const copy = el("button", "Copy", "secondary small");
  copy.type = "button";
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(turns[index].content);
      toast("Answer copied.");
    } catch {
      toast("The browser did not allow copying; select the text instead.");
    }
  });
  bar.append(copy);
  if (index === turns.length - 1) {
    const again = el("button", "Regenerate", "secondary small");
    again.type = "button";
    again.addEventListener("click", () => regenerate());
    bar.append(again);
  }
  item.append(bar);
}

function render() {
  list.replaceChildren();
  turns.forEach((turn, index) => {
    const item = bubble(turn);
    if (turn.role === "assistant") {
      showSources(item, turn);
      actions(item, index);
    }
  });
  heading.textContent = conversation ? conversation.title : "New conversation";
}

// -- conversations ------------------------------------------------------------------
async function loadList() {
  const filter = document.getElementById("conversation-filter").value.trim();
  const query = filter ? `?q=${encodeURIComponent(filter)}` : "";
  const items = await api(`/api/v1/conversations${query}`);
  const target = document.getElementById("conversation-list");
  target.replaceChildren(...items.map((c) => {
    const entry = el("li");
    if (conversation && c.id === conversation.id) entry.className = "current";
    const open = el("a", c.title);
    open.href = `/chat?c=${c.id}`;
    open.addEventListener("click", (event) => { event.preventDefault(); openConversation(c.id); });
    const remove = el("button", "Delete", "secondary small");
    remove.type = "button";
    remove.setAttribute("aria-label", `Delete conversation ${c.title}`);
    remove.addEventListener("click", () => removeConversation(c));
    entry.append(open, el("span", ` ${c.messages} messages`, "muted small"), remove);
    return entry;
  }));
  if (!items.length) target.append(el("li", filter ? "No match." : "None kept yet.", "muted"));
}

async function openConversation(id) {
  try {
    const loaded = await api(`/api/v1/conversations/${id}`);
    conversation = loaded;
    turns = loaded.turns.map((t) => ({ ...t, kb: loaded.kb_id }));
    if (loaded.model && [...settings.model.options].some((o) => o.value === loaded.model)) {
      settings.model.value = loaded.model;
    }
    settings.kb.value = loaded.kb_id || "";
    const s = loaded.settings;
    settings.temperature.value = s.temperature;
    settings.max_tokens.value = s.max_tokens;
    settings.system.value = s.system || "";
    settings.sources.value = s.sources;
    settings.mode.value = s.mode;
    settings.rerank.checked = s.rerank;
    settings.answer.value = s.answer || "generate";
    settings.unsupported.value = s.unsupported || "flag";
    history.replaceState(null, "", `/chat?c=${id}`);
    render();
    loadList();
  } catch (err) {
    status.textContent = err.message;
  }
}

async function removeConversation(c) {
  try {
    await api(`/api/v1/conversations/${c.id}`, { method: "DELETE" });
    if (conversation && conversation.id === c.id) startNew();
    toast(`Deleted "${c.title}".`);
    loadList();
  } catch (err) {
    toast(err.message);
  }
}

function startNew() {
  conversation = null;
  turns = [];
  history.replaceState(null, "", "/chat");
  render();
  loadList();
}

async function keep(newTurns, replaceFrom) {
  // Store the turns (a failure to keep them is shown, the answer stays on screen).
  try {
    if (!conversation) {
      conversation = await api("/api/v1/conversations", {
        method: "POST",
        body: JSON.stringify({ model: settings.model.value, kb_id: settings.kb.value || null, settings: chatSettings() }),
      });
    } else {
      await api(`/api/v1/conversations/${conversation.id}`, {
        method: "PATCH",
        body: JSON.stringify({ model: settings.model.value, kb_id: settings.kb.value || null, settings: chatSettings() }),
      });
    }
    const body = { messages: newTurns.map(({ role, content, model, citations }) => ({ role, content, model: model || null, citations: citations || [] })) };
    if (replaceFrom !== undefined) body.replace_from = replaceFrom;
    conversation = await api(`/api/v1/conversations/${conversation.id}/messages`, { method: "POST", body: JSON.stringify(body) });
    heading.textContent = conversation.title;
    history.replaceState(null, "", `/chat?c=${conversation.id}`);
    loadList();
  } catch (err) {
    status.textContent = `The conversation could not be kept: ${err.message}`;
  }
}

// -- asking -------------------------------------------------------------------------
async function generate(question, item) {
  // Stream one answer into `item`; returns the assistant turn (content may be partial).
  const body = item.querySelector(".body");
  const kb = settings.kb.value;
  const model = settings.model.value;
  const s = chatSettings();
  const turn = { role: "assistant", content: "", model, citations: [], kb };
  if (kb) {
    const response = await post(`/api/v1/kb/${kb}/ask`, {
      query: question, model, temperature: s.temperature, max_tokens: s.max_tokens,
      limit: s.sources, mode: s.mode, rerank: s.rerank, answer_mode: s.answer, unsupported: s.unsupported, stream: true,
    });
    for await (const { event, data } of sseEvents(response)) {
      const payload = JSON.parse(data);
      if (event === "token") { turn.content += payload.text; body.textContent = turn.content; }
      else if (event === "error") throw new Error(payload.message);
      else if (event === "done") {
        turn.content = payload.answer;
        turn.citations = payload.citations.concat(payload.uncited_sources.map((c) => ({ ...c, cited: false })));
        turn.notes = payload.notes;
        turn.unsupported = payload.found && payload.statements > 0 && !payload.supported;
        turn.quotes = payload.answer_mode === "quotes" ? payload.quotes : [];
      }
    }
  } else {
    const sent = turns.map(({ role, content }) => ({ role, content }));
    if (s.system) sent.unshift({ role: "system", content: s.system });
    const response = await post("/v1/chat/completions", {
      model, messages: sent, temperature: s.temperature, max_tokens: s.max_tokens, stream: true,
    });
    for await (const { data } of sseEvents(response)) {
      if (data === "[DONE]") break;
      turn.content += JSON.parse(data).choices[0].delta.content || "";
      body.textContent = turn.content;
    }
  }
  return turn;
}

async function run(question, replaceFrom) {
  status.textContent = "";
  const item = bubble({ role: "assistant", content: "", model: settings.model.value });
  controller = new AbortController();
  document.getElementById("stop").disabled = false;
  document.getElementById("send").disabled = true;
  let turn = null;
  try {
    turn = await generate(question, item);
  } catch (error) {
    if (error.name === "AbortError") {
      turn = { role: "assistant", content: `${item.querySelector(".body").textContent} [stopped]`, model: settings.model.value };
    } else {
      status.textContent = error.message;
      item.remove();
    }
  } finally {
    controller = null;
    document.getElementById("stop").disabled = true;
    document.getElementById("send").disabled = false;
  }
  return turn;
}

async function send(text) {
  const user = { role: "user", content: text };
  turns.push(user);
  bubble(user);
  const turn = await run(text);
  if (turn) turns.push(turn);
  render();
  await keep(turn ? [user, turn] : [user]);
}

async function regenerate() {
  if (controller || !turns.length || turns[turns.length - 1].role !== "assistant") return;
  const position = turns.length - 1;
  turns.pop();
  render();
  const question = [...turns].reverse().find((t) => t.role === "user");
  const turn = await run(question ? question.content : "");
  if (!turn) return;
  turns.push(turn);
  render();
  await keep([turn], position);
}

// -- wiring -------------------------------------------------------------------------
function kbChanged() {
  const withKb = Boolean(settings.kb.value);
  document.querySelectorAll("[data-kb-only]").forEach((field) => { field.hidden = !withKb; });
  // Grounded answers default to greedy decoding; plain chat to some variety.
  if (withKb && settings.temperature.value === "0.7") settings.temperature.value = "0";
  if (!withKb && settings.temperature.value === "0") settings.temperature.value = "0.7";
}

document.getElementById("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  send(text);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    document.getElementById("chat-form").requestSubmit();
  }
});
document.getElementById("stop").addEventListener("click", () => controller && controller.abort());
document.getElementById("new-conversation").addEventListener("click", startNew);
document.getElementById("conversation-filter").addEventListener("input", () => loadList());
settings.kb.addEventListener("change", kbChanged);
kbChanged();
const wanted = new URLSearchParams(location.search).get("c");
if (wanted) openConversation(wanted); else loadList();
