// Small helpers for the dashboard pages (no framework, no CDN).
// fetch() calls that change something send the session's CSRF token as a header.
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  window.botFetch = function (url, options = {}) {
    const headers = new Headers(options.headers || {});
    if (meta && meta.content) headers.set("X-CSRF-Token", meta.content);
    return fetch(url, { credentials: "same-origin", ...options, headers });
  };
})();
