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
