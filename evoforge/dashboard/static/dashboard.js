// evoforge dashboard: polling of server-rendered fragments and the score chart (Chart.js).
"use strict";
const evoforge = (() => {
  function stamp(ok) {
    const el = document.getElementById("live");
    if (el) el.textContent = (ok ? "live, updated " : "update failed at ") + new Date().toLocaleTimeString();
  }

  // Replace an element's content with the fragment the server renders (already escaped).
  function pollFragment(id, ms) {
    const el = document.getElementById(id);
    const url = el.dataset.fragment;
    async function tick() {
      try {
        const r = await fetch(url, {cache: "no-store"});
        if (r.ok) { el.innerHTML = await r.text(); stamp(true); } else { stamp(false); }
      } catch (e) { stamp(false); }
      setTimeout(tick, ms);
    }
    setTimeout(tick, ms);
  }

  const COLOURS = {ok: "#2563eb", failed: "#dc2626", timeout: "#f97316",
                   duplicate: "#a3a3a3", rejected: "#7c3aed"};
  const LINE_COLOURS = ["#6b7280", "#059669", "#d97706", "#db2777", "#0891b2", "#65a30d"];

  // Score over evaluations: a scatter per status, the best-so-far line, horizontal lines.
  function scoreChart(id, cfg) {
    const unscored = [];  // points without a score, drawn on the lower edge
    const byStatus = {};
    const best = [];
    let bestFitness = -Infinity, lastEval = 0, after = -1, low = Infinity, high = -Infinity;
    const datasets = [];
    for (const s of Object.keys(COLOURS)) {
      byStatus[s] = {label: s, data: [], backgroundColor: COLOURS[s], borderColor: COLOURS[s],
                     pointRadius: 3, showLine: false};
      datasets.push(byStatus[s]);
    }
    const bestSet = {label: "best so far", data: best, type: "line", stepped: true,
                     borderColor: "#111827", borderWidth: 2, pointRadius: 0, fill: false};
    datasets.push(bestSet);
    const lines = [];
    Object.entries(cfg.lines || {}).forEach(([name, y], i) => {
      const ds = {label: name, data: [], type: "line", borderDash: [6, 4], borderWidth: 1.5,
                  borderColor: LINE_COLOURS[i % LINE_COLOURS.length], pointRadius: 0, fill: false, y: y};
      lines.push(ds); datasets.push(ds);
      low = Math.min(low, y); high = Math.max(high, y);
    });
    const chart = new Chart(document.getElementById(id), {
      type: "scatter", data: {datasets},
      options: {animation: false, maintainAspectRatio: false, parsing: true,
                scales: {x: {title: {display: true, text: "evaluations"}},
                         y: {title: {display: true, text: "score"}}},
                plugins: {tooltip: {callbacks: {label: (c) => {
                  const p = c.raw; return p.id ? `candidate ${p.id}: ${p.score ?? p.status}` : `${c.dataset.label}: ${p.y}`;
                }}}},
                onClick: (ev, items) => {
                  const p = items.length && items[0].element.$context.raw;
                  if (p && p.id) window.location.href = `/candidates/${p.id}`;
                }}});
    function redraw() {
      // a row just below the lowest score, so that no scored point hides among them
      const lo = Number.isFinite(low) ? low : 0, hi = Number.isFinite(high) ? high : 0;
      const span = (hi - lo) || Math.abs(lo) || 1;
      for (const p of unscored) p.y = lo - 0.06 * span;
      const x1 = Math.max(lastEval, 1);
      for (const ds of lines) ds.data = [{x: 0, y: ds.y}, {x: x1, y: ds.y}];
      chart.update("none");
    }
    async function tick() {
      try {
        const r = await fetch(`${cfg.points}?after=${after}`, {cache: "no-store"});
        if (r.ok) {
          const body = await r.json();
          for (const p of body.points) {
            lastEval = p.evaluation;
            const point = {x: p.evaluation, y: p.score, id: p.id, score: p.score, status: p.status};
            if (p.score === null) {
              unscored.push(point);
            } else {
              low = Math.min(low, p.score); high = Math.max(high, p.score);
            }
            (byStatus[p.status] || byStatus.rejected).data.push(point);
            if (p.status === "ok" && p.fitness !== null && p.fitness > bestFitness) {
              bestFitness = p.fitness;
              best.push({x: p.evaluation, y: p.score});
            }
          }
          if (best.length) {
            const tail = best[best.length - 1];
            if (body.points.length) best.push({x: lastEval, y: tail.y});
          }
          after = body.last_seq;
          redraw();
        }
      } catch (e) { /* the next tick tries again */ }
      setTimeout(tick, cfg.poll_ms);
    }
    tick();
    return chart;
  }

  return {pollFragment, scoreChart};
})();
