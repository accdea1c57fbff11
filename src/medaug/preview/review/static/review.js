// medaug review page: plain JavaScript, no build step, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { samples: [], mode: "blind", pos: 0, info: null, axis: 0, frac: 0.5, level: 0, width: 1, timer: null };

// images whose current source has not finished loading (body[data-pending]; the browser test waits for 0)
function countPending() {
  const imgs = [$("img-original"), $("img-augmented")];
  document.body.dataset.pending = String(imgs.filter((i) => i.getAttribute("src") && i.dataset.got !== i.getAttribute("src")).length);
}
for (const which of ["original", "augmented"]) {
  const img = $(`img-${which}`);
  img.addEventListener("load", () => { img.dataset.got = img.getAttribute("src"); countPending(); });
  img.addEventListener("error", () => {
    img.dataset.got = img.getAttribute("src");
    countPending();
    $("status").textContent = `Could not load the ${which} image`;
  });
}

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function sliceUrl(id, which, axis, index, lo, hi) {
  const q = new URLSearchParams({ sample: id, which, axis: String(axis), window: `${lo},${hi}` });
  if (index !== null) q.set("index", String(index));
  return `/api/slice?${q}`;
}

function setProgress(p) {
  const pct = p.total ? Math.round((100 * p.reviewed) / p.total) : 0;
  $("progress").textContent = `${p.reviewed} / ${p.total} reviewed (${p.realistic} realistic, ${p.not_realistic} not)`;
  $("bar-fill").style.width = `${pct}%`;
}

async function refreshProgress() {
  setProgress(await api("/api/progress"));
}

function current() {
  return state.samples[state.pos];
}

function showVerdict(s) {
  $("btn-realistic").classList.toggle("chosen", s.verdict === "realistic");
  $("btn-not-realistic").classList.toggle("chosen", s.verdict === "not_realistic");
  $("reveal").textContent = s.description !== undefined ? `Transforms: ${s.description}` : (state.mode === "blind" ? "Transforms hidden until your verdict (blind mode)" : "");
  $("status").textContent = s.verdict ? `Your verdict: ${s.verdict.replace("_", " ")}` : "No verdict yet";
}

function sliceIndex(which) {
  const info = state.info;
  if (!info || info.ndim < 3) return null;
  const n = info[which].shape[state.axis];
  return Math.min(n - 1, Math.max(0, Math.round(state.frac * (n - 1))));
}

function windowRange() {
  return [state.level - state.width / 2, state.level + state.width / 2];
}

function drawImages() {
  const s = current();
  if (!s || !state.info) return;
  const [lo, hi] = windowRange();
  for (const which of ["original", "augmented"]) {
    const url = sliceUrl(s.id, which, state.info.ndim < 3 ? 0 : state.axis, sliceIndex(which), lo, hi);
    const img = $(`img-${which}`);
    if (img.getAttribute("src") !== url) {
      img.src = url;
      countPending();
    }
  }
  $("level-text").textContent = state.level.toFixed(0);
  $("width-text").textContent = state.width.toFixed(0);
  if (state.info.ndim >= 3) {
    const n = state.info.augmented.shape[state.axis];
    $("slice").max = String(n - 1);
    $("slice").value = String(sliceIndex("augmented"));
    $("slice-text").textContent = `${sliceIndex("augmented") + 1} / ${n}`;
  }
}

function drawSoon() {
  clearTimeout(state.timer);
  state.timer = setTimeout(drawImages, 60);
}

function resetWindow() {
  const [lo, hi] = state.info.window;
  const [rlo, rhi] = state.info.range;
  const span = Math.max(rhi - rlo, hi - lo, 1);
  $("level").min = String(Math.min(rlo, lo));
  $("level").max = String(Math.max(rhi, hi));
  $("width").min = String(span / 500);
  $("width").max = String(span * 2);
  state.level = (lo + hi) / 2;
  state.width = hi - lo;
  $("level").value = String(state.level);
  $("width").value = String(state.width);
}

async function showSample(pos) {
  if (!state.samples.length) {
    $("sample-title").textContent = "no samples in the manifest";
    return;
  }
  state.pos = (pos + state.samples.length) % state.samples.length;
  const s = current();
  $("sample-title").textContent = `Sample ${state.pos + 1} of ${state.samples.length}` + (state.mode === "open" ? ` (${s.id})` : "");
  $("comment").value = s.comment || "";
  showVerdict(s);
  try {
    const info = await api(`/api/info?sample=${encodeURIComponent(s.id)}`);
    const first = state.info === null;
    state.info = info;
    $("plane-box").hidden = info.ndim < 3;
    $("slice-box").hidden = info.ndim < 3;
    if (first || !state.keepWindow) resetWindow();
    drawImages();
    document.body.dataset.shown = String(state.pos);
  } catch (err) {
    $("status").textContent = `Error: ${err.message}`;
  }
}

async function giveVerdict(verdict) {
  const s = current();
  if (!s) return;
  $("status").textContent = "saving…";
  try {
    const res = await api("/api/verdict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sample: s.id, verdict, comment: $("comment").value }),
    });
    Object.assign(s, res.sample);
    showVerdict(s);
    $("status").textContent = `Saved: ${verdict.replace("_", " ")}`;
    setProgress(res.progress);
  } catch (err) {
    $("status").textContent = `Not saved: ${err.message}`;
  }
}

function nextUnjudged() {
  for (let k = 1; k <= state.samples.length; k++) {
    const p = (state.pos + k) % state.samples.length;
    if (!state.samples[p].verdict) return showSample(p);
  }
  $("status").textContent = "Every sample has a verdict.";
}

function renderGrid() {
  const box = $("grid-items");
  box.textContent = "";
  state.samples.forEach((s, pos) => {
    const card = document.createElement("div");
    card.className = `card ${s.verdict || ""}`;
    card.dataset.sample = s.id;
    const thumbs = document.createElement("div");
    thumbs.className = "thumbs";
    for (const which of ["original", "augmented"]) {
      const img = document.createElement("img");
      img.alt = which;
      img.title = which;
      img.loading = "lazy";
      img.src = `/api/slice?${new URLSearchParams({ sample: s.id, which })}`;
      thumbs.appendChild(img);
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `#${pos + 1}` + (s.verdict ? ` — ${s.verdict.replace("_", " ")}` : " — no verdict") + (s.description ? ` — ${s.description}` : "");
    card.append(thumbs, meta);
    card.addEventListener("click", () => { setView("single"); showSample(pos); });
    box.appendChild(card);
  });
}

function setView(view) {
  $("single").hidden = view !== "single";
  $("grid").hidden = view !== "grid";
  $("view-single").classList.toggle("active", view === "single");
  $("view-grid").classList.toggle("active", view === "grid");
  if (view === "grid") renderGrid();
}

async function init() {
  const list = await api("/api/samples");
  state.samples = list.samples;
  state.mode = list.mode;
  $("mode").textContent = list.mode === "blind" ? "blind" : "open";
  $("mode").title = list.reviewer ? `reviewer: ${list.reviewer}` : "";
  await refreshProgress();
  const firstOpen = state.samples.findIndex((s) => !s.verdict);
  await showSample(firstOpen >= 0 ? firstOpen : 0);
  document.body.dataset.ready = "1";
}

$("btn-realistic").addEventListener("click", () => giveVerdict("realistic"));
$("btn-not-realistic").addEventListener("click", () => giveVerdict("not_realistic"));
$("prev").addEventListener("click", () => showSample(state.pos - 1));
$("next").addEventListener("click", () => showSample(state.pos + 1));
$("next-open").addEventListener("click", nextUnjudged);
$("view-single").addEventListener("click", () => setView("single"));
$("view-grid").addEventListener("click", () => setView("grid"));
$("reset-window").addEventListener("click", () => { resetWindow(); drawImages(); });
$("level").addEventListener("input", (e) => { state.level = Number(e.target.value); state.keepWindow = true; drawSoon(); });
$("width").addEventListener("input", (e) => { state.width = Number(e.target.value); state.keepWindow = true; drawSoon(); });
$("slice").addEventListener("input", (e) => {
  const n = state.info.augmented.shape[state.axis];
  state.frac = n > 1 ? Number(e.target.value) / (n - 1) : 0.5;
  drawSoon();
});
document.querySelectorAll("input[name=plane]").forEach((r) => r.addEventListener("change", (e) => {
  state.axis = Number(e.target.value);
  state.frac = 0.5;
  drawImages();
}));
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT") return;
  if (e.key === "r" || e.key === "R") giveVerdict("realistic");
  else if (e.key === "n" || e.key === "N") giveVerdict("not_realistic");
  else if (e.key === "ArrowRight") showSample(state.pos + 1);
  else if (e.key === "ArrowLeft") showSample(state.pos - 1);
});

init().catch((err) => { $("progress").textContent = `Error: ${err.message}`; });
