// The hub's pages: devices and lectures ("/"), and one lecture's timeline ("/lectures/<id>").
"use strict";

const STATES = [
  { key: "attentive", label: "attentive", color: "#2e7d32" },
  { key: "looking_away", label: "looking away", color: "#f9a825" },
  { key: "eyes_closed", label: "eyes closed", color: "#6a1b9a" },
];
const EMOTION_COLORS = { angry: "#c62828", disgust: "#6d4c41", fear: "#5e35b1", happy: "#43a047", sad: "#1e88e5",
                         surprise: "#fb8c00", neutral: "#90a4ae" };
const SPARE = ["#00897b", "#d81b60", "#3949ab", "#7cb342", "#8d6e63", "#546e7a"];
const POLL_MS = 3000;

const view = document.getElementById("view");
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const when = ts => ts ? new Date(ts * 1000).toLocaleString() : "–";

async function api(path, options) {
  const res = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" } }, options || {}));
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function health() {
  try {
    const h = await api("/api/health");
    const i = h.ingest;
    document.getElementById("health").textContent = `v${h.version} · ${h.database}` +
      (i ? ` · broker ${i.mqtt_connected ? "connected" : "not connected"} · ${i.stored} stored` : "");
  } catch (e) { document.getElementById("health").textContent = String(e); }
}

async function home() {
  document.title = "emocast hub";
  const [devices, lectures] = await Promise.all([api("/api/devices"), api("/api/lectures")]);
  const devRows = devices.map(d => `<tr data-device="${esc(d.device)}">
      <td>${esc(d.device)}</td><td class="${esc(d.status)}">${esc(d.status)}</td><td>${when(d.last_seen)}</td>
      <td>${d.events}</td><td>${d.missing_seq}</td><td>${d.outbox_depth ?? "–"}</td><td>${d.dropped_events ?? "–"}</td>
      <td>${d.rejected}</td></tr>`).join("");
  const lecRows = lectures.map(l => `<tr data-lecture="${esc(l.id)}">
      <td><a href="/lectures/${esc(l.id)}">${esc(l.title)}</a></td><td>${esc(l.devices.join(", "))}</td>
      <td>${when(l.start)}</td><td>${l.live ? '<span class="pill">live</span>' : when(l.end)}</td></tr>`).join("");
  const options = devices.map(d => `<option value="${esc(d.device)}">${esc(d.device)}</option>`).join("");
  view.innerHTML = `
    <h2>Devices</h2>
    <table id="devices"><thead><tr><th>device</th><th>status</th><th>last seen</th><th>events</th>
      <th>missing</th><th>outbox</th><th>dropped</th><th>invalid</th></tr></thead>
      <tbody>${devRows || '<tr><td colspan="8" class="muted">No device has reported yet.</td></tr>'}</tbody></table>
    <h2>Lectures</h2>
    <form class="inline" id="new-lecture">
      <label>Title <input name="title" required placeholder="Biology, period 3"></label>
      <label>Devices <select name="devices" multiple size="${Math.min(4, Math.max(1, devices.length))}">${options}</select></label>
      <label>Video offset (s) <input name="video_offset_s" type="number" min="0" value="0" step="1"></label>
      <button type="submit">Start lecture</button>
    </form>
    <table id="lectures"><thead><tr><th>title</th><th>devices</th><th>start</th><th>end</th></tr></thead>
      <tbody>${lecRows || '<tr><td colspan="4" class="muted">No lecture yet.</td></tr>'}</tbody></table>`;
  document.getElementById("new-lecture").addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = ev.target;
    const body = { title: f.title.value, devices: [...f.devices.selectedOptions].map(o => o.value),
                   video_offset_s: Number(f.video_offset_s.value || 0) };
    const lecture = await api("/api/lectures", { method: "POST", body: JSON.stringify(body) });
    location.href = `/lectures/${lecture.id}`;
  });
}

function emotionSeries(bins) {
  const labels = [...new Set(bins.flatMap(b => Object.keys(b.emotion_shares)))].sort();
  let spare = 0;
  return labels.map(k => ({ key: k, label: k, color: EMOTION_COLORS[k] || SPARE[spare++ % SPARE.length],
                            value: b => b.emotion_shares[k] ?? 0 }));
}

function legend(series) {
  return `<div class="legend">${series.map(s => `<span style="--c:${s.color}">${esc(s.label)}</span>`).join("")}</div>`;
}

function momentList(items, verb) {
  const { clock, pct } = window.emocastChart;
  return items.map(m => `<li>${clock(m.t)}: ${verb} ${pct(Math.abs(m.change))}${m.toward ? ` toward ${esc(m.toward)}` : ""}</li>`).join("")
    || '<li class="muted">none</li>';
}

async function lecturePage(id) {
  const params = new URLSearchParams(location.search);
  const binS = Number(params.get("bin_s") || 60);
  let timer = null;
  async function render() {
    const data = await api(`/api/lectures/${encodeURIComponent(id)}/timeline?bin_s=${binS}`);
    const l = data.lecture;
    document.title = `${l.title} · emocast hub`;
    const attention = STATES.map(s => Object.assign({ value: b => b[`${s.key}_share`] ?? 0 }, s));
    const emotions = emotionSeries(data.bins);
    const mo = data.moments;
    view.innerHTML = `
      <h2 id="lecture-title">${esc(l.title)} ${l.live ? '<span class="pill" id="live">live</span>' : '<span class="pill ended">ended</span>'}</h2>
      <p class="muted">Devices: ${esc(l.devices.join(", ") || "none")} · ${when(l.start)} – ${l.live ? "now" : when(l.end)}
        · bins of <select id="bin">${[10, 30, 60, 120, 300].map(v => `<option ${v === binS ? "selected" : ""}>${v}</option>`).join("")}</select> s
        · <a id="export-csv" href="/api/lectures/${esc(l.id)}/export.csv?bin_s=${binS}" download>CSV</a>
        · <a id="export-json" href="/api/lectures/${esc(l.id)}/export.json?bin_s=${binS}" download>JSON</a>
        ${l.live ? '· <button id="stop">End lecture</button>' : ""}</p>
      <h3>Attention of the faces present</h3>${legend(attention)}<div id="attention-chart"></div>
      <h3>Emotions while attentive</h3>${legend(emotions)}<div id="emotion-chart"></div>
      <h3>Moments</h3>
      <div class="moments" id="moments">
        <p>Attention dropped</p><ul>${momentList(mo.attention_drops, "attentive share fell by")}</ul>
        <p>Attention recovered</p><ul>${momentList(mo.attention_recoveries, "attentive share rose by")}</ul>
        <p>Emotion swings</p><ul>${momentList(mo.emotion_swings, "mix changed by")}</ul>
      </div>`;
    const info = b => `· ${b.faces.toFixed(1)} faces · ${b.devices} device(s)` +
      (b.blinks_per_min !== null ? ` · ${b.blinks_per_min} blinks/min` : "");
    window.emocastChart.drawStacked(document.getElementById("attention-chart"), data.bins, attention,
                                    { title: "attention shares per bin", info });
    window.emocastChart.drawStacked(document.getElementById("emotion-chart"), data.bins, emotions,
                                    { title: "emotion shares of attentive face time", info, height: 180 });
    document.getElementById("bin").addEventListener("change", ev => {
      location.search = `?bin_s=${ev.target.value}`;
    });
    const stop = document.getElementById("stop");
    if (stop) stop.addEventListener("click", async () => {
      await api(`/api/lectures/${encodeURIComponent(id)}/stop`, { method: "POST" });
      render();
    });
    view.dataset.updated = String(Date.now());
    view.dataset.bins = String(data.bins.length);
    clearTimeout(timer);
    if (l.live) timer = setTimeout(() => render().catch(showError), POLL_MS);
  }
  await render();
}

function showError(e) { view.innerHTML = `<p class="offline">${esc(e.message || e)}</p>`; }

async function route() {
  health();
  const m = location.pathname.match(/^\/lectures\/([^/]+)$/);
  try {
    if (m) await lecturePage(decodeURIComponent(m[1]));
    else await home();
  } catch (e) { showError(e); }
}

route();
