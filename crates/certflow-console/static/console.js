// certflow console: small enhancements over server-rendered pages. Every page works
// without it; nothing here decides anything the server does not decide again.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The language switch returns to this page.
  for (const input of document.querySelectorAll("[data-current-path]")) {
    input.value = location.pathname + location.search;
  }

  // Live pages: the server says "changed", the page loads itself again.
  const banner = document.getElementById("connection");
  for (const live of document.querySelectorAll("[data-live]")) {
    const source = new EventSource(live.dataset.live);
    source.addEventListener("changed", () => location.reload());
    source.addEventListener("open", () => { if (banner) banner.hidden = true; });
    source.addEventListener("error", () => { if (banner) banner.hidden = false; });
  }

  // Deadlines count down.
  const countdowns = document.querySelectorAll("[data-countdown]");
  const tick = () => {
    const now = Date.now() / 1000;
    for (const el of countdowns) {
      let left = Math.max(0, Math.floor(Number(el.dataset.countdown) - now));
      const d = Math.floor(left / 86400); left %= 86400;
      const h = Math.floor(left / 3600); left %= 3600;
      const m = Math.floor(left / 60);
      el.textContent = `(${d}d ${h}h ${m}m)`;
    }
  };
  if (countdowns.length > 0) { tick(); setInterval(tick, 30000); }

  // The gateway could not be reached: send the same form (same request id) again.
  const retry = document.querySelector("form[data-retry-form]");
  if (retry) setTimeout(() => retry.requestSubmit(), 3000);

  // A document is checked before it is sent; the server checks it again.
  const upload = document.getElementById("upload-form");
  if (upload) {
    const file = upload.querySelector("input[type=file]");
    const message = document.getElementById("document-check");
    const button = upload.querySelector("button[type=submit]");
    const formats = upload.dataset.formats.toLowerCase().split(/,\s*/);
    const extensions = { jpg: ["jpg", "jpeg"], png: ["png"], gif: ["gif"], pdf: ["pdf"] };
    file.addEventListener("change", () => {
      const chosen = file.files[0];
      let problem = "";
      if (chosen) {
        const ext = chosen.name.split(".").pop().toLowerCase();
        const allowed = formats.some((f) => (extensions[f] || []).includes(ext));
        if (chosen.size > Number(upload.dataset.maxBytes)) problem = upload.dataset.tooLarge;
        else if (!allowed) problem = upload.dataset.wrongFormat;
      }
      message.textContent = problem;
      message.hidden = problem === "";
      button.disabled = problem !== "";
    });
  }
});
