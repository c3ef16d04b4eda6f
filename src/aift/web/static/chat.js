// Chat page: streams a served model's answer (OpenAI chat API), or a cited answer from a
// knowledge base (the ask API's events: sources, token…, done). Stop aborts the request.
"use strict";

const messages = [];
let controller = null;
const list = document.getElementById("messages");
const status = document.getElementById("chat-status");
const settings = document.getElementById("chat-settings");
const input = document.getElementById("chat-input");

function bubble(role, text) {
  const item = document.createElement("li");
  item.className = `message ${role}`;
  const who = document.createElement("strong");
  who.textContent = role === "user" ? "You" : settings.model.value;
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = text;
  item.append(who, body);
  list.append(item);
  return item;
}

async function* events(response) {
  // Server-sent events of a fetch response: {event, data} (data parsed when JSON).
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      yield { event, data: data.join("\n") };
    }
  }
}

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

function showSources(item, done) {
  const cited = done.citations.concat(done.uncited_sources);
  if (!cited.length) return;
  const sources = document.createElement("ul");
  sources.className = "sources";
  sources.setAttribute("aria-label", "Sources");
  for (const source of cited) {
    const chip = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const pages = source.page_start === source.page_end ? `p. ${source.page_start}` : `pp. ${source.page_start}–${source.page_end}`;
    const isCited = done.citations.some((c) => c.number === source.number);
    summary.textContent = `[${source.number}] ${source.document}, ${pages}${isCited ? "" : " (not cited)"}`;
    const excerpt = document.createElement("p");
    excerpt.textContent = source.text;
    const scores = document.createElement("p");
    scores.className = "muted";
    const fmt = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
    scores.textContent = `dense ${fmt(source.dense_score)} · keyword ${fmt(source.keyword_score)} · rerank ${fmt(source.rerank_score)}`;
    details.append(summary, scores, excerpt);
    chip.append(details);
    sources.append(chip);
  }
  item.append(sources);
  for (const note of done.notes) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = note;
    item.append(p);
  }
}

async function send(text) {
  status.textContent = "";
  bubble("user", text);
  const answer = bubble("assistant", "");
  const body = answer.querySelector(".body");
  controller = new AbortController();
  document.getElementById("stop").disabled = false;
  document.getElementById("send").disabled = true;
  const kb = settings.kb.value;
  const model = settings.model.value;
  const temperature = Number(settings.temperature.value);
  const maxTokens = Number(settings.max_tokens.value);
  try {
    if (kb) {
      const response = await post(`/api/v1/kb/${kb}/ask`, {
        query: text, model, temperature, max_tokens: maxTokens, stream: true,
      });
      for await (const { event, data } of events(response)) {
        const payload = JSON.parse(data);
        if (event === "token") body.textContent += payload.text;
        else if (event === "error") throw new Error(payload.message);
        else if (event === "done") {
          body.textContent = payload.answer;
          showSources(answer, payload);
        }
      }
    } else {
      messages.push({ role: "user", content: text });
      const response = await post("/v1/chat/completions", {
        model, messages, temperature, max_tokens: maxTokens, stream: true,
      });
      for await (const { data } of events(response)) {
        if (data === "[DONE]") break;
        const delta = JSON.parse(data).choices[0].delta.content || "";
        body.textContent += delta;
      }
      messages.push({ role: "assistant", content: body.textContent });
    }
  } catch (error) {
    if (error.name === "AbortError") {
      body.textContent += " [stopped]";
      if (!kb) messages.push({ role: "assistant", content: body.textContent });
    } else {
      status.textContent = error.message;
      if (!body.textContent) answer.remove();
      if (!kb) messages.pop();
    }
  } finally {
    controller = null;
    document.getElementById("stop").disabled = true;
    document.getElementById("send").disabled = false;
  }
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
document.getElementById("clear").addEventListener("click", () => {
  messages.length = 0;
  list.replaceChildren();
});
