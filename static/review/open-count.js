// Keeps the review queue's "N open" live: polls the staff API every 10 seconds.
(function () {
  "use strict";
  const el = document.querySelector("[data-testid=review-open-count]");
  if (!el || !window.fetch) return;
  async function refresh() {
    try {
      const response = await fetch(el.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      if (typeof body.count === "number") el.textContent = String(body.count);
    } catch (error) {
      // Offline for a moment: keep the last figure.
    }
  }
  setInterval(refresh, 10000);
})();
