// Shared helpers of the aift UI: JSON API calls with the one error shape, toasts, elements.
"use strict";

// Every state-changing request of a signed-in page carries the session's CSRF token
// (from <meta name="csrf-token">): the server refuses changes without it. One wrapper
// around fetch covers every module; htmx requests get the same header.
(() => {
  const token = document.querySelector('meta[name="csrf-token"]')?.content || "";
  if (!token) return;
  const safe = new Set(["GET", "HEAD", "OPTIONS"]);
  const nativeFetch = window.fetch.bind(window);
  window.fetch = (input, init = {}) => {
    const method = (init.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
    const url = new URL(input instanceof Request ? input.url : input, location.href);
    if (safe.has(method) || url.origin !== location.origin) return nativeFetch(input, init);
    const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
    headers.set("X-CSRF-Token", token);
    return nativeFetch(input, { ...init, headers });
  };
  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = token;
  });
})();

async function api(path, options = {}) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    ...options,
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(message);
  }
  return body;
}

// The events of a server-sent-event response body: {event, data} as each block ends.
async function* sseEvents(response) {
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

function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.style.display = "none"; }, 4000);
}

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

// An element with its text (never parsed as HTML) and class.
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

// A score with three decimals, or a dash when the method did not score the hit.
function score(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(3);
}

// Every score of a search hit, in one line.
function scoresOf(hit) {
  return `dense ${score(hit.dense_score)} · keyword ${score(hit.keyword_score)} · fused ${score(hit.fused_score)} · rerank ${score(hit.rerank_score)}`;
}

// "p. 3" or "pp. 3–4" for a hit or citation, and the section it sits under when known.
function pagesOf(hit) {
  const pages = hit.page_start === hit.page_end ? `p. ${hit.page_start}` : `pp. ${hit.page_start}–${hit.page_end}`;
  return hit.section ? `${pages} · ${hit.section}` : pages;
}

// The source viewer (partials/source_dialog.html): a cited chunk with its document, page,
// scores, and the page image with the passage highlighted (GET …/pages/{n}?chunk_id=…).
const sourceViewer = {
  hit: null,
  kb: null,
  page: 1,

  open(kb, hit) {
    this.kb = kb;
    this.hit = hit;
    // the sentence the answer relies on (a citation) or that matches the query (a hit)
    const span = hit.support || hit.match || null;
    this.page = span ? span.page : hit.page_start;
    const dialog = document.getElementById("source-dialog");
    const label = hit.number !== undefined ? `[${hit.number}] ` : "";
    document.getElementById("source-title").textContent = `${label}${hit.document}`;
    document.getElementById("source-scores").textContent = scoresOf(hit);
    const text = document.getElementById("source-text");
    if (span && hit.text.slice(span.char_start, span.char_end) === span.text) {
      text.replaceChildren(
        document.createTextNode(hit.text.slice(0, span.char_start)),
        el("mark", span.text),
        document.createTextNode(hit.text.slice(span.char_end)),
      );
    } else {
      text.textContent = hit.text;
    }
    document.getElementById("source-pages").hidden = hit.page_start === hit.page_end;
    if (!dialog.open) dialog.showModal();
    this.show();
  },

  async show() {
    const hit = this.hit;
    document.getElementById("source-page").textContent = `page ${this.page} (of ${hit.page_start}–${hit.page_end})`;
    document.getElementById("source-prev").disabled = this.page <= hit.page_start;
    document.getElementById("source-next").disabled = this.page >= hit.page_end;
    const status = document.getElementById("source-status");
    const figure = document.getElementById("source-figure");
    status.textContent = "Opening the page…";
    try {
      const view = await api(
        `/api/v1/kb/${this.kb}/documents/${hit.document_id}/pages/${this.page}?chunk_id=${encodeURIComponent(hit.chunk_id)}`,
      );
      status.textContent = "";
      if (!view.image_url) { figure.hidden = true; return; }
      const image = document.getElementById("source-image");
      image.alt = `Page ${view.page} of ${view.document}`;
      image.src = view.image_url;
      const marks = document.getElementById("source-marks");
      marks.replaceChildren(...view.boxes.map(([left, top, right, bottom]) => {
        const mark = el("div", undefined, "mark");
        Object.assign(mark.style, {
          left: `${left * 100}%`, top: `${top * 100}%`,
          width: `${(right - left) * 100}%`, height: `${(bottom - top) * 100}%`,
        });
        return mark;
      }));
      document.getElementById("source-caption").textContent = view.boxes.length
        ? `Page ${view.page} of ${view.pages}: the passage is highlighted (${view.source}).`
        : `Page ${view.page} of ${view.pages}: the passage could not be located on the image.`;
      figure.hidden = false;
      if (view.boxes.length) {  // the passage in view inside the figure, the header stays
        image.onload = () => { figure.scrollTop = Math.max(0, marks.firstChild.offsetTop - 40); };
      }
    } catch (err) {
      figure.hidden = true;
      status.textContent = err.message;
    }
  },

  step(delta) {
    this.page += delta;
    this.show();
  },
};

if (document.getElementById("source-dialog")) {
  document.getElementById("source-prev").addEventListener("click", () => sourceViewer.step(-1));
  document.getElementById("source-next").addEventListener("click", () => sourceViewer.step(1));
}
