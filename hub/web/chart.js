// Stacked-column charts in plain SVG, written for the hub (no library, no CDN).
// drawStacked(el, bins, series, opts): one column per bin, one segment per series key,
// a tooltip with every value on hover. Columns carry class "bin" and data-t (seconds of the
// lecture's video). opts.onPick(bin) runs when a column is clicked (or Enter on a focused chart);
// the returned chart's setPlayhead(t) draws a line at video time t (null hides it).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function pct(v) { return v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`; }

// series: [{key, label, color, value: bin => number|null}]
// the chart's box in a container: its svg (titled), the axis group, margins and plot size
function frame(container, o) {
  container.replaceChildren();
  container.classList.add("chart");
  const width = Math.max(320, container.clientWidth || 900);
  const m = { l: 40, r: 10, t: 10, b: 26 };
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${o.height}`, role: "img", "aria-label": o.title }, container);
  svgEl("title", {}, svg).textContent = o.title;
  return { svg, axis: svgEl("g", { class: "axis" }, svg), m, width, w: width - m.l - m.r, h: o.height - m.t - m.b };
}

function drawStacked(container, bins, series, opts) {
  const o = Object.assign({ height: 220, title: "", info: () => "" }, opts || {});
  const { svg, axis, m, width, w, h } = frame(container, o);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = m.t + h * (1 - f);
    svgEl("line", { x1: m.l, x2: m.l + w, y1: y, y2: y }, axis);
    svgEl("text", { x: m.l - 6, y: y + 4, "text-anchor": "end" }, axis).textContent = `${f * 100}%`;
  }
  const n = Math.max(1, bins.length);
  const colW = w / n;
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(w / 60))));
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  container.appendChild(tip);
  function showTip(b, left, top) {
    const { h, replace } = window.emocastDom;  // labels come from kiosks: text nodes, never markup
    replace(tip, h("div", null, h("b", null, clock(b.t)), " ", o.info(b)),
            series.map(s => h("div", null, h("b", { style: { color: s.color } }, "■"), ` ${s.label}: ${pct(s.value(b))}`)));
    tip.hidden = false;
    const box = container.getBoundingClientRect();
    tip.style.left = `${Math.min(left + 12, box.width - 180)}px`;
    tip.style.top = `${top + 12}px`;
  }
  // the keyboard: focus the chart, arrows walk its bins (the tooltip says their values), Enter picks one
  svg.setAttribute("tabindex", "0");
  svg.setAttribute("aria-label", `${o.title}: arrow keys read each bin, Enter plays the video from it`);
  let focused = -1;
  svg.addEventListener("keydown", ev => {
    if (!bins.length) return;
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      focused = Math.min(bins.length - 1, Math.max(0, focused + (ev.key === "ArrowRight" ? 1 : -1)));
      showTip(bins[focused], m.l + (focused + 0.5) * colW * (container.clientWidth / width), m.t);
      svg.dataset.focused = String(focused);
      ev.preventDefault();
    } else if (ev.key === "Enter" && focused >= 0 && o.onPick) {
      o.onPick(bins[focused]);
    } else if (ev.key === "Escape") {
      tip.hidden = true;
    }
  });
  svg.addEventListener("blur", () => { tip.hidden = true; });
  bins.forEach((b, i) => {
    const x = m.l + i * colW;
    const g = svgEl("g", { class: "bin", "data-t": b.t }, svg);
    let acc = 0;
    for (const s of series) {
      const v = s.value(b);
      if (!v) continue;
      const y = m.t + h * (1 - acc - v);
      svgEl("rect", { x: x + 0.5, y, width: Math.max(0.5, colW - 1), height: h * v, fill: s.color,
                      "data-key": s.key }, g);
      acc += v;
    }
    svgEl("rect", { x, y: m.t, width: colW, height: h, fill: "transparent", class: "hover" }, g);
    if (i % every === 0) {
      svgEl("text", { x: x + colW / 2, y: o.height - 8, "text-anchor": "middle" }, axis).textContent = clock(b.t);
    }
    g.addEventListener("mousemove", ev => {
      const box = container.getBoundingClientRect();
      showTip(b, ev.clientX - box.left, ev.clientY - box.top);
    });
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
    if (o.onPick) g.addEventListener("click", () => o.onPick(b));
  });
  const binLen = bins.length ? (bins[0].length_s || 60) : 60;
  const playhead = svgEl("line", { class: "playhead", y1: m.t, y2: m.t + h, visibility: "hidden" }, svg);
  function setPlayhead(t) {
    const at = t === null || !bins.length ? -1 : (t - bins[0].t) / binLen;
    if (at < 0 || at > n) { playhead.setAttribute("visibility", "hidden"); return; }
    const x = m.l + at * colW;
    playhead.setAttribute("x1", x); playhead.setAttribute("x2", x);
    playhead.setAttribute("visibility", "visible");
  }
  return { svg, setPlayhead };
}

// drawLines(el, series, opts): one line per series over a shared time axis (seconds of the lecture
// video), 0-100% up; series: [{label, color, dash, points: [[t, value|null]]}]; a gap where null.
function drawLines(container, series, opts) {
  const o = Object.assign({ height: 260, title: "" }, opts || {});
  const { svg, axis, m, w, h } = frame(container, o);
  const tMax = Math.max(1, ...series.flatMap(s => s.points.map(p => p[0])));
  const x = t => m.l + (t / tMax) * w, y = v => m.t + h * (1 - v);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    svgEl("line", { x1: m.l, x2: m.l + w, y1: y(f), y2: y(f) }, axis);
    svgEl("text", { x: m.l - 6, y: y(f) + 4, "text-anchor": "end" }, axis).textContent = `${f * 100}%`;
  }
  for (let i = 0; i <= 5; i++) {
    svgEl("text", { x: x(tMax * i / 5), y: o.height - 8, "text-anchor": "middle" }, axis).textContent = clock(tMax * i / 5);
  }
  for (const s of series) {
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    }
    svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": 2.5, "stroke-dasharray": s.dash || "",
                    class: "series", "data-label": s.label }, svg);
  }
  return svg;
}

window.emocastChart = { drawStacked, drawLines, clock, pct };
