// The Ask page's written answer, streamed as the LLM writes it.
//
// #llm-answer[data-url] carries the request (data-body: the JSON of POST /api/v1/answer
// with "stream": true), the session's CSRF header and the page's messages in its
// language (data-msg-*). The answer is read from the server-sent events (token,
// citations, done, error) and written as text, never as HTML; once the citations are
// known each [n] becomes a link to the numbered passage below (#answer-n) that it cites.
// Stop aborts the request and keeps what was written. Without JavaScript the page's
// "Write an answer" link asks the server for the whole answer instead.
(() => {
  "use strict";
  let running = null; // the AbortController of the answer being written

  function note(slot, text, kind, detail) {
    const p = slot.querySelector(".answer-note");
    p.hidden = false;
    p.className = "answer-note " + (kind || "notice");
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    if (detail) {
      const span = document.createElement("span");
      span.className = "detail";
      span.textContent = " " + detail;
      p.appendChild(span);
    }
  }

  // The answer's text with each [n] of a cited passage as a link; the rest stays text.
  function link(out, text, citations) {
    const byN = new Map(citations.map((c) => [c.n, c]));
    const cards = new Map();
    document.querySelectorAll("#answers li.answer[data-chunk-id]").forEach((li) => {
      cards.set(Number(li.dataset.chunkId), li.id);
    });
    out.textContent = "";
    const re = /\[(\d{1,4})\]/g;
    let pos = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const c = byN.get(Number(m[1]));
      if (!c) continue;
      out.appendChild(document.createTextNode(text.slice(pos, m.index)));
      const a = document.createElement("a");
      a.className = "cite-ref";
      const card = cards.get(c.chunk_id);
      a.href = card ? "#" + card : c.link;
      a.textContent = m[0];
      if (c.title || c.file) a.title = c.title || c.file;
      out.appendChild(a);
      pos = m.index + m[0].length;
    }
    out.appendChild(document.createTextNode(text.slice(pos)));
  }

  // Server-sent events from a fetch body: calls on(event, data) per complete event.
  async function readEvents(body, on) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = "message";
        const data = [];
        block.split("\n").forEach((line) => {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) on(event, JSON.parse(data.join("\n")));
      }
    }
  }

  async function start(slot) {
    slot.dataset.state = "writing";
    if (running) running.abort();
    const ctl = new AbortController();
    running = ctl;
    const d = slot.dataset;
    const out = slot.querySelector(".written");
    const stop = slot.querySelector(".stop");
    const rating = slot.querySelector(".answer-rating");
    const writeLink = slot.querySelector(".write-link");
    if (writeLink) writeLink.hidden = true;
    let text = "";
    let citations = null;
    let finished = false;
    out.hidden = false;
    out.setAttribute("aria-busy", "true");
    note(slot, d.msgWriting, "meta");
    stop.hidden = false;
    stop.addEventListener("click", () => ctl.abort(), { once: true });
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    headers[d.csrfHeader] = d.csrf;
    try {
      const r = await fetch(d.url, {
        method: "POST",
        headers: headers,
        body: d.body,
        credentials: "same-origin",
        signal: ctl.signal,
      });
      if (!r.ok || !r.body) {
        let detail = "";
        try {
          const j = await r.json();
          detail = j.message || j.detail || "";
          if (typeof detail !== "string") detail = JSON.stringify(detail);
        } catch (e) { /* not JSON */ }
        note(slot, d.msgFailed, "error", detail);
        finished = true;
        return;
      }
      await readEvents(r.body, (event, data) => {
        if (event === "token") {
          text += data.text;
          out.textContent = text; // as text: the model's output is never HTML
        } else if (event === "citations") {
          citations = data.citations;
          link(out, text, citations);
        } else if (event === "done") {
          finished = true;
          if (data.weak_match) {
            out.hidden = true;
            note(slot, d.msgNothing, "notice refusal");
            return;
          }
          text = data.answer || text;
          link(out, text, citations || []);
          const p = slot.querySelector(".answer-note");
          if (data.notice) {
            note(slot, data.notice.indexOf("KB_LLM_MAX_TOKENS") >= 0 ? d.msgLength : data.notice, "notice");
          } else {
            p.hidden = true;
          }
          if (rating) {
            const ids = rating.querySelector("input[name=chunk_ids]");
            const model = rating.querySelector("input[name=model]");
            if (ids) ids.value = (citations || []).map((c) => c.chunk_id).join(",");
            if (model && data.model) model.value = data.model;
            rating.hidden = false;
          }
        } else if (event === "error") {
          finished = true;
          if (citations) link(out, text, citations);
          note(slot, text ? d.msgBroken : d.msgFailed, "error", data.message);
        }
      });
      if (!finished) {
        finished = true;
        note(slot, text ? d.msgBroken : d.msgFailed, "error");
      }
    } catch (e) {
      if (ctl.signal.aborted) {
        if (text && citations) link(out, text, citations);
        if (!finished) note(slot, d.msgStopped, "notice stopped");
      } else {
        note(slot, text ? d.msgBroken : d.msgFailed, "error", String(e && e.message ? e.message : e));
      }
    } finally {
      out.removeAttribute("aria-busy");
      if (!text && out.childNodes.length === 0) out.hidden = true;
      stop.hidden = true;
      slot.dataset.state = ctl.signal.aborted && !finished ? "stopped" : "done";
      if (running === ctl) running = null;
    }
  }

  function init(root) {
    const slot = (root.id === "llm-answer" ? root : root.querySelector && root.querySelector("#llm-answer"));
    if (slot && slot.dataset.url && !slot.dataset.state) start(slot);
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
  // htmx swaps in a new #answers when the form is sent again: write that answer instead.
  document.addEventListener("htmx:load", (e) => init(e.target));
  // Back to a page whose answer was still being written: write it again.
  document.addEventListener("htmx:historyRestore", () => {
    const slot = document.getElementById("llm-answer");
    if (slot && slot.dataset.url && slot.dataset.state === "writing") {
      slot.querySelector(".written").textContent = "";
      start(slot);
    }
  });
})();
