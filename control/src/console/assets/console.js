// upgate console: the few things a page cannot do by itself. No framework, no build step;
// every page works without this file, it only adds live feedback.
"use strict";

function settingsForm() {
  const form = document.getElementById("settings");
  const message = document.getElementById("message");
  if (!form || !message) return;
  const counter = document.getElementById("message-counter");
  const max = Number(counter.dataset.max);
  const warning = document.getElementById("link-warning");
  let timer = null;
  let asked = 0;
  const count = () => {
    const n = Array.from(message.value).length;
    counter.textContent = `${n} / ${max} characters`;
    counter.classList.toggle("over", n > max);
  };
  const ask = async () => {
    const mine = ++asked;
    const body = new URLSearchParams({ message: message.value });
    const res = await fetch(form.dataset.preview, {
      method: "POST",
      headers: { "x-csrf-token": form.dataset.csrf, "content-type": "application/x-www-form-urlencoded" },
      body,
      credentials: "same-origin",
    });
    if (!res.ok || mine !== asked) return;
    const p = await res.json();
    document.getElementById("preview-text").textContent = p.text;
    const plural = p.segments === 1 ? "" : "s";
    document.getElementById("preview-meta").textContent =
      `${p.characters} characters · ${p.encoding} · ${p.segments} segment${plural}`;
    warning.hidden = !p.has_link;
  };
  message.addEventListener("input", () => {
    count();
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  count();
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Select the text and copy it";
      }
    });
  }
}

// A call's page follows the call's event stream; on each event it fetches the page again
// and swaps the call's part in, so what staff see is what the server renders.
function liveCall() {
  const call = document.getElementById("call");
  if (!call || !window.EventSource) return;
  const source = new EventSource(call.dataset.events);
  let refreshing = null;
  const refresh = () => {
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      const res = await fetch(location.pathname, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("call");
      const now = document.getElementById("call");
      if (fresh && now) now.replaceChildren(...fresh.childNodes);
    }, 100);
  };
  for (const kind of call.dataset.kinds.split(" ")) source.addEventListener(kind, refresh);
  source.addEventListener("end", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  settingsForm();
  copyButtons();
  liveCall();
});
