// The monitor refreshes itself: every data-refresh-s seconds it fetches the same page and
// swaps the #monitor block in place (no flash, scroll kept). It pauses while the tab is
// hidden or while the campaign/period form has focus, and says so if a refresh fails.
(function () {
  "use strict";
  const root = document.getElementById("monitor");
  if (!root) return;
  const every = Number(root.dataset.refreshS || 30) * 1000;

  async function refresh() {
    const current = document.getElementById("monitor");
    if (document.hidden || (current && current.contains(document.activeElement) &&
        document.activeElement.matches("select, input, button"))) return;
    try {
      const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (res.redirected || !res.ok) throw new Error(String(res.status));
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const next = doc.getElementById("monitor");
      if (next && current) current.replaceWith(next);
    } catch (e) {
      const stamp = document.getElementById("updated");
      if (stamp) stamp.textContent += " (refresh failed: " + e.message + ")";
    }
  }
  setInterval(refresh, every);
})();
