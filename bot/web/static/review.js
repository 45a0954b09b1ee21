// The review desk's keyboard (the full list is in the ? help, _review_keys.html, and in
// docs/dashboard.md). On the queue: n starts reviewing. On an item: j/k turns, space
// play/pause, arrows +-5 s, 1/2/3 speed, v channel, a agree, o overturn, e correct the
// selected turn, Enter / Ctrl+Enter submit and next, Ctrl+Shift+Enter submit and back to
// the queue, n skip, c claim, q queue, ? help. Keys are ignored while typing in a field
// (Ctrl+Enter and Esc excepted).
(function () {
  const root = document.getElementById("review");
  const queuePage = document.getElementById("review-queue");
  if (!root && !queuePage) return;
  const help = document.getElementById("keys-help");
  const player = window.reviewPlayer || { available: false };
  const turns = Array.from(document.querySelectorAll(".transcript .turn"));
  let current = -1;

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function submit(id) {
    const form = document.getElementById(id);
    if (form) form.requestSubmit();
  }

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) document.getElementById("keys-help-close").focus();
  }
  if (help) {
    document.getElementById("keys-help-close").addEventListener("click", () => toggleHelp(false));
  }

  function select(index, seekToo) {
    if (!turns.length) return;
    current = Math.max(0, Math.min(turns.length - 1, index));
    turns.forEach((t, i) => t.classList.toggle("current", i === current));
    turns[current].scrollIntoView({ block: "nearest" });
    if (seekToo && player.available) player.seekTurn(turns[current], false);
  }

  // Click a turn to hear it (not when the click is in its correction fields).
  turns.forEach((turn, i) => {
    turn.addEventListener("click", (event) => {
      if (event.target.closest(".turnfix, a")) return;
      select(i, false);
      if (player.available) player.seekTurn(turn, true);
    });
  });
  // The evidence links to the turn that fired it.
  document.querySelectorAll(".to-turn").forEach((link) => {
    link.addEventListener("click", (event) => {
      const i = turns.findIndex((t) => t.dataset.idx === link.dataset.idx);
      if (i < 0) return;
      event.preventDefault();
      select(i, true);
    });
  });

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
  // The sticky column holds the evidence and the form within the window: its height is
  // what is left below its top (which moves until it sticks).
  const aside = document.querySelector(".desk-right");
  function fitAside() {
    if (!aside) return;
    if (getComputedStyle(aside).position !== "sticky") {
      aside.style.maxHeight = "";
      return;
    }
    const top = Math.max(aside.getBoundingClientRect().top, 0);
    aside.style.maxHeight = Math.max(window.innerHeight - top - 10, 240) + "px";
  }
  fitAside();
  window.addEventListener("scroll", fitAside, { passive: true });
  window.addEventListener("resize", fitAside);

  if (root) root.classList.add("scripted"); // the overturn fields wait for o / Overturn
  const reason = document.getElementById("verdict-reason");
  function reasonRule() {
    const overturn = document.getElementById("decision-overturn");
    if (reason && overturn) reason.required = overturn.checked;
    if (root) root.classList.toggle("overturning", !!(overturn && overturn.checked));
  }
  document.querySelectorAll("input[name=decision]").forEach((r) => r.addEventListener("change", reasonRule));

  function submitVerdict(thenQueue) {
    const form = document.getElementById("verdict-form");
    if (!form) return false;
    form.requestSubmit(document.getElementById(thenQueue ? "verdict-submit-only" : "verdict-submit"));
    return true;
  }

  let spaceHandled = false;
  document.addEventListener("keyup", (event) => {
    // a space on a focused button would click it on key-up: the keydown played instead
    if (event.key === " " && spaceHandled) {
      event.preventDefault();
      spaceHandled = false;
    }
  }, true);

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && help && !help.hidden) {
      toggleHelp(false);
      event.preventDefault();
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (submitVerdict(event.shiftKey)) event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (typing(target)) {
      // Enter in a one-line field would send the form half-filled: Ctrl+Enter does that
      if (event.key === "Enter" && target.tagName === "INPUT" && target.form &&
          target.form.id === "verdict-form" && target.type !== "radio") event.preventDefault();
      return;
    }
    if (help && !help.hidden && event.key !== "?") return;
    if (event.key === "Enter") {
      // a focused link, summary or button outside the verdict does its own thing
      const own = target.closest && target.closest("a, summary, button, [role=button]");
      if (own && !(own.form && own.form.id === "verdict-form")) return;
      if (submitVerdict(false)) event.preventDefault();
      return;
    }
    if (queuePage) {
      if (event.key === "n") submit("start-form");
      else if (event.key === "?") toggleHelp();
      else return;
      event.preventDefault();
      return;
    }
    switch (event.key) {
      case "a": choose("decision-agree", "verdict-submit"); break;
      case "o": choose("decision-overturn", "corrected-disposition"); break;
      case "j": select(current + 1, true); break;
      case "k": select(current - 1, true); break;
      case "e": correctCurrent(); break;
      case " ": if (!player.available) return; spaceHandled = true; player.toggle(); break;
      case "ArrowLeft": if (!player.available) return; player.nudge(-5); break;
      case "ArrowRight": if (!player.available) return; player.nudge(5); break;
      case "1": player.available && player.setRate(1); break;
      case "2": player.available && player.setRate(1.5); break;
      case "3": player.available && player.setRate(2); break;
      case "v": player.available && player.cycleChannel(); break;
      case "c": submit("claim-form"); break;
      case "n": submit("skip-form"); break;
      case "q": window.location.assign(document.getElementById("to-queue").href); break;
      case "?": toggleHelp(); break;
      default: return;
    }
    event.preventDefault();
  });
})();
