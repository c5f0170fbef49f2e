// Live updates for the delivery dashboard and the service order page: every few seconds the
// server renders the changing part again and it is swapped in when it differs. No reload, no
// client-side templates (the text stays translated by the server); paused while the tab is
// hidden or a form in the live part has focus.
"use strict";

(function () {
  const live = document.getElementById("srv-live");
  if (!live) return;
  const url = live.dataset.liveUrl;
  const every = Number(live.dataset.liveMs || 4000);
  let last = live.innerHTML;
  let busy = false;

  async function refresh() {
    if (busy || document.hidden || live.contains(document.activeElement)) return;
    busy = true;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const html = await response.text();
      if (html !== last) {
        live.innerHTML = html;
        last = html;
        live.dataset.updated = String(Date.now());
      }
      const counts = live.querySelector("[data-counts]");
      if (counts) {
        for (const [name, value] of Object.entries(JSON.parse(counts.dataset.counts))) {
          const badge = document.querySelector(`.count[data-count="${name}"]`);
          if (badge) badge.textContent = String(value);
        }
      }
    } catch (e) {
      // Offline for a moment: the next tick tries again.
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, every);
})();
