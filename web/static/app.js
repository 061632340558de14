// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("dropzone");
  if (zone) {
    const input = zone.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("dragging"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer && e.dataTransfer.files.length) input.files = e.dataTransfer.files; });
  }
});
// Ask before deleting (forms carry their question in data-confirm).
document.addEventListener("submit", (e) => {
  const form = e.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
});
// An old link to a passage of a long document (#chunk-ID, no ?chunk=) opens the part
// that holds it: a fragment never reaches the server, so ask again with ?chunk=.
document.addEventListener("DOMContentLoaded", () => {
  const m = /^#chunk-(\d+)$/.exec(window.location.hash);
  const nav = document.querySelector("[data-chunk-redirect]");
  if (m && nav && !document.getElementById("chunk-" + m[1]) && !/[?&]chunk=/.test(window.location.search)) {
    window.location.replace(nav.dataset.chunkRedirect + "?chunk=" + m[1] + window.location.hash);
  }
});
// An upload refused as too large (413) answers with the results block that says why:
// show it, although htmx leaves error responses out by default.
document.addEventListener("htmx:beforeSwap", (e) => {
  if (e.detail.xhr.status === 413 && e.detail.target && e.detail.target.id === "upload-results") {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
// --- search page, header and tokens page (issue 16) ---------------------------------
// The header's links fold behind a menu button on a phone (the CSS shows the button
// only on narrow screens, and only once this has run: without JavaScript they wrap).
document.addEventListener("DOMContentLoaded", () => {
  const header = document.querySelector("header.top");
  const toggle = header && header.querySelector(".menu-toggle");
  if (!toggle) return;
  header.classList.add("js-menu");
  toggle.addEventListener("click", () => {
    const open = header.classList.toggle("menu-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
});
// The filters sit in a <details> that a phone keeps closed (a "Filters" toggle); on a
// wide screen they are always shown (app.css), so open it there for older browsers too.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("filter-box");
  if (box && window.matchMedia("(min-width: 40.01rem)").matches) box.open = true;
});
// Copy a value to the clipboard (a new API token): the clipboard API, or select it and
// copy the old way where that API is missing (plain HTTP on another host). The button
// stays hidden without JavaScript (the token can be selected by hand).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy][hidden]").forEach((b) => { b.hidden = false; });
});
document.addEventListener("click", (e) => {
  const button = e.target.closest && e.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  const done = () => {
    button.textContent = button.dataset.msgCopied || "Copied";
    button.classList.add("copied");
  };
  const fallback = () => {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    if (ok) done(); else button.textContent = button.dataset.msgSelect || "Press Ctrl+C to copy";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
// A search sent with Enter while an as-you-type request was still waiting out its delay:
// that request would fetch the same results again and close a preview opened meanwhile.
document.addEventListener("htmx:beforeRequest", (evt) => {
  const elt = evt.detail.elt;
  const form = elt instanceof HTMLFormElement ? elt : elt.form;
  if (!form || !form.elements.namedItem("q")) return;
  const q = String(form.elements.namedItem("q").value || "").trim();
  if (elt instanceof HTMLInputElement && elt.name === "q" && form.dataset.sentQ === q) {
    evt.preventDefault();
    return;
  }
  form.dataset.sentQ = q;
});
// --- end issue 16 block -------------------------------------------------------------
// --- page preview (app/documents/preview.py) ---
// A "Preview" control ([data-preview]) loads the PDF page with the passage marked into its
// card (htmx, hx-target "closest li"); pressed again, or the preview's own close button,
// it closes. A page that cannot be read (422) still shows the preview's message.
(function () {
  function openPreview(control) {
    const holder = control.closest("li");
    return holder ? holder.querySelector(":scope > .preview") : null;
  }
  // Capture phase: an open preview closes before htmx (on the control) sees the click.
  document.addEventListener("click", (e) => {
    const control = e.target.closest && e.target.closest("[data-preview]");
    const open = control && openPreview(control);
    if (!open) return;
    e.preventDefault();
    e.stopPropagation();
    open.remove();
    control.setAttribute("aria-expanded", "false");
  }, true);
  document.addEventListener("htmx:beforeSwap", (e) => {
    const elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (e.detail.xhr.status === 422 && elt && elt.closest && elt.closest("[data-preview], .preview")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", (e) => {
    const elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (elt && elt.matches && elt.matches("[data-preview]")) elt.setAttribute("aria-expanded", "true");
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("[data-preview-close]");
    if (!button) return;
    const box = button.closest(".preview");
    const holder = box && box.closest("li");
    const control = holder && holder.querySelector("[data-preview]");
    if (box) box.remove();
    if (control) { control.setAttribute("aria-expanded", "false"); control.focus(); }
  });
})();
// --- end page preview ---
// --- documents and upload pages (issue 16) ----------------------------------------------
(() => {
  // Documents: a select-all box, the chosen count, a question before a bulk action, and
  // the chosen boxes kept while htmx refreshes the rows (live progress).
  const chosen = new Set();
  const boxes = () => Array.from(document.querySelectorAll("#doc-rows input[name=ids]"));
  const showCount = () => {
    const out = document.querySelector("#bulk-form .chosen-count");
    if (out) out.textContent = chosen.size ? String(chosen.size) : "";
    const all = document.getElementById("select-all");
    const list = boxes();
    if (all) all.checked = list.length > 0 && list.every((b) => b.checked);
  };
  document.addEventListener("change", (e) => {
    const t = e.target;
    if (t.id === "select-all") {
      boxes().forEach((b) => { b.checked = t.checked; if (t.checked) chosen.add(b.value); else chosen.delete(b.value); });
      showCount();
    } else if (t.name === "ids" && t.closest("#doc-rows")) {
      if (t.checked) chosen.add(t.value); else chosen.delete(t.value);
      showCount();
    }
  });
  document.addEventListener("htmx:afterSettle", (e) => {
    if (e.target && e.target.id === "doc-rows") {
      boxes().forEach((b) => { b.checked = chosen.has(b.value); });
      showCount();
    } else if (e.target && e.target.id === "doc-results") {
      chosen.clear();
      showCount();
    }
  });
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.id !== "bulk-form") return;
    const n = boxes().filter((b) => b.checked).length;
    if (!n) { e.preventDefault(); window.alert(form.dataset.none); return; }
    const action = e.submitter ? e.submitter.value : "delete";
    const ask = (action === "delete" ? form.dataset.confirmDelete : form.dataset.confirmReingest) || "";
    if (!window.confirm(ask.replace("{n}", String(n)))) e.preventDefault();
  });

  // Upload: list the chosen files (name, size, type, a remove button), then send them
  // with a progress bar, in batches (a server reads at most 1000 files per request).
  const form = document.getElementById("upload-form");
  if (!form || !window.DataTransfer) return;
  const d = form.dataset;
  const accepted = (d.accept || "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const maxBytes = Number(d.maxBytes || 0);
  const inputs = Array.from(form.querySelectorAll("input[type=file]"));
  const list = document.getElementById("chosen-files");
  const box = document.getElementById("chosen");
  const bar = document.getElementById("upload-progress");
  const results = () => document.getElementById("upload-results");
  const size = (n) => {
    const units = ["B", "KB", "MB", "GB"];
    let i = 0; let v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
  };
  const nameOf = (f) => f.webkitRelativePath || f.name;
  const extOf = (f) => { const m = /\.[^./\\]+$/.exec(f.name); return m ? m[0].toLowerCase() : ""; };
  const chosenFiles = () => inputs.flatMap((input) => Array.from(input.files || []).map((file) => ({ input, file })));
  const render = () => {
    const files = chosenFiles();
    list.replaceChildren();
    box.hidden = files.length === 0;
    let total = 0;
    files.forEach(({ input, file }) => {
      total += file.size;
      const li = document.createElement("li");
      const ext = extOf(file);
      const name = document.createElement("strong");
      name.textContent = nameOf(file);
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = ` ${size(file.size)} · ${ext || "?"}`;
      li.append(name, meta);
      let warn = "";
      if (!accepted.includes(ext)) warn = d.labelUnsupported;
      else if (maxBytes && file.size > maxBytes && ext !== ".zip") warn = d.labelTooLarge;
      else if (ext === ".zip") li.append(Object.assign(document.createElement("span"), { className: "meta", textContent: ` · ${d.labelArchive}` }));
      if (warn) { li.classList.add("will-reject"); li.append(Object.assign(document.createElement("span"), { className: "reason", textContent: ` — ${warn}` })); }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link remove-file";
      remove.textContent = d.labelRemove;
      remove.setAttribute("aria-label", `${d.labelRemove}: ${nameOf(file)}`);
      remove.addEventListener("click", () => {
        const keep = new DataTransfer();
        Array.from(input.files).forEach((f) => { if (f !== file) keep.items.add(f); });
        input.files = keep.files;
        render();
      });
      li.append(" ", remove);
      list.append(li);
    });
    box.querySelector(".chosen-summary").textContent = files.length ? d.labelCount.replace("{n}", files.length).replace("{size}", size(total)) : "";
  };
  inputs.forEach((input) => input.addEventListener("change", render));
  const zone = document.getElementById("dropzone");
  if (zone) zone.addEventListener("drop", () => window.setTimeout(render, 0));

  const BATCH_FILES = 200;
  const BATCH_BYTES = 512 * 1024 * 1024;
  const batches = (files) => {
    const out = [];
    let cur = []; let bytes = 0;
    files.forEach((f) => {
      if (cur.length && (cur.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES)) { out.push(cur); cur = []; bytes = 0; }
      cur.push(f); bytes += f.size;
    });
    if (cur.length) out.push(cur);
    return out;
  };
  const send = (files, sentBefore, totalBytes) => new Promise((resolve) => {
    const data = new FormData();
    form.querySelectorAll("input:not([type=file]), select").forEach((el) => { if (el.name) data.append(el.name, el.value); });
    files.forEach((f) => data.append("files", f, nameOf(f)));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("HX-Request", "true");
    const token = form.querySelector("input[name=csrf_token]");
    if (token) xhr.setRequestHeader("X-CSRF-Token", token.value);
    xhr.upload.addEventListener("progress", (ev) => {
      const done = sentBefore + (ev.lengthComputable ? ev.loaded : 0);
      const pct = totalBytes ? Math.min(100, Math.round((done / totalBytes) * 100)) : 100;
      bar.querySelector("progress").value = pct;
      bar.querySelector(".progress-text").textContent = pct >= 100 ? d.labelProcessing : d.labelSending.replace("{percent}", pct);
    });
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => resolve(null));
    xhr.send(data);
  });
  form.addEventListener("submit", async (e) => {
    const files = chosenFiles().map(({ file }) => file);
    if (!files.length) return; // the browser says a file is needed (or the server does)
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    bar.hidden = false;
    const total = files.reduce((n, f) => n + f.size, 0);
    let sent = 0; let first = true;
    for (const batch of batches(files)) {
      const xhr = await send(batch, sent, total);
      sent += batch.reduce((n, f) => n + f.size, 0);
      const target = results();
      if (!xhr || !/html/.test(xhr.getResponseHeader("content-type") || "")) {
        const p = document.createElement("p");
        p.className = "error";
        p.setAttribute("role", "alert");
        p.textContent = xhr ? `${xhr.status}: ${xhr.responseText.slice(0, 300)}` : d.labelFailed;
        target.append(p);
        continue;
      }
      const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const fresh = doc.getElementById("upload-results");
      if (!fresh) continue;
      if (first) { target.replaceWith(fresh); first = false; continue; }
      const ul = target.querySelector("ul.upload-results");
      const more = fresh.querySelectorAll("ul.upload-results > li");
      if (ul) ul.append(...more); else target.replaceWith(fresh);
      const summary = target.querySelector(".upload-summary");
      if (summary) summary.remove(); // per batch only: the lines say it all
    }
    inputs.forEach((input) => { input.value = ""; });
    render();
    bar.hidden = true;
    button.disabled = false;
  });
})();
// --- end documents and upload pages ---
// --- chunk editing (issue 16, "Chunks") ----------------------------------------------
// A chunk's text that could not be saved (422 empty or too long, 409 being ingested, 503
// embedding model down) comes back as the chunk with the reason and the typed text: swap
// it in, although htmx leaves error responses out by default.
document.addEventListener("htmx:beforeSwap", (e) => {
  const elt = e.detail.requestConfig && e.detail.requestConfig.elt;
  const status = e.detail.xhr.status;
  if ([409, 422, 503].includes(status) && elt && elt.matches && elt.matches("form[data-chunk-form]")) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
// --- end chunk editing ---
