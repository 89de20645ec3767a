// Small page helpers; pages work without this file.
document.addEventListener("htmx:configRequest", (event) => {
  // CSRF token on every htmx request that changes something.
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token && event.detail.verb !== "get") event.detail.headers["X-CSRFToken"] = token.content;
});
document.addEventListener("htmx:xhr:progress", (event) => {
  // Upload progress bar.
  const bar = document.getElementById("upload-progress");
  if (!bar || !event.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});
