// The workspace editor: line numbers, lint as you type (debounced), each problem shown
// at its line (a marked line number and a note beside it), Tab indents, Ctrl+S saves.
// No framework; the lint API is POST /api/v1/workspace/{kind}/{doc}/lint.
// Opened as .../edit#L12 (a preview's "edit" link) it selects line 12.
// The evaluation page runs its personas through the streaming API and shows progress.
(function () {
  "use strict";
  const editor = document.getElementById("ws-editor");
  if (!editor) return;
  const source = document.getElementById("ws-source");
  const gutter = document.getElementById("ws-gutter");
  const notes = document.getElementById("ws-notes");
  const status = document.getElementById("ws-status");
  const list = document.getElementById("ws-problems");
  const file = editor.dataset.file;
  const lintUrl = editor.dataset.lintUrl;
  const LINE = 20; // px, as in the CSS
  const DEBOUNCE_MS = 500;
  let problems = JSON.parse(document.getElementById("ws-initial").textContent || "[]");
  // The page's words, translated by the template (%(name)s marks what is filled in).
  const wordsBlock = document.getElementById("ws-words");
  const words = Object.assign(
    {
      none: "none", refused: "refused:", no_problems: "no problems",
      problems: "%(n)s problem(s)", checking: "checking…", check_failed: "check failed: %(reason)s",
    },
    JSON.parse((wordsBlock && wordsBlock.textContent) || "{}")
  );
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (m, name) => (name in values ? String(values[name]) : m));
  // Problems come with their message id and values: shown in the page's language (the
  // template translates the ids a problem can have; English needs none).
  const messagesBlock = document.getElementById("ws-messages");
  const catalogue = JSON.parse((messagesBlock && messagesBlock.textContent) || "{}");
  function say(m) {
    const text = catalogue[m.template] || m.template;
    const names = Object.keys(m.params || {});
    if (!names.length) return text;
    const values = {};
    for (const name of names) {
      const v = m.params[name];
      values[name] = typeof v === "string" ? v : say(v);
    }
    return fill(text, values);
  }
  const shown = (p) => (p.template ? say(p) : p.message);
  let timer = null;
  let sent = 0;

  function here(p) {
    return p.file === file && p.line;
  }

  function render() {
    const count = source.value.split("\n").length;
    const bad = new Map();
    for (const p of problems) {
      if (here(p)) bad.set(p.line, (bad.get(p.line) || []).concat([p]));
    }
    const numbers = [];
    for (let i = 1; i <= count; i++) {
      numbers.push(bad.has(i) ? '<span class="bad">' + i + "</span>" : String(i));
    }
    gutter.innerHTML = numbers.join("\n");
    notes.textContent = "";
    for (const [line, items] of bad) {
      const note = document.createElement("div");
      note.className = "ws-note" + (items.some((p) => p.refused) ? " refused" : "");
      note.style.top = 6 + (line - 1) * LINE + "px";
      note.textContent = items.map(shown).join(" · ");
      note.title = note.textContent;
      note.dataset.line = line;
      note.addEventListener("click", () => goTo(line));
      notes.appendChild(note);
    }
    renderList();
    sync();
  }

  function renderList() {
    list.textContent = "";
    if (!problems.length) {
      const li = document.createElement("li");
      li.className = "ws-muted";
      li.textContent = words.none;
      list.appendChild(li);
    }
    for (const p of problems) {
      const li = document.createElement("li");
      if (p.refused) li.className = "refused";
      const where = p.file + (p.line ? ":" + p.line : "") + (p.field ? " " + p.field : "");
      li.textContent = (p.refused ? words.refused + " " : "") + where + ": " + shown(p);
      if (here(p)) {
        li.style.cursor = "pointer";
        li.addEventListener("click", () => goTo(p.line));
      }
      list.appendChild(li);
    }
    status.textContent = problems.length ? fill(words.problems, { n: problems.length }) : words.no_problems;
    status.dataset.problems = String(problems.length);
  }

  function sync() {
    gutter.scrollTop = source.scrollTop;
    notes.style.transform = "translateY(" + -source.scrollTop + "px)";
  }

  function goTo(line) {
    const lines = source.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    source.focus();
    source.setSelectionRange(start, start + (lines[line - 1] || "").length);
    source.scrollTop = Math.max(0, (line - 5) * LINE);
    sync();
  }

  async function lint() {
    const mine = ++sent;
    status.textContent = words.checking;
    try {
      const r = await window.botFetch(lintUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ source: source.value }),
      });
      if (mine !== sent) return; // a newer check is on its way
      if (!r.ok) {
        status.textContent = fill(words.check_failed, { reason: "HTTP " + r.status });
        return;
      }
      const body = await r.json();
      problems = body.refused
        .map((p) => Object.assign(p, { refused: true }))
        .concat(body.errors.map((p) => Object.assign(p, { refused: false })));
      render();
    } catch (e) {
      status.textContent = fill(words.check_failed, { reason: String(e) });
    }
  }

  source.addEventListener("input", () => {
    render();
    clearTimeout(timer);
    timer = setTimeout(lint, DEBOUNCE_MS);
  });
  source.addEventListener("scroll", sync);
  source.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey) {
      e.preventDefault();
      const s = source.selectionStart;
      source.setRangeText("  ", s, source.selectionEnd, "end");
      source.dispatchEvent(new Event("input"));
    } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      document.getElementById("ws-form").requestSubmit();
    }
  });
  render();
  const wanted = /^#L(\d+)$/.exec(window.location.hash);
  if (wanted) goTo(Number(wanted[1]));
})();

// Evaluation with progress: POST .../evaluate?stream=1 answers one JSON line per persona
// run ({"done", "total", "percent"}), then {"finished": true} once the result is stored.
(function () {
  "use strict";
  const form = document.getElementById("ws-evaluate");
  if (!form) return;
  const bar = document.getElementById("ws-progress");
  const label = document.getElementById("ws-progress-label");
  const wordsBlock = document.getElementById("ws-eval-words");
  const words = Object.assign(
    {
      starting: "starting…", refused: "evaluation refused (%(status)s): %(reason)s",
      failed: "evaluation failed: %(reason)s", done: "done: %(total)s persona runs",
      progress: "%(done)s of %(total)s persona runs",
    },
    JSON.parse((wordsBlock && wordsBlock.textContent) || "{}")
  );
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (m, name) => (name in values ? String(values[name]) : m));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const sets = Array.from(form.querySelectorAll("input[name=sets]:checked")).map((x) => x.value);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    label.textContent = words.starting;
    try {
      const r = await window.botFetch(form.dataset.streamUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sets: sets }),
      });
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        label.textContent = fill(words.refused, { status: r.status, reason: body.detail || "" });
        button.disabled = false;
        return;
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 1);
          if (!line) continue;
          const step = JSON.parse(line);
          if (step.error) {
            label.textContent = fill(words.failed, { reason: step.error });
            button.disabled = false;
            return;
          }
          bar.value = step.percent;
          label.textContent = step.finished
            ? fill(words.done, step)
            : step.percent + "% · " + fill(words.progress, step);
          if (step.finished) window.location.reload();
        }
      }
    } catch (err) {
      label.textContent = fill(words.failed, { reason: String(err) });
      button.disabled = false;
    }
  });
})();
