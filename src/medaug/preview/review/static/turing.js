// medaug visual Turing test page: one image at a time, originals and augmented copies mixed and unlabelled, each
// answered "real" or "augmented" with a confidence.  The server only ever names images by opaque tokens, and gives no
// feedback: this page cannot know which images are originals.  Plain JavaScript, no external resources.
"use strict";

const { Viewer, apiJson, postJson } = window.MedaugViewer;
const $ = (id) => document.getElementById(id);
const state = { items: [], pos: 0, confidence: 3 };
const viewer = new Viewer({
  host: $("viewer"), tools: $("tools"), shortcuts: $("shortcuts"),
  pageShortcuts: [["R / A", "answer: real / augmented"], ["1 … 5", "confidence: 1 a guess … 5 certain"],
    ["← / →", "previous / next image"]],
});

function current() {
  return state.items[state.pos];
}

function setProgress() {
  const answered = state.items.filter((i) => i.answer).length;
  const total = state.items.length;
  $("progress").textContent = `${answered} / ${total} answered`;
  $("bar-fill").style.width = `${total ? Math.round((100 * answered) / total) : 0}%`;
}

function setConfidence(c) {
  state.confidence = c;
  document.querySelectorAll("input[name=confidence]").forEach((r) => { r.checked = Number(r.value) === c; });
}

function showAnswer(item) {
  $("btn-real").classList.toggle("chosen", item.answer === "real");
  $("btn-augmented").classList.toggle("chosen", item.answer === "augmented");
  $("status").textContent = item.answer ? `Your answer: ${item.answer} (confidence ${item.confidence})` : "Not answered yet";
  if (item.confidence) setConfidence(item.confidence);
}

async function showItem(pos) {
  if (!state.items.length) {
    $("item-title").textContent = "no images to judge";
    return;
  }
  state.pos = (pos + state.items.length) % state.items.length;
  const item = current();
  $("item-title").textContent = `Image ${state.pos + 1} of ${state.items.length}`;
  showAnswer(item);
  try {
    await viewer.show([{ params: { token: item.token }, caption: `Image ${state.pos + 1}` }], { labels: false });
    document.body.dataset.shown = String(state.pos);
  } catch (err) {
    $("status").textContent = `Error: ${err.message}`;
  }
}

function nextUnanswered() {
  for (let k = 1; k <= state.items.length; k++) {
    const p = (state.pos + k) % state.items.length;
    if (!state.items[p].answer) return showItem(p);
  }
  $("status").textContent = `All ${state.items.length} images answered: thank you. You may still change an answer.`;
  return null;
}

async function answer(kind) {
  const item = current();
  if (!item) return;
  $("status").textContent = "saving…";
  try {
    await postJson("/api/turing/answer", { token: item.token, answer: kind, confidence: state.confidence });
    item.answer = kind;
    item.confidence = state.confidence;
    setProgress();
    showAnswer(item);
    await nextUnanswered();
  } catch (err) {
    $("status").textContent = `Not saved: ${err.message}`;
  }
}

async function init() {
  const deck = await apiJson("/api/turing/deck");
  state.items = deck.items;
  $("reader").textContent = `reader: ${deck.reader}`;
  setProgress();
  const first = state.items.findIndex((i) => !i.answer);
  await showItem(first >= 0 ? first : 0);
  document.body.dataset.ready = "1";
}

$("btn-real").addEventListener("click", () => answer("real"));
$("btn-augmented").addEventListener("click", () => answer("augmented"));
$("prev").addEventListener("click", () => showItem(state.pos - 1));
$("next").addEventListener("click", () => showItem(state.pos + 1));
document.querySelectorAll("input[name=confidence]").forEach((r) => r.addEventListener("change", () => setConfidence(Number(r.value))));
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "TEXTAREA" || e.ctrlKey || e.metaKey) return;
  if (viewer.handleKey(e)) return;
  if (e.key === "r" || e.key === "R") answer("real");
  else if (e.key === "a" || e.key === "A") answer("augmented");
  else if (e.key >= "1" && e.key <= "5") setConfidence(Number(e.key));
  else if (e.key === "ArrowRight") showItem(state.pos + 1);
  else if (e.key === "ArrowLeft") showItem(state.pos - 1);
  else return;
  e.preventDefault(); // a key of the page only: ← / → would also move the confidence radio button that has the focus
});

init().catch((err) => { $("progress").textContent = `Error: ${err.message}`; });
