// Charts in plain SVG, written for the hub (no library, no CDN).
//
// drawStacked(el, bins, series, opts): one column per bin, as wide as the bin is long (the last, partial
// bin is narrower), one segment per series key, separated by a gap of the page's background and filled
// with the series' pattern, so states never rely on colour alone (no three colours can be 3:1 apart and
// from a dark background at once). A bin whose shares are withheld ([privacy] min_faces) is hatched and
// labelled on the chart. Columns carry class "bin" and data-t (seconds of the lecture's video).
// opts.onPick(bin) runs when a column is clicked (or Enter on a focused chart); the returned chart's
// setPlayhead(t) draws a line at video time t (null hides it).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
let patternIds = 0;  // pattern ids unique in the page: each chart and swatch has its own defs

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

// the fill patterns, drawn in the page's background colour over a segment's own colour (CSS styles
// `pattern .mark`): "stripes" and "dots" for states after the first; "hatch" for a withheld bin
function defs(svg) {
  const d = svgEl("defs", {}, svg);
  const id = ++patternIds;
  const stripes = svgEl("pattern", { id: `stripes-${id}`, width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                     patternTransform: "rotate(45)" }, d);
  svgEl("rect", { class: "mark", x: 0, y: 0, width: 2, height: 6 }, stripes);
  const dots = svgEl("pattern", { id: `dots-${id}`, width: 5, height: 5, patternUnits: "userSpaceOnUse" }, d);
  svgEl("circle", { class: "mark", cx: 2.5, cy: 2.5, r: 1.2 }, dots);
  const hatch = svgEl("pattern", { id: `hatch-${id}`, width: 8, height: 8, patternUnits: "userSpaceOnUse",
                                   patternTransform: "rotate(-45)" }, d);
  svgEl("rect", { class: "hatch-line", x: 0, y: 0, width: 1.5, height: 8 }, hatch);
  return { stripes: `url(#stripes-${id})`, dots: `url(#dots-${id})`, hatch: `url(#hatch-${id})` };
}

// a legend's sample of a series: its colour and pattern (stacked charts) or its dash (lines)
function swatch(s) {
  const svg = svgEl("svg", { class: "swatch", width: 28, height: 14, viewBox: "0 0 28 14", "aria-hidden": "true" });
  if (s.dash !== undefined) {
    svgEl("line", { x1: 1, x2: 27, y1: 7, y2: 7, stroke: s.color, "stroke-width": 2.5,
                    "stroke-dasharray": s.dash || "" }, svg);
    return svg;
  }
  const p = defs(svg);
  if (s.withheld) {
    svgEl("rect", { x: 0, y: 0, width: 28, height: 14, class: "withheld-bg" }, svg);
    svgEl("rect", { x: 0, y: 0, width: 28, height: 14, fill: p.hatch }, svg);
    return svg;
  }
  svgEl("rect", { x: 0, y: 0, width: 28, height: 14, fill: s.color }, svg);
  if (s.pattern && p[s.pattern]) svgEl("rect", { x: 0, y: 0, width: 28, height: 14, fill: p[s.pattern] }, svg);
  return svg;
}

// series: [{key, label, color, pattern, value: bin => number|null}]
// the chart's box in a container: its svg (titled), the axis group, margins and plot size
function frame(container, o) {
  container.replaceChildren();
  container.classList.add("chart");
  const width = Math.max(300, container.clientWidth || 900);
  const m = { l: 40, r: 12, t: 10, b: 26 };
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${o.height}`, role: "img", "aria-label": o.title }, container);
  svgEl("title", {}, svg).textContent = o.title;
  return { svg, axis: svgEl("g", { class: "axis" }, svg), m, width, w: width - m.l - m.r, h: o.height - m.t - m.b };
}

function yGrid(axis, m, w, y) {
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    svgEl("line", { x1: m.l, x2: m.l + w, y1: y(f), y2: y(f) }, axis);
    svgEl("text", { x: m.l - 6, y: y(f) + 4, "text-anchor": "end" }, axis).textContent = `${f * 100}%`;
  }
}

// a label centred on the x axis, kept inside the chart (the first and last would be cut off)
function xLabel(axis, x, y, text, left, right) {
  const anchor = x - left < 18 ? "start" : right - x < 18 ? "end" : "middle";
  svgEl("text", { x, y, "text-anchor": anchor }, axis).textContent = text;
}

function drawStacked(container, bins, series, opts) {
  const o = Object.assign({ height: 220, title: "", info: () => "", withheldLabel: "withheld" }, opts || {});
  const { svg, axis, m, width, w, h } = frame(container, o);
  const p = defs(svg);
  yGrid(axis, m, w, f => m.t + h * (1 - f));
  const t0 = bins.length ? bins[0].t : 0;
  const last = bins[bins.length - 1];
  const span = last ? Math.max(1e-9, last.t + (last.length_s || 60) - t0) : 60;
  const xAt = t => m.l + ((t - t0) / span) * w;
  const every = Math.max(1, Math.ceil(bins.length / Math.max(1, Math.floor(w / 60))));
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  container.appendChild(tip);
  function showTip(b, left, top) {
    const { h, replace } = window.emocastDom;  // labels come from kiosks: text nodes, never markup
    const rows = b.withheld
      ? [h("div", { class: "withheld-tip" }, `no shares: ${b.withheld}`)]
      : series.map(s => h("div", null, h("b", { style: { color: s.color } }, "■"), ` ${s.label}: ${pct(s.value(b))}`));
    replace(tip, h("div", null, h("b", null, clock(b.t)), " ", o.info(b)), rows);
    tip.hidden = false;
    const box = container.getBoundingClientRect();
    const room = Math.max(0, box.width - tip.offsetWidth - 4);
    tip.style.left = `${Math.max(0, Math.min(left + 12, room))}px`;  // never past the chart's right edge
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
      const b = bins[focused];
      showTip(b, (xAt(b.t) + (b.length_s || 0) / span * w / 2) * (container.clientWidth / width), m.t);
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
    const x = xAt(b.t), colW = Math.max(0.5, ((b.length_s || 0) / span) * w);
    const g = svgEl("g", { class: b.withheld ? "bin withheld" : "bin", "data-t": b.t }, svg);
    if (b.withheld) {
      g.setAttribute("data-withheld", b.withheld);
      svgEl("rect", { x, y: m.t, width: colW, height: h, class: "withheld-bg" }, g);
      svgEl("rect", { x, y: m.t, width: colW, height: h, fill: p.hatch, class: "hatch" }, g);
    } else {
      let acc = 0;
      for (const s of series) {
        const v = s.value(b);
        if (!v) continue;
        const y = m.t + h * (1 - acc - v);
        const attrs = { x: x + 0.5, y, width: Math.max(0.5, colW - 1), height: h * v };
        svgEl("rect", Object.assign({ fill: s.color, "data-key": s.key, class: "seg" }, attrs), g);
        if (s.pattern && p[s.pattern]) {
          svgEl("rect", Object.assign({ fill: p[s.pattern], "data-pattern": s.pattern, class: "pat" }, attrs), g);
        }
        acc += v;
      }
    }
    svgEl("rect", { x, y: m.t, width: colW, height: h, fill: "transparent", class: "hover" }, g);
    if (i % every === 0) xLabel(axis, x + colW / 2, o.height - 8, clock(b.t), m.l, m.l + w);
    g.addEventListener("mousemove", ev => {
      const box = container.getBoundingClientRect();
      showTip(b, ev.clientX - box.left, ev.clientY - box.top);
    });
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
    if (o.onPick) g.addEventListener("click", () => o.onPick(b));
  });
  // each run of withheld bins says so on the chart, where it is wide enough for the words
  const runs = [];
  bins.forEach((b, i) => {
    if (!b.withheld) return;
    const prev = runs[runs.length - 1];
    if (prev && prev.end === i - 1) prev.end = i; else runs.push({ start: i, end: i });
  });
  for (const r of runs) {
    const a = bins[r.start], z = bins[r.end];
    const x0 = xAt(a.t), x1 = xAt(z.t) + ((z.length_s || 0) / span) * w;
    // across the run where it is wide enough, else up its height (a phone's narrow columns)
    const across = x1 - x0 >= 7 * o.withheldLabel.length;
    const up = !across && x1 - x0 >= 12 && h >= 7 * o.withheldLabel.length;
    const text = across || up ? o.withheldLabel : x1 - x0 >= 40 ? "withheld" : null;
    if (!text) continue;
    const cx = (x0 + x1) / 2, cy = m.t + h / 2;
    const label = svgEl("text", { x: cx, y: cy, "text-anchor": "middle", "dominant-baseline": "central",
                                  class: "withheld-label", transform: up ? `rotate(-90 ${cx} ${cy})` : "" }, svg);
    label.textContent = text;
  }
  const playhead = svgEl("line", { class: "playhead", y1: m.t, y2: m.t + h, visibility: "hidden" }, svg);
  function setPlayhead(t) {
    if (t === null || !bins.length || t < t0 || t > t0 + span) { playhead.setAttribute("visibility", "hidden"); return; }
    const x = xAt(t);
    playhead.setAttribute("x1", x); playhead.setAttribute("x2", x);
    playhead.setAttribute("visibility", "visible");
  }
  return { svg, setPlayhead };
}

// drawLines(el, series, opts): one line per series over a shared time axis (seconds of the lecture
// video), 0-100% up; series: [{label, color, dash, points: [[t, value|null]]}]. A null (a withheld or
// empty bin) breaks the line, and each piece ends in a marker, so a gap shows and a lone point is a dot.
function drawLines(container, series, opts) {
  const o = Object.assign({ height: 260, title: "" }, opts || {});
  const { svg, axis, m, w, h } = frame(container, o);
  const tMax = Math.max(1, ...series.flatMap(s => s.points.map(p => p[0])));
  const x = t => m.l + (t / tMax) * w, y = v => m.t + h * (1 - v);
  yGrid(axis, m, w, y);
  const step = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200].find(s => tMax / s <= 6) || 7200;
  for (let t = 0; t <= tMax + 1e-9; t += step) xLabel(axis, x(t), o.height - 8, clock(t), m.l, m.l + w);
  for (const s of series) {
    const pieces = [];
    let piece = [];
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { if (piece.length) pieces.push(piece); piece = []; continue; }
      piece.push([x(t), y(v)]);
    }
    if (piece.length) pieces.push(piece);
    const d = pieces.map(pc => pc.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join(" "))
      .join(" ");
    const g = svgEl("g", { class: "line", "data-label": s.label }, svg);
    svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": 2.5, "stroke-dasharray": s.dash || "",
                    class: "series", "data-label": s.label, "data-pieces": pieces.length }, g);
    for (const pc of pieces) {
      const ends = pc.length === 1 ? [pc[0]] : [pc[0], pc[pc.length - 1]];
      for (const [px, py] of ends) {
        svgEl("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: pc.length === 1 ? 4 : 3, fill: s.color,
                          class: pc.length === 1 ? "marker lone" : "marker" }, g);
      }
    }
  }
  return svg;
}

window.emocastChart = { drawStacked, drawLines, clock, pct, swatch };
