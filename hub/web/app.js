// The hub's pages: lectures ("/"), devices ("/devices"), one lecture's timeline ("/lectures/<id>") and
// lectures compared ("/compare?ids=").
"use strict";

// colours come from /static/palette.json (one palette with `emocast analyze --plot`; its "dark" states
// on a dark page); labels, patterns and one-line definitions travel with every series, so colour is
// never the only cue
let PALETTE = { states: {}, emotions: {}, spare: ["#777777"], lines: ["#777777"], dark: { states: {} } };
const STATES = [
  { key: "attentive", label: "attentive", pattern: null,
    help: "share of the present faces' time turned to the screen, eyes open" },
  { key: "looking_away", label: "looking away", pattern: "stripes",
    help: "share of the present faces' time with the head or the eyes turned off the screen" },
  { key: "eyes_closed", label: "eyes closed", pattern: "dots",
    help: "share of the present faces' time with both eyes shut longer than a blink" },
];
const REDRAW_MS = 500;  // events that arrive together are drawn once
const DARK = window.matchMedia("(prefers-color-scheme: dark)");

const view = document.getElementById("view");
const { h, replace } = window.emocastDom;
const DATE = { dateStyle: "medium", timeStyle: "short" };
const when = ts => ts ? new Date(ts * 1000).toLocaleString(undefined, DATE) : "–";
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// a length in words: "42 s", "47 min", "1 h 05 min"
function length(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// when a lecture took place, in words a teacher reads: a recording's date (or when it was imported,
// where its file carried none), or a live lecture's start
function dated(l, short) {
  if (!l.recorded) return when(l.start);
  if (l.recorded_on) return `recorded ${when(l.recorded_on)}`;
  return `imported ${when(l.created)}` + (short ? "" : " (the recording carries no date)");
}

class ApiError extends Error {
  constructor(path, status, detail) {
    super(`${path}: ${status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
  }
}

// what the API said, as a sentence: its "detail" (a string, or the fields a form got wrong)
function said(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map(d => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  return "no reason given";
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" } }, options || {}));
  if (!res.ok) {
    let detail = await res.text();
    try { detail = JSON.parse(detail).detail; } catch (e) { /* not JSON: the text itself */ }
    throw new ApiError(path, res.status, detail);
  }
  return res.json();
}

async function health() {
  const out = document.getElementById("health");
  try {
    const res = await fetch("/api/health");
    const hl = await res.json();
    const i = hl.ingest;
    out.textContent = `v${hl.version} · ${hl.database}` +
      (i ? ` · broker ${i.mqtt_connected ? "connected" : "not connected"} · ` +
           `${plural(i.stored, "live event", "live events")} received since the hub started (imports not counted)` : "") +
      (hl.ok ? "" : ` · not ok: ${(hl.problems || []).join("; ")}`) +
      ((hl.warnings || []).length ? ` · warning: ${hl.warnings.join("; ")}` : "");
    const p = hl.privacy || {};
    document.getElementById("privacy").textContent = `Privacy: emotion ${p.emotion === false ? "off (never stored or shown)" : "on"}` +
      (p.min_faces > 1 ? ` · no shares for fewer than ${p.min_faces} faces` : " · shares for any number of faces");
  } catch (e) { out.textContent = "the hub is not answering"; }
}

// a table in a box that scrolls sideways on a narrow screen, and says so when it does (scrollHints)
function table(id, headers, rows, empty) {
  return h("div", { class: "table-box" },
    h("p", { class: "scroll-hint muted", hidden: true }, "Wider than the screen: scroll the table sideways →"),
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": `${id.replace(/-table$/, "")} table` }, h("table", { id },
      h("thead", null, h("tr", null, headers.map(t => h("th", null, t)))),
      h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: headers.length, class: "muted" }, empty))))));
}

function scrollHints() {
  for (const wrap of document.querySelectorAll(".table-wrap")) {
    const more = wrap.scrollWidth > wrap.clientWidth + 1;
    wrap.classList.toggle("scrolls", more);
    const hint = wrap.parentElement && wrap.parentElement.querySelector(".scroll-hint");
    if (hint) hint.hidden = !more;
  }
}
window.addEventListener("resize", scrollHints);

function deviceRow(d) {
  return h("tr", { "data-device": d.device, class: d.emotion_conflict ? "conflict" : null },
    h("td", null, d.device),
    h("td", { class: d.status }, d.status, d.emotion_conflict ? " · infers emotion (dropped here)" : null),
    h("td", null, when(d.last_seen)),
    [d.events, d.missing_seq, d.outbox_depth ?? "–", d.dropped_events ?? "–", d.rejected].map(v => h("td", null, v)),
    h("td", { class: d.clock_skew_s != null && Math.abs(d.clock_skew_s) > 60 ? "conflict" : null },
      d.clock_skew_s == null ? "–" : `${d.clock_skew_s > 0 ? "+" : ""}${d.clock_skew_s} s`));
}

// what a lecture's data comes from: "8 recordings" or "2 kiosks" (n: how many; default, all of them)
function sources(l, n = l.devices.length) {
  return l.recorded ? plural(n, "recording", "recordings") : plural(n, "kiosk", "kiosks");
}

function lectureRow(l) {
  return h("tr", { "data-lecture": l.id },
    h("td", null, h("input", { type: "checkbox", name: "compare", value: l.id, "aria-label": `compare ${l.title}` })),
    h("td", null, h("a", { href: `/lectures/${encodeURIComponent(l.id)}` }, l.title)),
    h("td", { class: "when", title: l.recorded && !l.recorded_on ? "the recording carries no date" : null }, dated(l, true)),
    h("td", { class: "length" }, l.live ? h("span", { class: "pill" }, "live") : length(l.duration_s)),
    h("td", { title: l.devices.join(", ") }, sources(l)));
}

function newLectureForm(kiosks) {
  if (!kiosks.length) {
    return h("p", { class: "muted", id: "no-kiosks" }, "No kiosk has reported to this hub yet. A live lecture " +
      "takes its data from the kiosks in its room: start them first, then start the lecture here. A recorded " +
      "lecture comes in with `emocast hub import`.");
  }
  const problem = h("p", { class: "form-problem", role: "alert" });
  const form = h("form", { class: "inline", id: "new-lecture" },
    h("label", null, "Title ", h("input", { name: "title", required: true, maxlength: 200, placeholder: "Biology, period 3" })),
    h("label", null, "Kiosks in the room ", h("select", { name: "devices", multiple: true, required: true,
                                                           size: Math.min(4, Math.max(2, kiosks.length)) },
      kiosks.map(d => h("option", { value: d.device }, d.device)))),
    h("label", null, "Video offset (s) ", h("input", { name: "video_offset_s", type: "number", min: 0, value: 0, step: 1 })),
    h("button", { type: "submit" }, "Start lecture"), problem);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const devices = [...form.devices.selectedOptions].map(o => o.value);
    if (!devices.length) { problem.textContent = "Choose the kiosks in the room (a lecture with none gets no data)."; return; }
    const body = { title: form.title.value, devices, video_offset_s: Number(form.video_offset_s.value || 0) };
    try {
      const lecture = await api("/api/lectures", { method: "POST", body: JSON.stringify(body) });
      location.href = `/lectures/${encodeURIComponent(lecture.id)}`;
    } catch (e) { problem.textContent = `Not started: ${e instanceof ApiError ? said(e.detail) : e.message}`; }
  });
  return form;
}

async function home() {
  document.title = "Lectures · emocast hub";
  const [devices, lectures] = await Promise.all([api("/api/devices"), api("/api/lectures")]);
  const note = h("p", { id: "compare-note", role: "status", class: "muted" });
  replace(view,
    h("h2", null, "Lectures"), newLectureForm(devices.filter(d => d.source !== "recording")),
    table("lectures", ["", "title", "when", "length", "from"], lectures.map(lectureRow), "No lecture yet."),
    h("button", { id: "compare", type: "button", on: { click: () => {
      const ids = [...document.querySelectorAll("input[name=compare]:checked")].map(c => c.value);
      if (!ids.length) { note.textContent = "Check the lectures to compare first (the boxes in the first column)."; return; }
      location.href = `/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
    } } }, "Compare the checked lectures"), note,
    h("p", { class: "muted" }, "Kiosks' health, and what they sent that the hub refused: ",
      h("a", { href: "/devices" }, "Devices"), "."));
  scrollHints();
}

async function devicesPage() {
  document.title = "Devices · emocast hub";
  const [devices, refused] = await Promise.all([api("/api/devices"), api("/api/rejects")]);
  const kiosks = devices.filter(d => d.source !== "recording"), recordings = devices.filter(d => d.source === "recording");
  replace(view,
    h("h2", null, "Kiosks"),
    table("devices", ["kiosk", "status", "last seen", "events", "missing", "outbox", "dropped", "refused", "clock"],
          kiosks.map(deviceRow), "No kiosk has reported yet."),
    h("p", { class: "muted" }, "missing: events between the first and last stored that never arrived; outbox: events " +
      "waiting on the kiosk; dropped: events the kiosk had to drop (its outbox was full); refused: messages the hub " +
      "would not store, and why, under Refused messages below; clock: the kiosk's clock less the hub's (over a " +
      "minute: its events land at the wrong time of a lecture; set its NTP)."),
    h("h2", null, "Refused messages"),
    table("rejects", ["kiosk", "kind", "how many", "why (the latest)", "last"], refused.map(r =>
      h("tr", null, h("td", null, r.device), h("td", null, r.kind), h("td", null, r.count),
        h("td", null, r.last_error), h("td", null, when(r.last_ts)))), "None: the hub stored everything it was sent."),
    h("h2", null, "Recordings"),
    table("recordings", ["recording", "lecture", "events"], recordings.map(d => h("tr", { "data-device": d.device },
      h("td", null, d.device),
      h("td", null, d.lecture ? h("a", { href: `/lectures/${encodeURIComponent(d.lecture)}` }, d.lecture_title || d.lecture) : "–"),
      h("td", null, d.events))), "No recording imported (emocast hub import)."));
  scrollHints();
}

function stateSeries() {
  const dark = DARK.matches ? (PALETTE.dark || {}).states || {} : {};
  return STATES.map(s => Object.assign({ value: b => b[`${s.key}_share`] ?? 0,
                                         color: dark[s.key] || PALETTE.states[s.key] || "#777777" }, s));
}

function emotionSeries(bins) {
  const labels = [...new Set(bins.flatMap(b => Object.keys(b.emotion_shares || {})))].sort();
  let spare = 0;
  return labels.map(k => ({ key: k, label: k,
                            color: PALETTE.emotions[k] || PALETTE.spare[spare++ % PALETTE.spare.length],
                            help: `share of the attentive faces' time whose expression was read as ${k}`,
                            value: b => (b.emotion_shares || {})[k] ?? 0 }));
}

function legend(series, withheld) {
  const { swatch } = window.emocastChart;
  const items = series.map(s => h("span", { title: s.help || null, "data-key": s.key || null }, swatch(s), s.label));
  if (withheld) items.push(h("span", { class: "withheld-key" }, swatch({ withheld: true }), withheld));
  return h("div", { class: "legend" }, items);
}

// one kind of moment: a list of times (buttons that play the video there), or "none" and why
function momentList(id, items, verb, seek, because) {
  const { clock } = window.emocastChart;
  const rows = [...items].sort((a, b) => a.t - b.t).map(m => h("li", null,
    seek ? h("button", { class: "seek", type: "button", "data-t": m.t, title: "play the video from here",
                         on: { click: () => seek(m.t) } }, clock(m.t)) : clock(m.t),
    `: ${verb} ${Math.abs(m.points ?? m.change * 100).toFixed(0)} points` + (m.toward ? ` toward ${m.toward}` : "") +
    (m.faces !== undefined ? ` (${Number(m.faces).toFixed(1)} faces)` : "")));
  return h("ul", { "data-moments": id },
           rows.length ? rows : h("li", { class: "muted none" }, because ? `none: ${because}` : "none"));
}

// a lecture's moments as the lecture page and the comparison both list them (emotion swings: the page's)
function momentLists(mo, seek, swings) {
  const because = mo.none_because || {};
  return [
    h("p", null, "Attention dropped"),
    momentList("drops", mo.attention_drops, "attentive share fell by", seek, because.attention_drops),
    h("p", null, "Attention recovered"),
    momentList("recoveries", mo.attention_recoveries, "attentive share rose by", seek, because.attention_recoveries),
    swings && [h("p", null, "Emotion swings"),
               momentList("swings", mo.emotion_swings || [], "mix changed by", seek, because.emotion_swings)],
  ];
}

function momentRules(mo) {
  const r = mo.rules;
  if (!r) return null;
  return h("p", { class: "muted rules" }, `A moment: the share moving ${r.min_change_points} points or more between ` +
    `neighbouring bins of ${r.bin_s} s, carried by at least ${r.min_face_time_s} s of faces' time; ` +
    "a recovery only after a drop. They are found at the lecture's own bin length, whatever the charts show.");
}

// The lecture's video: the hub's copy ([web] video_dir) or a file from the teacher's own computer (an
// object URL: the file never leaves the browser). Beside the charts on a wide screen and held in view
// on a narrow one; charts follow it with a playhead, and a click on a chart or a moment plays it there.
function videoPanel() {
  const video = h("video", { id: "lecture-video", controls: true, preload: "metadata", hidden: true });
  const playing = h("span", { id: "video-source", class: "muted" }, "No video open.");
  const input = h("input", { id: "video-file", type: "file", accept: "video/*", class: "visually-hidden" });
  const open = h("label", { for: "video-file", class: "button", id: "video-open" }, "Open the video from this computer");
  const panel = h("section", { class: "video", "aria-label": "lecture video" }, video,
    h("p", { class: "video-controls" }, playing, " ", input, open),  // the input first: its focus outlines the label
    h("p", { class: "muted small" }, "A file opened here stays on this computer."));
  const show = (src, text) => {
    if (video.src.startsWith("blob:")) URL.revokeObjectURL(video.src);
    video.src = src;
    video.hidden = false;
    panel.classList.add("has-video");
    playing.textContent = text;
    open.textContent = "Open another copy";
  };
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (file) show(URL.createObjectURL(file), `Playing ${file.name} (from this computer).`);
  });
  return { panel, video, show };
}

// the charts' numbers as a table, for screen readers and for those who would rather read
function binTable(bins, attention, emotions) {
  const { clock, pct } = window.emocastChart;
  const cols = [...attention, ...emotions];
  return h("details", { class: "bin-table" }, h("summary", null, "The same as a table"),
    table("bins-table", ["video time", "length", "faces", ...cols.map(c => c.label)], bins.map(b => h("tr", null,
      h("td", null, clock(b.t)), h("td", null, `${b.length_s} s`), h("td", null, b.faces.toFixed(1)),
      b.withheld ? h("td", { colspan: cols.length || 1, class: "muted" }, `withheld: ${b.withheld}`)
                 : cols.map(c => h("td", null, pct(c.value(b)))))), "No bins."));
}

// "How to read this": one line per figure on the page
function explain(privacy, rules) {
  const k = privacy && privacy.min_faces > 1 ? privacy.min_faces : null;
  const lines = [
    ["attentive", "of the time faces were present in a bin, the share turned to the screen with eyes open (solid)"],
    ["looking away", "the share with the head, or the eyes, turned off the screen (striped)"],
    ["eyes closed", "the share with both eyes shut for longer than a blink (dotted)"],
    ["faces", "how many faces were present on average in the bin; blinks/min is per face"],
    ["moments", rules ? `where the attentive share fell or rose by ${rules.min_change_points} points or more between ` +
      `neighbouring bins, carried by at least ${rules.min_face_time_s} s of faces' time` : "the largest changes"],
    (!privacy || privacy.emotion !== false) &&
      ["emotions", "of the attentive faces' time, the share whose expression was read as each emotion; " +
       "readings too unsure to call are left out. An expression is not a feeling"],
    k && ["withheld (hatched)", `a bin with fewer than ${k} faces present on average shows no shares, so no one's ` +
                                "own record appears; the hub's operator sets this ([privacy] min_faces)"],
  ].filter(Boolean);
  return h("details", { class: "explain" }, h("summary", null, "How to read this"),
    h("dl", null, lines.map(([term, def]) => [h("dt", null, term), h("dd", null, def)])));
}

function lectureHeader(l, binS, id, setBin, render) {
  const exportLink = (kind, text) => h("a", { id: `export-${kind}`, download: true,
    href: `/api/lectures/${encodeURIComponent(l.id)}/export.${kind}?bin_s=${l.bin_s}` }, text);
  const bin = h("select", { id: "bin", "aria-label": "bin length in seconds",
                            on: { change: ev => setBin(ev.target.value === "auto" ? null : Number(ev.target.value)) } },
    h("option", { value: "auto", selected: !binS }, `auto (${l.bin_s})`),
    [10, 30, 60, 120, 300].map(v => h("option", { selected: v === binS }, v)));
  const stop = l.live && h("button", { id: "stop", on: { click: async () => {
    await api(`/api/lectures/${encodeURIComponent(id)}/stop`, { method: "POST" });
    render();
  } } }, "End lecture");
  const span = l.recorded ? `${dated(l)} · ${length(l.duration_s)} of video`
    : l.live ? `started ${when(l.start)} · live for ${length(Date.now() / 1000 - l.start)}`
    : `${when(l.start)} – ${when(l.end)} · ${length(l.duration_s)}`;
  const names = l.devices.length > 4 ? `${l.devices.slice(0, 3).join(", ")} and ${l.devices.length - 3} more`
    : l.devices.join(", ") || "none";
  const from = h("span", { title: l.devices.join(", ") }, `${sources(l)}: ${names}`);
  return [
    h("h2", { id: "lecture-title" }, `${l.title} `,
      l.live ? h("span", { class: "pill", id: "live" }, "live")
             : h("span", { class: "pill ended" }, l.recorded ? "recorded" : "ended")),
    h("p", { class: "muted", id: "lecture-when" }, span),
    h("p", { class: "muted" }, from, " · bins of ", bin, " s · ", exportLink("csv", "CSV"), " · ", exportLink("json", "JSON"),
      stop ? [" · ", stop] : null),
  ];
}

function withheldNote(bins, id) {
  const n = bins.filter(b => b.withheld).length;
  if (!n) return null;
  const why = bins.find(b => b.withheld).withheld;
  return h("p", { class: "withheld-note", id }, `${n} of ${plural(bins.length, "bin", "bins")} withheld (hatched): ` +
    `${why}, so no one's own record is shown.`);
}

async function lecturePage(id) {
  let binS = Number(new URLSearchParams(location.search).get("bin_s")) || null;  // null: sized by the hub
  const head = h("div"), body = h("div", { class: "lecture-main" });
  const { panel, video, show } = videoPanel();
  let charts = [];
  const seek = t => {
    if (!video.src) return;
    video.currentTime = Math.max(0, t);
    video.play().catch(() => {});  // a browser may refuse to play without a gesture: the position is set
    if (panel.getBoundingClientRect().bottom < 0 || panel.getBoundingClientRect().top > innerHeight) {
      panel.scrollIntoView({ block: "nearest" });
    }
  };
  video.addEventListener("timeupdate", () => charts.forEach(c => c.setPlayhead(video.currentTime)));
  replace(view, head, h("div", { class: "lecture-layout" }, body, h("aside", { class: "lecture-side" }, panel)));
  // a new bin length redraws in place: the page is not reloaded, the video keeps playing
  const setBin = value => {
    binS = value;
    history.replaceState(null, "", location.pathname + (binS ? `?bin_s=${binS}` : ""));
    render().catch(showError);
  };
  async function render() {
    const data = await api(`/api/lectures/${encodeURIComponent(id)}/timeline` + (binS ? `?bin_s=${binS}` : ""));
    const l = Object.assign({ bin_s: data.bin_s }, data.lecture);
    document.title = `${l.title} · emocast hub`;
    if (l.video && !video.src) show(`/api/lectures/${encodeURIComponent(id)}/video`, `Playing ${l.video} (from the hub).`);
    const attention = stateSeries();
    const emotionOn = !data.privacy || data.privacy.emotion !== false;  // [privacy] emotion = false: none shown
    const emotions = emotionOn ? emotionSeries(data.bins) : [];
    const mo = data.moments;
    const k = data.privacy && data.privacy.min_faces;
    const withheld = data.bins.some(b => b.withheld) ? `withheld: fewer than ${k} faces` : null;
    const boxes = { attention: h("div", { id: "attention-chart" }), emotion: emotionOn && h("div", { id: "emotion-chart" }) };
    replace(head, lectureHeader(l, binS, id, setBin, render), explain(data.privacy, mo.rules));
    replace(body,
      h("h3", null, "Attention of the faces present"), legend(attention, withheld), boxes.attention,
      withheldNote(data.bins, "withheld-note"),
      emotionOn && [h("h3", null, "Emotions while attentive"), legend(emotions, withheld), boxes.emotion],
      binTable(data.bins, attention, emotions),
      h("h3", null, "Moments"), momentRules(mo),
      h("div", { class: "moments", id: "moments" }, momentLists(mo, seek, emotionOn)));
    const info = b => `· ${b.faces.toFixed(1)} faces · from ${sources(l, b.devices)}` +
      (b.blinks_per_min !== null && b.blinks_per_min !== undefined ? ` · ${b.blinks_per_min} blinks/min` : "");
    const pick = b => seek(b.t);
    const label = k ? `fewer than ${k} faces` : "withheld";
    charts = [window.emocastChart.drawStacked(boxes.attention, data.bins, attention,
                                              { title: "attention shares per bin", info, onPick: pick, withheldLabel: label })];
    if (emotionOn) charts.push(window.emocastChart.drawStacked(boxes.emotion, data.bins, emotions,
                                                               { title: "emotion shares of attentive face time", info,
                                                                 height: 180, onPick: pick, withheldLabel: label }));
    if (video.src) charts.forEach(c => c.setPlayhead(video.currentTime));
    scrollHints();
    view.dataset.updated = String(Date.now());
    view.dataset.bins = String(data.bins.length);
    if (l.live && !stream) listen();
  }
  redrawOnScheme = () => render().catch(showError);
  // a live lecture's page is told when events arrive (Server-Sent Events), then redraws; no polling.
  // One timeline request at a time: news that arrives while one is on its way asks for one more after it.
  let stream = null, busy = false, again = false;
  function listen() {
    stream = new EventSource(`/api/lectures/${encodeURIComponent(id)}/stream`);
    view.dataset.stream = "open";
    const redraw = () => {
      if (busy) { again = true; return; }
      busy = true;
      setTimeout(() => render().catch(showError).finally(() => {
        busy = false;
        if (again) { again = false; redraw(); }
      }), REDRAW_MS);
    };
    stream.addEventListener("changed", redraw);
    stream.addEventListener("ended", () => { stream.close(); view.dataset.stream = "ended"; redraw(); });
  }
  await render();
}

// several lectures' attentive shares on one axis of video time, their moments side by side
const DASHES = ["", "6 4", "2 3", "10 3 2 3", "1 5", "8 8", "4 2 1 2", "12 4"];

async function comparePage() {
  document.title = "Compare · emocast hub";
  const ids = new URLSearchParams(location.search).get("ids") || "";
  const data = await api(`/api/compare?ids=${encodeURIComponent(ids)}`);
  const lines = PALETTE.lines && PALETTE.lines.length ? PALETTE.lines : PALETTE.spare;
  const series = data.lectures.map((x, i) => ({
    label: x.lecture.title, color: lines[i % lines.length], dash: DASHES[i % DASHES.length],
    points: x.bins.map(b => [b.t, b.attentive_share]) }));
  const box = h("div", { id: "compare-chart" });
  const { clock, pct } = window.emocastChart;
  const gaps = data.lectures.map(x => {
    const held = x.bins.filter(b => b.withheld).length, empty = x.bins.filter(b => !b.withheld && b.attentive_share == null).length;
    return held || empty ? `${x.lecture.title}: ${[held && `${held} withheld (${x.bins.find(b => b.withheld).withheld})`,
                                                   empty && `${empty} with no face`].filter(Boolean).join(", ")} of ${x.bins.length} bins` : null;
  }).filter(Boolean);
  replace(view,
    h("h2", null, "Attentive share, lectures compared"),
    h("p", { class: "muted" }, `On the lectures' video time, in bins of ${data.bin_s} s. Each line is named below, and drawn in its own colour and dash.`),
    legend(series, null), box,
    gaps.length ? h("p", { class: "withheld-note", id: "compare-gaps" },
                    `A line breaks where a lecture has no share to show, and a lone bin is a dot. ${gaps.join("; ")}.`) : null,
    h("details", null, h("summary", null, "The same as a table"),
      table("compare-table", ["video time", ...series.map(s => s.label)],
        [...new Set(data.lectures.flatMap(x => x.bins.map(b => b.t)))].sort((a, b) => a - b).map(t =>
          h("tr", null, h("td", null, clock(t)), data.lectures.map(x => {
            const b = x.bins.find(b => b.t === t);
            return h("td", null, b ? (b.withheld ? "withheld" : pct(b.attentive_share)) : "–");
          }))), "No lecture.")),
    h("h3", null, "Moments"),
    h("div", { class: "compare-moments" }, data.lectures.map(x => h("section", { "data-lecture": x.lecture.id },
      h("h4", null, h("a", { href: `/lectures/${encodeURIComponent(x.lecture.id)}` }, x.lecture.title)),
      momentLists(x.moments, null, false)))));
  window.emocastChart.drawLines(box, series, { title: "attentive share per lecture over video time" });
  scrollHints();
}

// an error in words, with a way on: no raw API text
function showError(e) {
  const back = h("p", null, h("a", { href: "/" }, "Back to the lectures"));
  if (e instanceof ApiError && e.status === 404) {
    replace(view, h("h2", null, "Not found"), h("p", { class: "problem" },
      /\/api\/lectures\/|\/api\/compare/.test(e.message)
        ? "There is no such lecture here: the link may be mistyped, or the lecture was removed (hub forget)."
        : "There is no such page here."), back);
  } else if (e instanceof ApiError && e.status === 503) {
    replace(view, h("h2", null, "The hub cannot answer just now"), h("p", { class: "problem" },
      "Its database is not answering (restarting, or unreachable). This page tries again in 10 seconds."), back);
    setTimeout(route, 10000);
  } else if (e instanceof ApiError && e.status < 500) {
    replace(view, h("h2", null, "The hub cannot show this"), h("p", { class: "problem" }, said(e.detail)), back);
  } else {
    replace(view, h("h2", null, "Something went wrong"), h("p", { class: "problem" },
      "The hub could not answer. Reload the page; if it happens again, the hub's log says why " +
      "(journalctl -u emocast-hub)."), back);
  }
}

let redrawOnScheme = null;  // the page's own redraw, when the screen turns dark or light
DARK.addEventListener("change", () => { if (redrawOnScheme) redrawOnScheme(); });

async function route() {
  try { PALETTE = Object.assign(PALETTE, await api("/static/palette.json")); } catch (e) { /* the page still works in grey */ }
  health();
  const m = location.pathname.match(/^\/lectures\/([^/]+)$/);
  try {
    if (m) await lecturePage(decodeURIComponent(m[1]));
    else if (location.pathname === "/devices") await devicesPage();
    else if (location.pathname === "/compare") await comparePage();
    else if (location.pathname === "/") await home();
    else throw new ApiError(location.pathname, 404, "no such page");
  } catch (e) { showError(e); }
}

route();
