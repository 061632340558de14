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
