// Keyboard shortcuts for a review item (documented on the page):
// c claim · a agree · o overturn · j/k next/previous turn · e correct the selected turn ·
// n next open item · Ctrl+Enter submit. Ignored while typing in a field.
(function () {
  const root = document.getElementById("review");
  if (!root) return;
  const turns = Array.from(document.querySelectorAll(".transcript .turn"));
  let current = -1;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function select(index) {
    if (!turns.length) return;
    current = Math.max(0, Math.min(turns.length - 1, index));
    turns.forEach((t, i) => t.classList.toggle("current", i === current));
    turns[current].scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function choose(id, focusId) {
    const radio = document.getElementById(id);
    if (!radio) return;
    radio.checked = true;
    reasonRule();
    const next = document.getElementById(focusId);
    if (next) next.focus();
  }

  function correctCurrent() {
    if (current < 0) return;
    const fix = document.getElementById("fix-" + turns[current].dataset.idx);
    if (!fix) return;
    fix.open = true;
    const input = fix.querySelector("input");
    if (input) input.focus();
  }

  // An overturn needs a reason (the server refuses one without): let the browser say
  // so before the form is sent, keeping what the reviewer chose.
  const reason = document.getElementById("verdict-reason");
  function reasonRule() {
    const overturn = document.getElementById("decision-overturn");
    if (reason && overturn) reason.required = overturn.checked;
  }
  document.querySelectorAll("input[name=decision]").forEach((r) => r.addEventListener("change", reasonRule));

  document.addEventListener("keydown", function (event) {
    const form = document.getElementById("verdict-form");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    switch (event.key) {
      case "a": choose("decision-agree", "verdict-submit"); break;
      case "o": choose("decision-overturn", "corrected-disposition"); break;
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "e": correctCurrent(); break;
      case "c": {
        const claim = document.getElementById("claim-form");
        if (claim) claim.requestSubmit();
        break;
      }
      case "n":
        if (root.dataset.next) window.location.assign(root.dataset.next);
        break;
      default: return;
    }
    event.preventDefault();
  });
})();
