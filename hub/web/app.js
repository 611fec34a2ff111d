// The hub's pages: devices and lectures ("/"), and one lecture's timeline ("/lectures/<id>").
"use strict";

// colours come from /static/palette.json (one palette with `emocast analyze --plot`); labels and
// one-line definitions travel with every series, so colour is never the only cue
let PALETTE = { states: {}, emotions: {}, spare: ["#777777"] };
const STATES = [
  { key: "attentive", label: "attentive", help: "share of the present faces' time turned to the screen, eyes open" },
  { key: "looking_away", label: "looking away", help: "share of the present faces' time with the head or the eyes turned off the screen" },
  { key: "eyes_closed", label: "eyes closed", help: "share of the present faces' time with both eyes shut longer than a blink" },
];
const REDRAW_MS = 500;  // events that arrive together are drawn once

const view = document.getElementById("view");
const { h, replace } = window.emocastDom;
const when = ts => ts ? new Date(ts * 1000).toLocaleString() : "–";

async function api(path, options) {
  const res = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" } }, options || {}));
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function health() {
  const out = document.getElementById("health");
  try {
    const res = await fetch("/api/health");
    const hl = await res.json();
    const i = hl.ingest;
    out.textContent = `v${hl.version} · ${hl.database}` +
      (i ? ` · broker ${i.mqtt_connected ? "connected" : "not connected"} · ${i.stored} events stored since it started` : "") +
      (hl.ok ? "" : ` · not ok: ${(hl.problems || []).join("; ")}`);
    const p = hl.privacy || {};
    document.getElementById("privacy").textContent = `Privacy: emotion ${p.emotion === false ? "off (never stored or shown)" : "on"}` +
      (p.min_faces > 1 ? ` · no shares for fewer than ${p.min_faces} faces` : " · shares for any number of faces");
  } catch (e) { out.textContent = String(e); }
}

function table(id, headers, rows, empty) {
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": `${id} table` }, h("table", { id },
    h("thead", null, h("tr", null, headers.map(t => h("th", null, t)))),
    h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: headers.length, class: "muted" }, empty)))));
}

function deviceRow(d) {
  return h("tr", { "data-device": d.device, class: d.emotion_conflict ? "conflict" : null },
    h("td", null, d.device),
    h("td", { class: d.status }, d.status, d.emotion_conflict ? " · infers emotion (dropped here)" : null),
    h("td", null, when(d.last_seen)),
    [d.events, d.missing_seq, d.outbox_depth ?? "–", d.dropped_events ?? "–", d.rejected].map(v => h("td", null, v)),
    h("td", { class: d.clock_skew_s != null && Math.abs(d.clock_skew_s) > 60 ? "conflict" : null },
      d.clock_skew_s == null ? "–" : `${d.clock_skew_s > 0 ? "+" : ""}${d.clock_skew_s} s`));
}

function lectureRow(l) {
  return h("tr", { "data-lecture": l.id },
    h("td", null, h("input", { type: "checkbox", name: "compare", value: l.id, "aria-label": `compare ${l.title}` })),
    h("td", null, h("a", { href: `/lectures/${encodeURIComponent(l.id)}` }, l.title)),
    h("td", null, l.devices.join(", ")), h("td", null, when(l.start)),
    h("td", null, l.live ? h("span", { class: "pill" }, "live") : when(l.end)));
}

function newLectureForm(devices) {
  const form = h("form", { class: "inline", id: "new-lecture" },
    h("label", null, "Title ", h("input", { name: "title", required: true, maxlength: 200, placeholder: "Biology, period 3" })),
    h("label", null, "Devices ", h("select", { name: "devices", multiple: true, size: Math.min(4, Math.max(1, devices.length)) },
      devices.map(d => h("option", { value: d.device }, d.device)))),
    h("label", null, "Video offset (s) ", h("input", { name: "video_offset_s", type: "number", min: 0, value: 0, step: 1 })),
    h("button", { type: "submit" }, "Start lecture"));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = { title: form.title.value, devices: [...form.devices.selectedOptions].map(o => o.value),
                   video_offset_s: Number(form.video_offset_s.value || 0) };
    const lecture = await api("/api/lectures", { method: "POST", body: JSON.stringify(body) });
    location.href = `/lectures/${encodeURIComponent(lecture.id)}`;
  });
  return form;
}

async function home() {
  document.title = "Lectures · emocast hub";
  const [devices, lectures] = await Promise.all([api("/api/devices"), api("/api/lectures")]);
  replace(view,
    h("h2", null, "Lectures"), newLectureForm(devices.filter(d => d.source !== "recording")),
    table("lectures", ["", "title", "devices and recordings", "start", "end"], lectures.map(lectureRow), "No lecture yet."),
    h("button", { id: "compare", type: "button", on: { click: () => {
      const ids = [...document.querySelectorAll("input[name=compare]:checked")].map(c => c.value);
      if (ids.length) location.href = `/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
    } } }, "Compare the checked lectures"),
    h("p", { class: "muted" }, "Kiosks' health, and what they sent that the hub refused: ",
      h("a", { href: "/devices" }, "Devices"), "."));
}

async function devicesPage() {
  document.title = "Devices · emocast hub";
  const devices = await api("/api/devices");
  const kiosks = devices.filter(d => d.source !== "recording"), recordings = devices.filter(d => d.source === "recording");
  replace(view,
    h("h2", null, "Kiosks"),
    table("devices", ["device", "status", "last seen", "events", "missing", "outbox", "dropped", "invalid", "clock"],
          kiosks.map(deviceRow), "No kiosk has reported yet."),
    h("p", { class: "muted" }, "missing: events between the first and last stored that never arrived; outbox: events " +
      "waiting on the kiosk; dropped: events the kiosk had to drop (its outbox was full); invalid: messages the hub " +
      "refused (GET /api/rejects says why); clock: the kiosk's clock less the hub's (over a minute: its events land " +
      "at the wrong time of a lecture; set its NTP)."),
    h("h2", null, "Recordings"),
    table("recordings", ["recording", "lecture", "events"], recordings.map(d => h("tr", { "data-device": d.device },
      h("td", null, d.device),
      h("td", null, d.lecture ? h("a", { href: `/lectures/${encodeURIComponent(d.lecture)}` }, d.lecture_title || d.lecture) : "–"),
      h("td", null, d.events))), "No recording imported (emocast hub import)."));
}

function emotionSeries(bins) {
  const labels = [...new Set(bins.flatMap(b => Object.keys(b.emotion_shares || {})))].sort();
  let spare = 0;
  return labels.map(k => ({ key: k, label: k,
                            color: PALETTE.emotions[k] || PALETTE.spare[spare++ % PALETTE.spare.length],
                            help: `share of the attentive faces' time whose expression was read as ${k}`,
                            value: b => (b.emotion_shares || {})[k] ?? 0 }));
}

function legend(series) {
  return h("div", { class: "legend" }, series.map(s => h("span", { style: { "--c": s.color }, title: s.help }, s.label)));
}

function momentList(items, verb, seek) {
  const { clock, pct } = window.emocastChart;
  const rows = items.map(m => h("li", null,
    seek ? h("button", { class: "seek", type: "button", "data-t": m.t, title: "play the video from here",
                         on: { click: () => seek(m.t) } }, clock(m.t)) : clock(m.t),
    `: ${verb} ${pct(Math.abs(m.change))}` + (m.toward ? ` toward ${m.toward}` : "") +
    (m.faces !== undefined ? ` (${Number(m.faces).toFixed(1)} faces)` : "")));
  return h("ul", null, rows.length ? rows : h("li", { class: "muted" }, "none"));
}

// The lecture's video, from the teacher's own computer: the file never leaves the browser (an object
// URL); charts follow it with a playhead, and a click on a chart or a moment plays it from there.
function videoPanel() {
  const video = h("video", { id: "lecture-video", controls: true, preload: "metadata", hidden: true });
  const input = h("input", { id: "video-file", type: "file", accept: "video/*",
                             "aria-label": "open the lecture's video from this computer" });
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    if (!file) return;
    if (video.src) URL.revokeObjectURL(video.src);
    video.src = URL.createObjectURL(file);
    video.hidden = false;
  });
  const panel = h("section", { class: "video", "aria-label": "lecture video" },
    h("label", { class: "muted" }, "Lecture video from this computer (it stays here): ", input), video);
  return { panel, video };
}

// the charts' numbers as a table, for screen readers and for those who would rather read
function binTable(bins, attention, emotions) {
  const { clock, pct } = window.emocastChart;
  const cols = [...attention, ...emotions];
  return h("details", { class: "bin-table" }, h("summary", null, "The same as a table"),
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "bins table" },
      h("table", { id: "bins-table" },
        h("thead", null, h("tr", null, h("th", null, "video time"), h("th", null, "faces"), cols.map(c => h("th", null, c.label)))),
        h("tbody", null, bins.map(b => h("tr", null, h("td", null, clock(b.t)), h("td", null, b.faces.toFixed(1)),
          cols.map(c => h("td", null, b.withheld ? "–" : pct(c.value(b))))))))));
}

// "How to read this": one line per figure, at hand on every lecture page
function explain(privacy) {
  const k = privacy && privacy.min_faces > 1 ? privacy.min_faces : null;
  const lines = [
    ["attentive", "of the time faces were present in a bin, the share turned to the screen with eyes open"],
    ["looking away", "the share with the head, or the eyes, turned off the screen"],
    ["eyes closed", "the share with both eyes shut for longer than a blink"],
    ["absent (CSV)", "the share of the lecture's largest attendance not present in the bin: people who left"],
    ["faces", "how many faces were present on average in the bin; blinks/min is per face"],
    ["moments", "where the attentive share fell or rose by 15 points or more, carried by at least 15 s of faces' time"],
    (!privacy || privacy.emotion !== false) &&
      ["emotions", "of the attentive faces' time, the share whose expression was read as each emotion; " +
       "readings too unsure to call are left out. An expression is not a feeling"],
    k && ["no shares", `a bin with fewer than ${k} faces present on average shows none, so no one's own record appears`],
  ].filter(Boolean);
  return h("details", { class: "explain" }, h("summary", null, "How to read this"),
    h("dl", null, lines.map(([term, def]) => [h("dt", null, term), h("dd", null, def)])));
}

function lectureHeader(l, binS, id, render) {
  const exportLink = (kind, text) => h("a", { id: `export-${kind}`, download: true,
    href: `/api/lectures/${encodeURIComponent(l.id)}/export.${kind}?bin_s=${l.bin_s}` }, text);
  const bin = h("select", { id: "bin", "aria-label": "bin length in seconds",
                            on: { change: ev => { location.search = ev.target.value === "auto" ? "" : `?bin_s=${ev.target.value}`; } } },
    h("option", { value: "auto", selected: !binS }, `auto (${l.bin_s})`),
    [10, 30, 60, 120, 300].map(v => h("option", { selected: v === binS }, v)));
  const stop = l.live && h("button", { id: "stop", on: { click: async () => {
    await api(`/api/lectures/${encodeURIComponent(id)}/stop`, { method: "POST" });
    render();
  } } }, "End lecture");
  return [
    h("h2", { id: "lecture-title" }, `${l.title} `,
      l.live ? h("span", { class: "pill", id: "live" }, "live") : h("span", { class: "pill ended" }, "ended")),
    h("p", { class: "muted" }, `Devices: ${l.devices.join(", ") || "none"} · ${when(l.start)} – ${l.live ? "now" : when(l.end)}`,
      " · bins of ", bin, " s · ", exportLink("csv", "CSV"), " · ", exportLink("json", "JSON"), stop ? [" · ", stop] : null),
  ];
}

async function lecturePage(id) {
  const params = new URLSearchParams(location.search);
  const binS = Number(params.get("bin_s")) || null;  // null: sized to the lecture by the hub
  const head = h("div"), body = h("div");
  const { panel, video } = videoPanel();
  let charts = [];
  const seek = t => {
    if (!video.src) return;
    video.currentTime = Math.max(0, t);
    video.play().catch(() => {});  // a browser may refuse to play without a gesture: the position is set
  };
  video.addEventListener("timeupdate", () => charts.forEach(c => c.setPlayhead(video.currentTime)));
  replace(view, head, panel, body);
  async function render() {
    const data = await api(`/api/lectures/${encodeURIComponent(id)}/timeline` + (binS ? `?bin_s=${binS}` : ""));
    const l = Object.assign({ bin_s: data.bin_s }, data.lecture);
    document.title = `${l.title} · emocast hub`;
    if (l.video && !video.src) {  // a video the hub operator put in [web] video_dir for this lecture
      video.src = `/api/lectures/${encodeURIComponent(id)}/video`;
      video.hidden = false;
    }
    const attention = STATES.map(s => Object.assign({ value: b => b[`${s.key}_share`] ?? 0,
                                                      color: PALETTE.states[s.key] || "#777777" }, s));
    const emotionOn = !data.privacy || data.privacy.emotion !== false;  // [privacy] emotion = false: none shown
    const emotions = emotionOn ? emotionSeries(data.bins) : [];
    const mo = data.moments;
    const boxes = { attention: h("div", { id: "attention-chart" }), emotion: emotionOn && h("div", { id: "emotion-chart" }) };
    replace(head, lectureHeader(l, binS, id, render), explain(data.privacy));
    replace(body,
      h("h3", null, "Attention of the faces present"), legend(attention), boxes.attention,
      emotionOn && [h("h3", null, "Emotions while attentive"), legend(emotions), boxes.emotion],
      binTable(data.bins, attention, emotions),
      h("h3", null, "Moments"),
      h("div", { class: "moments", id: "moments" },
        h("p", null, "Attention dropped"), momentList(mo.attention_drops, "attentive share fell by", seek),
        h("p", null, "Attention recovered"), momentList(mo.attention_recoveries, "attentive share rose by", seek),
        emotionOn && [h("p", null, "Emotion swings"), momentList(mo.emotion_swings || [], "mix changed by", seek)]));
    const info = b => `· ${b.faces.toFixed(1)} faces · ${b.devices} device(s)` +
      (b.blinks_per_min !== null ? ` · ${b.blinks_per_min} blinks/min` : "") + (b.withheld ? ` · ${b.withheld}: no shares` : "");
    const pick = b => seek(b.t);
    charts = [window.emocastChart.drawStacked(boxes.attention, data.bins, attention,
                                              { title: "attention shares per bin", info, onPick: pick })];
    if (emotionOn) charts.push(window.emocastChart.drawStacked(boxes.emotion, data.bins, emotions,
                                                               { title: "emotion shares of attentive face time", info,
                                                                 height: 180, onPick: pick }));
    if (video.src) charts.forEach(c => c.setPlayhead(video.currentTime));
    view.dataset.updated = String(Date.now());
    view.dataset.bins = String(data.bins.length);
    if (l.live && !stream) listen();
  }
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
  const series = data.lectures.map((x, i) => ({
    label: x.lecture.title, color: PALETTE.spare[i % PALETTE.spare.length], dash: DASHES[i % DASHES.length],
    points: x.bins.map(b => [b.t, b.attentive_share]) }));
  const box = h("div", { id: "compare-chart" });
  const { clock, pct } = window.emocastChart;
  replace(view,
    h("h2", null, "Attentive share, lectures compared"),
    h("p", { class: "muted" }, `On the lectures' video time, in bins of ${data.bin_s} s. Each line is named below, and drawn in its own colour and dash.`),
    h("div", { class: "legend" }, series.map(s => h("span", { style: { "--c": s.color }, "data-dash": s.dash }, s.label))),
    box,
    h("details", null, h("summary", null, "The same as a table"),
      h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "compared lectures table" },
        h("table", { id: "compare-table" },
          h("thead", null, h("tr", null, h("th", null, "video time"), series.map(s => h("th", null, s.label)))),
          h("tbody", null, [...new Set(data.lectures.flatMap(x => x.bins.map(b => b.t)))].sort((a, b) => a - b).map(t =>
            h("tr", null, h("td", null, clock(t)), data.lectures.map(x => {
              const b = x.bins.find(b => b.t === t);
              return h("td", null, b ? pct(b.attentive_share) : "–");
            }))))))),
    h("h3", null, "Moments"),
    h("div", { class: "compare-moments" }, data.lectures.map(x => h("section", { "data-lecture": x.lecture.id },
      h("h4", null, h("a", { href: `/lectures/${encodeURIComponent(x.lecture.id)}` }, x.lecture.title)),
      h("p", null, "Attention dropped"), momentList(x.moments.attention_drops, "attentive share fell by", null),
      h("p", null, "Attention recovered"), momentList(x.moments.attention_recoveries, "attentive share rose by", null)))));
  window.emocastChart.drawLines(box, series, { title: "attentive share per lecture over video time" });
}

function showError(e) { replace(view, h("p", { class: "offline" }, e.message || String(e))); }

async function route() {
  try { PALETTE = await api("/static/palette.json"); } catch (e) { /* the page still works in grey */ }
  health();
  const m = location.pathname.match(/^\/lectures\/([^/]+)$/);
  try {
    if (m) await lecturePage(decodeURIComponent(m[1]));
    else if (location.pathname === "/devices") await devicesPage();
    else if (location.pathname === "/compare") await comparePage();
    else await home();
  } catch (e) { showError(e); }
}

route();
