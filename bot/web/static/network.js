// The account's network drawn as SVG: a small force layout in plain JS (no library, no
// CDN). Accounts are circles coloured by band, shared nodes are squares (red when held
// by five accounts or more: a hub); dashed edges were named in a call, solid ones come
// from the account's own data. Deterministic: the start positions depend only on the
// data, so the same network always looks the same.
(function () {
  "use strict";
  const host = document.getElementById("network");
  if (!host) return;
  const data = JSON.parse(host.dataset.network || "{}");
  // The page's words, translated by the template (the data holds values, not labels).
  const wordsBlock = document.getElementById("network-words");
  const words = JSON.parse((wordsBlock && wordsBlock.textContent) || "{}");
  const named = (map, value) => (words[map] && words[map][value]) || value;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 900, H = 560, HUB = 5;

  const nodes = [];
  const byId = new Map();
  (data.accounts || []).forEach((a) => {
    const n = { id: a.id, kind: "account", data: a, label: a.name + " " + a.account_id.slice(-4) };
    nodes.push(n); byId.set(a.id, n);
  });
  (data.entities || []).forEach((e) => {
    const n = { id: e.id, kind: "entity", data: e, label: e.shown };
    nodes.push(n); byId.set(e.id, n);
  });
  const edges = (data.edges || [])
    .map((e) => ({ s: byId.get(e.account), t: byId.get(e.entity), origin: e.origin }))
    .filter((e) => e.s && e.t);

  // Start on two rings (accounts inside by hop count, nodes outside), then relax.
  nodes.forEach((n, i) => {
    const ring = n.kind === "account" ? 60 + 120 * (n.data.hops || 0) : 180;
    const angle = (2 * Math.PI * i) / Math.max(nodes.length, 1);
    n.x = W / 2 + ring * Math.cos(angle);
    n.y = H / 2 + ring * Math.sin(angle);
    n.vx = 0; n.vy = 0;
  });
  const centre = byId.get(data.centre);
  // The ideal edge length: shorter as the graph grows, never so long that a small
  // graph is pushed into the corners.
  const k = Math.min(110, Math.max(40, Math.sqrt((W * H) / Math.max(nodes.length, 1)) * 0.5));
  for (let step = 0; step < 300; step++) {
    const cool = 1 - step / 300;
    for (let i = 0; i < nodes.length; i++) {
      const a = nodes[i];
      for (let j = i + 1; j < nodes.length; j++) {
        const b = nodes[j];
        let dx = a.x - b.x, dy = a.y - b.y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = 0.1 * (i - j); dy = 0.1; d2 = dx * dx + dy * dy; }
        if (d2 > 9 * k * k) continue; // far apart: no push
        const f = (k * k) / d2;
        a.vx += dx * f * 0.05; a.vy += dy * f * 0.05;
        b.vx -= dx * f * 0.05; b.vy -= dy * f * 0.05;
      }
    }
    edges.forEach((e) => {
      const dx = e.t.x - e.s.x, dy = e.t.y - e.s.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const f = (d - k) * 0.1; // a spring of rest length k
      e.s.vx += (dx / d) * f; e.s.vy += (dy / d) * f;
      e.t.vx -= (dx / d) * f; e.t.vy -= (dy / d) * f;
    });
    nodes.forEach((n) => {
      n.vx += (W / 2 - n.x) * 0.002; n.vy += (H / 2 - n.y) * 0.002;
      const v = Math.sqrt(n.vx * n.vx + n.vy * n.vy) || 1;
      const cap = 20 * cool + 0.5;
      if (v > cap) { n.vx = (n.vx / v) * cap; n.vy = (n.vy / v) * cap; }
      if (n === centre) { n.vx = 0; n.vy = 0; n.x = W / 2; n.y = H / 2; }
      n.x = Math.min(W - 40, Math.max(40, n.x + n.vx));
      n.y = Math.min(H - 20, Math.max(20, n.y + n.vy));
      n.vx *= 0.6; n.vy *= 0.6;
    });
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    Object.entries(attrs).forEach(([key, value]) => e.setAttribute(key, String(value)));
    if (parent) parent.appendChild(e);
    return e;
  }
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": words.graph || "account network" });
  const edgeLayer = el("g", { class: "edges" }, svg);
  const nodeLayer = el("g", { class: "nodes" }, svg);
  edges.forEach((e) => {
    el("line", {
      class: "edge " + e.origin, x1: e.s.x.toFixed(1), y1: e.s.y.toFixed(1),
      x2: e.t.x.toFixed(1), y2: e.t.y.toFixed(1), "data-origin": e.origin,
    }, edgeLayer);
  });
  nodes.forEach((n) => {
    const g = el("g", { transform: `translate(${n.x.toFixed(1)},${n.y.toFixed(1)})`, "data-id": n.id }, nodeLayer);
    const title = el("title", {}, g);
    if (n.kind === "account") {
      const a = n.data;
      g.setAttribute("class", "node account band-" + (a.band || "none") + (n === centre ? " centre" : ""));
      el("circle", { r: n === centre ? 14 : 10 }, g);
      const disposition = a.disposition ? named("dispositions", a.disposition) : "–";
      title.textContent = `${a.name} ${a.account_id} · ${words.band || "band"} ${named("bands", a.band || "none")} · ${disposition} · ${words.calls || "calls"} ${a.calls}`;
      if (n !== centre) {
        g.style.cursor = "pointer";
        g.addEventListener("click", () => { window.location.href = `/accounts/${a.pk}/network`; });
      }
    } else {
      const e = n.data;
      g.setAttribute("class", "node entity kind-" + e.kind + (e.accounts >= HUB ? " hub" : ""));
      el("rect", { x: -7, y: -7, width: 14, height: 14, rx: 2 }, g);
      const held = (words.held_by || "held by %(n)s accounts").replace("%(n)s", String(e.accounts));
      title.textContent = `${named("kinds", e.kind)}: ${e.shown} · ${held}`;
    }
    const label = el("text", { x: 14, y: 4 }, g);
    label.textContent = n.kind === "entity" && n.data.accounts > 1 ? `${n.label} (${n.data.accounts})` : n.label;
  });
  host.appendChild(svg);
})();
