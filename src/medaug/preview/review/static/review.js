// medaug review page (blind and open modes): a verdict per augmented sample.  Plain JavaScript, no external resources.
// The reading view itself is viewer.js.
"use strict";

const { Viewer, apiJson, postJson, el } = window.MedaugViewer;
const $ = (id) => document.getElementById(id);
const state = { samples: [], mode: "blind", pos: 0 };
const viewer = new Viewer({
  host: $("viewer"), tools: $("tools"), shortcuts: $("shortcuts"),
  pageShortcuts: [["R / N", "verdict: realistic / not realistic"], ["← / →", "previous / next sample"],
    ["U", "next sample without a verdict"]],
});

function current() {
  return state.samples[state.pos];
}

// blind mode shows the original (and the transforms) only once the verdict is given; an --anonymize-ids expansion
// without --include-originals has none to show
function originalShown(s) {
  return (state.mode === "open" || Boolean(s.verdict)) && s.original !== false;
}

function setProgress(p) {
  const pct = p.total ? Math.round((100 * p.reviewed) / p.total) : 0;
  $("progress").textContent = `${p.reviewed} / ${p.total} reviewed (${p.realistic} realistic, ${p.not_realistic} not)`;
  $("bar-fill").style.width = `${pct}%`;
}

function showVerdict(s) {
  $("btn-realistic").classList.toggle("chosen", s.verdict === "realistic");
  $("btn-not-realistic").classList.toggle("chosen", s.verdict === "not_realistic");
  $("reveal").textContent = s.description !== undefined ? `Transforms: ${s.description}`
    : "Blind review: the original and the transforms are shown after your verdict";
  $("status").textContent = s.verdict ? `Your verdict: ${s.verdict.replace("_", " ")}` : "No verdict yet";
}

async function showSample(pos, keepView = false) {
  if (!state.samples.length) {
    $("sample-title").textContent = "no samples in the manifest";
    return;
  }
  state.pos = (pos + state.samples.length) % state.samples.length;
  const s = current();
  $("sample-title").textContent = `Sample ${state.pos + 1} of ${state.samples.length}` + (state.mode === "open" ? ` (${s.id})` : "");
  $("comment").value = s.comment || "";
  showVerdict(s);
  const sources = [];
  if (originalShown(s)) sources.push({ params: { sample: s.id, which: "original" }, caption: "Original" });
  sources.push({ params: { sample: s.id, which: "augmented" }, caption: originalShown(s) ? "Augmented" : "Augmented (blind)" });
  try {
    await viewer.show(sources, { keepView });
    document.body.dataset.shown = String(state.pos);
  } catch (err) {
    $("status").textContent = `Error: ${err.message}`;
  }
}

async function giveVerdict(verdict) {
  const s = current();
  if (!s) return;
  const wasShown = originalShown(s);
  $("status").textContent = "saving…";
  try {
    const res = await postJson("/api/verdict", { sample: s.id, verdict, comment: $("comment").value });
    Object.assign(s, res.sample);
    setProgress(res.progress);
    if (wasShown) showVerdict(s);
    else await showSample(state.pos, true); // now the original is shown beside it
    $("status").textContent = `Saved: ${verdict.replace("_", " ")}`;
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
  return null;
}

function thumbnail(s, which) {
  const img = el("img");
  img.alt = which;
  img.title = which;
  img.loading = "lazy";
  img.src = `/api/slice?${new URLSearchParams({ sample: s.id, which })}`;
  return img;
}

function renderGrid() {
  const box = $("grid-items");
  box.textContent = "";
  state.samples.forEach((s, pos) => {
    const card = el("div", `card ${s.verdict || ""}`);
    card.dataset.sample = s.id;
    const thumbs = el("div", "thumbs");
    if (originalShown(s)) thumbs.append(thumbnail(s, "original"));
    thumbs.append(thumbnail(s, "augmented"));
    const verdict = s.verdict ? s.verdict.replace("_", " ") : "no verdict";
    const meta = el("div", "meta", `#${pos + 1} — ${verdict}` + (s.description ? ` — ${s.description}` : ""));
    card.append(thumbs, meta);
    card.addEventListener("click", () => { setView("single"); showSample(pos); });
    box.append(card);
  });
}

function setView(view) {
  $("reading").hidden = view !== "single";
  $("grid").hidden = view !== "grid";
  $("view-single").classList.toggle("active", view === "single");
  $("view-grid").classList.toggle("active", view === "grid");
  if (view === "grid") renderGrid();
}

async function init() {
  const list = await apiJson("/api/samples");
  state.samples = list.samples;
  state.mode = list.mode;
  $("mode").textContent = list.mode;
  $("mode").title = list.reviewer ? `reviewer: ${list.reviewer}` : "";
  setProgress(await apiJson("/api/progress"));
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
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "TEXTAREA" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey) return;
  if (viewer.handleKey(e)) return;
  if (e.key === "r" || e.key === "R") giveVerdict("realistic");
  else if (e.key === "n" || e.key === "N") giveVerdict("not_realistic");
  else if (e.key === "u" || e.key === "U") nextUnjudged();
  else if (e.key === "ArrowRight") showSample(state.pos + 1);
  else if (e.key === "ArrowLeft") showSample(state.pos - 1);
});

init().catch((err) => { $("progress").textContent = `Error: ${err.message}`; });
