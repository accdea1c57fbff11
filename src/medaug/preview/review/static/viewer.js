// medaug reading view: images drawn in the browser from raw voxels (no image library, nothing loaded from elsewhere).
// Used by the review page (review.js) and the Turing test page (turing.js).
//
// The server sends, per image, a description (/api/meta: plane shapes, pixel spacing in mm, slices, orientation
// markers, value range, unit, window presets) and planes as raw little-endian Int16 or Float32 voxels (/api/plane),
// already in radiological orientation (axial: patient's right on the left of the screen, anterior up; coronal and
// sagittal: superior up).  Window/level, zoom, pan, the label overlay, the value readout, the scale bar and the
// markers are all done here.  Every image shown at once shares one view: zoom, pan, slice position and window are
// linked, so the original and the augmented image always show the same place the same way.
(() => {
"use strict";

const PLANE_NAMES = ["axial", "coronal", "sagittal"];
// label value v is drawn in LABEL_COLOURS[(v - 1) % length]
const LABEL_COLOURS = [[255, 59, 48], [52, 199, 89], [10, 132, 255], [255, 204, 0], [175, 82, 222], [255, 149, 0],
  [90, 200, 250], [255, 45, 85], [162, 132, 94], [0, 199, 190]];
const PLANE_CACHE = 96; // planes kept per image

// [keys, what, shown only for: "3d" a volume, "labels" an image with its label map drawn]
const VIEW_SHORTCUTS = [
  ["wheel / pinch", "zoom at the pointer"],
  ["drag", "pan"],
  ["right-drag, Ctrl+drag", "window: ←→ width, ↑↓ level"],
  ["Shift+wheel, ↑ ↓, PgUp PgDn", "slice", "3d"],
  ["click (3 planes)", "move the other planes there", "3d"],
  ["F / Z", "fit to window / 1:1 (one voxel per screen pixel)"],
  ["W / Shift+W", "next / previous window preset"],
  ["P / T", "next plane / one or three planes", "3d"],
  ["L", "label overlay on or off", "labels"],
];

let inFlight = 0;
function setPending(delta) {
  inFlight += delta;
  document.body.dataset.pending = String(inFlight);
}

async function fetchOk(path, options) {
  const res = await busy(fetch(path, options));
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.error || `HTTP ${res.status}`);
  }
  return res;
}

async function apiJson(path, options) {
  return (await fetchOk(path, options)).json();
}

function postJson(path, body) {
  return apiJson(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatValue(v) {
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? String(Math.round(v)) : v.toPrecision(3);
}

// count an operation as pending (body[data-pending]) until its promise settles
async function busy(promise) {
  setPending(1);
  try {
    return await promise;
  } finally {
    setPending(-1);
  }
}

// ---------------------------------------------------------------- one image
class Volume {
  // params: what names the image in the query string ({sample, which} or {token})
  constructor(params, meta) {
    this.params = params;
    this.meta = meta;
    this.cache = new Map();
  }

  static async load(params, channel) {
    const q = new URLSearchParams({ ...params, channel: String(channel || 0) });
    return new Volume(params, await apiJson(`/api/meta?${q}`));
  }

  plane3d() {
    return this.meta.ndim === 3;
  }

  info(axis) {
    return this.meta.planes[this.plane3d() ? axis : 0];
  }

  index(axis, frac) {
    const n = this.info(axis).slices;
    return Math.min(n - 1, Math.max(0, Math.round(frac * (n - 1))));
  }

  async plane(axis, index, layer) {
    const key = `${layer}:${axis}:${index}`;
    if (this.cache.has(key)) return this.cache.get(key);
    const q = new URLSearchParams({ ...this.params, axis: String(this.plane3d() ? axis : 0), layer,
      channel: String(this.meta.channel) });
    if (this.plane3d()) q.set("index", String(index));
    const promise = fetchOk(`/api/plane?${q}`).then((res) => res.arrayBuffer()).then((buf) => {
      const [rows, cols] = this.info(axis).shape;
      const Type = layer === "label" || this.meta.dtype === "int16" ? Int16Array : Float32Array;
      if (buf.byteLength !== rows * cols * Type.BYTES_PER_ELEMENT) throw new Error("the plane has an unexpected size");
      return { data: new Type(buf), rows, cols }; // little-endian, as every browser platform
    });
    this.cache.set(key, promise);
    promise.catch(() => this.cache.delete(key));
    if (this.cache.size > PLANE_CACHE) this.cache.delete(this.cache.keys().next().value);
    return promise;
  }
}

// an offscreen canvas sized to a plane, and a transparent ImageData of that size
function blankImage(canvas, plane) {
  if (canvas.width !== plane.cols || canvas.height !== plane.rows) {
    canvas.width = plane.cols;
    canvas.height = plane.rows;
  }
  return canvas.getContext("2d").createImageData(plane.cols, plane.rows);
}

// ---------------------------------------------------------------- one canvas
class Pane {
  constructor(viewer, volume, axis, caption) {
    this.viewer = viewer;
    this.volume = volume;
    this.axis = axis;
    this.root = el("div", "pane");
    this.root.dataset.axis = String(axis);
    this.canvas = el("canvas");
    this.head = el("div", "pane-head");
    this.caption = el("div", "pane-caption", caption);
    this.status = el("div", "pane-status");
    this.head.append(this.caption, this.status);
    this.readout = el("div", "pane-readout");
    this.scale = el("div", "pane-scale");
    this.scaleBar = el("div", "scale-bar");
    this.scaleText = el("span");
    this.scale.append(this.scaleBar, this.scaleText);
    this.markers = {};
    for (const side of ["top", "bottom", "left", "right"]) this.markers[side] = el("div", `marker marker-${side}`);
    this.root.append(this.canvas, this.head, this.readout, this.scale, ...Object.values(this.markers));
    this.grey = document.createElement("canvas");
    this.labels = document.createElement("canvas");
    this.drawn = null; // what the last draw showed, for the readout
  }

  info() {
    return this.volume.info(this.axis);
  }

  index() {
    return this.volume.index(this.axis, this.viewer.state.pos[this.axis]);
  }

  async prepare() {
    const v = this.volume;
    const showLabels = this.viewer.state.labels && this.viewer.withLabels && v.meta.labels.length > 0;
    const [img, lab] = await Promise.all([v.plane(this.axis, this.index(), "image"),
      showLabels ? v.plane(this.axis, this.index(), "label") : null]);
    return { img, lab };
  }

  size() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.root.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.root.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    return { w: this.root.clientWidth, h: this.root.clientHeight, dpr };
  }

  // CSS pixels per mm that fit the whole plane in the pane
  fitScale() {
    const { w, h } = this.size();
    const info = this.info();
    return 0.96 * Math.min(w / (info.shape[1] * info.spacing[1]), h / (info.shape[0] * info.spacing[0]));
  }

  // top-left corner of the image and its size, CSS pixels
  placement(scale) {
    const info = this.info();
    const pan = this.viewer.state.pan[this.axis];
    const iw = info.shape[1] * info.spacing[1] * scale;
    const ih = info.shape[0] * info.spacing[0] * scale;
    return { x: this.root.clientWidth / 2 + pan[0] * scale - iw / 2, y: this.root.clientHeight / 2 + pan[1] * scale - ih / 2, iw, ih };
  }

  paintGrey(img, level, width) {
    const { data } = img;
    const out = blankImage(this.grey, img);
    const px = out.data;
    const lo = level - width / 2;
    const k = 255 / Math.max(width, 1e-12);
    for (let i = 0, j = 0; i < data.length; i++, j += 4) {
      let g = (data[i] - lo) * k;
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      px[j] = px[j + 1] = px[j + 2] = g;
      px[j + 3] = 255;
    }
    this.grey.getContext("2d").putImageData(out, 0, 0);
  }

  paintLabels(lab) {
    const { data } = lab;
    const out = blankImage(this.labels, lab);
    const px = out.data;
    for (let i = 0, j = 0; i < data.length; i++, j += 4) {
      const v = data[i];
      if (v > 0) {
        const c = LABEL_COLOURS[(v - 1) % LABEL_COLOURS.length];
        px[j] = c[0]; px[j + 1] = c[1]; px[j + 2] = c[2]; px[j + 3] = 255;
      }
    }
    this.labels.getContext("2d").putImageData(out, 0, 0);
  }

  draw(planes) {
    const state = this.viewer.state;
    const { dpr } = this.size();
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const scale = this.viewer.scaleOf(this.axis);
    const p = this.placement(scale);
    this.paintGrey(planes.img, state.window.level, state.window.width);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const info = this.info();
    ctx.imageSmoothingEnabled = scale * Math.min(...info.spacing) * dpr < 1; // magnified: show the voxels
    ctx.drawImage(this.grey, p.x, p.y, p.iw, p.ih);
    if (planes.lab) {
      this.paintLabels(planes.lab);
      ctx.globalAlpha = state.opacity;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.labels, p.x, p.y, p.iw, p.ih);
      ctx.globalAlpha = 1;
    }
    if (state.layout === "three" && this.volume.plane3d()) this.drawCrosshair(ctx, p);
    this.drawn = { planes, p, scale };
    this.decorate(scale);
  }

  // where the two other planes cut this one
  drawCrosshair(ctx, p) {
    const pos = this.viewer.state.pos;
    const [rowAxis, colAxis] = this.axis === 0 ? [1, 2] : this.axis === 1 ? [0, 2] : [0, 1];
    const rowFrac = rowAxis === 0 ? 1 - pos[0] : pos[rowAxis]; // rows run down from superior in coronal/sagittal
    const info = this.info();
    const y = p.y + ((rowFrac * (info.shape[0] - 1) + 0.5) / info.shape[0]) * p.ih;
    const x = p.x + ((pos[colAxis] * (info.shape[1] - 1) + 0.5) / info.shape[1]) * p.iw;
    ctx.strokeStyle = "rgba(255, 212, 59, 0.55)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(p.x, y); ctx.lineTo(p.x + p.iw, y);
    ctx.moveTo(x, p.y); ctx.lineTo(x, p.y + p.ih);
    ctx.stroke();
  }

  decorate(scale) {
    const info = this.info();
    const state = this.viewer.state;
    for (const side of Object.keys(this.markers)) this.markers[side].textContent = info.markers[side] || "";
    const slice = this.volume.plane3d() ? `${info.name} ${this.index() + 1}/${info.slices} · ` : "";
    const dpr = window.devicePixelRatio || 1;
    const voxel = scale * Math.min(...info.spacing) * dpr;
    this.status.textContent = `${slice}W ${formatValue(state.window.width)} L ${formatValue(state.window.level)} · ` +
      `${voxel.toFixed(voxel < 10 ? 2 : 0)} px/voxel`;
    // scale bar: a round length near a fifth of the pane
    const target = (0.2 * this.root.clientWidth) / scale;
    const pow = 10 ** Math.floor(Math.log10(target));
    const mm = [5, 2, 1].map((m) => m * pow).find((v) => v <= target) || pow;
    this.scaleBar.style.width = `${mm * scale}px`;
    this.scaleText.textContent = mm >= 10 ? `${formatValue(mm / 10)} cm` : `${formatValue(mm)} mm`;
  }

  // the voxel under a point (CSS pixels in the pane): {row, col} or null
  voxelAt(x, y) {
    if (!this.drawn) return null;
    const { p, planes } = this.drawn;
    const col = Math.floor(((x - p.x) / p.iw) * planes.img.cols);
    const row = Math.floor(((y - p.y) / p.ih) * planes.img.rows);
    if (row < 0 || col < 0 || row >= planes.img.rows || col >= planes.img.cols) return null;
    return { row, col };
  }

  showValue(x, y) {
    const v = this.voxelAt(x, y);
    if (!v) {
      this.readout.textContent = "";
      return;
    }
    const { planes } = this.drawn;
    const i = v.row * planes.img.cols + v.col;
    const meta = this.volume.meta;
    let where;
    if (!this.volume.plane3d()) where = `(${v.col}, ${v.row})`;
    else {
      const nz = this.volume.info(1).shape[0];
      const k = this.index();
      const zyx = this.axis === 0 ? [k, v.row, v.col] : this.axis === 1 ? [nz - 1 - v.row, k, v.col] : [nz - 1 - v.row, v.col, k];
      where = `(${zyx[2]}, ${zyx[1]}, ${zyx[0]})`;
    }
    let text = `${where}  ${formatValue(planes.img.data[i])}${meta.unit ? " " + meta.unit : ""}`;
    if (planes.lab && planes.lab.data[i] > 0) text += `  label ${planes.lab.data[i]}`;
    this.readout.textContent = text;
  }

  // the slice fractions of the point (x, y), for the two other planes
  pointTo(x, y) {
    const v = this.voxelAt(x, y);
    if (!v || !this.volume.plane3d()) return null;
    const [rows, cols] = this.info().shape;
    const fr = rows > 1 ? v.row / (rows - 1) : 0.5;
    const fc = cols > 1 ? v.col / (cols - 1) : 0.5;
    if (this.axis === 0) return { 1: fr, 2: fc };
    if (this.axis === 1) return { 0: 1 - fr, 2: fc };
    return { 0: 1 - fr, 1: fc };
  }
}

// ---------------------------------------------------------------- the view
class Viewer {
  // host: the element the panes go in; tools: where the controls go; shortcuts: where the key list goes
  constructor({ host, tools, shortcuts, pageShortcuts }) {
    this.host = host;
    this.state = { layout: "single", axis: 0, pos: [0.5, 0.5, 0.5], zoom: [null, null, null],
      pan: [[0, 0], [0, 0], [0, 0]], window: { level: 0, width: 1, name: null }, labels: true, opacity: 0.4, channel: 0 };
    this.volumes = [];
    this.panes = [];
    this.withLabels = true;
    this.renders = 0;
    this.ticket = 0;
    this.pointer = null; // {axis, x, y}: where the pointer is over a pane (CSS pixels in the pane), for the readout
    this.frame = null;
    this.buildTools(tools);
    this.buildShortcuts(shortcuts, pageShortcuts || []);
    this.bindInput();
    new ResizeObserver(() => this.schedule()).observe(host);
  }

  // ------------------------------------------------------------ controls
  buildTools(box) {
    box.textContent = "";
    const row = (label) => {
      const r = el("div", "tool-row");
      if (label) r.append(el("span", "tool-label", label));
      box.append(r);
      return r;
    };
    const button = (parent, text, title, onClick) => {
      const b = el("button", "tool", text);
      b.type = "button";
      if (title) b.title = title;
      b.addEventListener("click", onClick);
      parent.append(b);
      return b;
    };
    this.ui = {};
    const view = row("View");
    this.ui.fit = button(view, "Fit", "fit to window (F)", () => this.fit());
    this.ui.actual = button(view, "1:1", "one voxel per screen pixel (Z)", () => this.actualSize());
    this.ui.layout = button(view, "3 planes", "one or three planes (T)", () => this.toggleLayout());
    const planes = row("Plane");
    this.ui.planes = PLANE_NAMES.map((name, axis) => button(planes, name, "P cycles", () => this.setAxis(axis)));
    this.ui.planeRow = planes;
    const slice = row("Slice");
    this.ui.slice = el("input");
    this.ui.slice.type = "range";
    this.ui.slice.min = "0";
    this.ui.sliceText = el("span", "tool-value");
    slice.append(this.ui.slice, this.ui.sliceText);
    this.ui.sliceRow = slice;
    this.ui.slice.addEventListener("input", () => {
      const n = this.volumes[0].info(this.activeAxis()).slices;
      this.state.pos[this.activeAxis()] = n > 1 ? Number(this.ui.slice.value) / (n - 1) : 0.5;
      this.schedule();
    });
    this.ui.presets = row("Window");
    this.ui.presets.classList.add("presets");
    const labels = row("Labels");
    this.ui.labelToggle = el("input");
    this.ui.labelToggle.type = "checkbox";
    this.ui.labelToggle.checked = true;
    this.ui.labelToggle.title = "label overlay (L)";
    this.ui.labelToggle.addEventListener("change", () => this.setLabels(this.ui.labelToggle.checked));
    this.ui.opacity = el("input");
    this.ui.opacity.type = "range";
    this.ui.opacity.min = "0";
    this.ui.opacity.max = "1";
    this.ui.opacity.step = "0.05";
    this.ui.opacity.value = String(this.state.opacity);
    this.ui.opacity.title = "overlay opacity";
    this.ui.opacity.addEventListener("input", () => { this.state.opacity = Number(this.ui.opacity.value); this.schedule(); });
    this.ui.legend = el("div", "legend");
    labels.append(this.ui.labelToggle, this.ui.opacity);
    box.append(this.ui.legend);
    this.ui.labelRow = labels;
    const channel = row("Channel");
    this.ui.channel = el("select");
    this.ui.channel.addEventListener("change", () => this.reloadChannel(Number(this.ui.channel.value)));
    channel.append(this.ui.channel);
    this.ui.channelRow = channel;
  }

  buildShortcuts(box, pageShortcuts) {
    if (!box) return;
    box.textContent = "";
    box.append(el("h2", null, "Keys and mouse"));
    const table = el("table", "keys");
    this.ui.keyRows = [];
    for (const [key, what, only] of [...pageShortcuts, ...VIEW_SHORTCUTS]) {
      const tr = el("tr");
      tr.append(el("th", null, key), el("td", null, what));
      table.append(tr);
      if (only) this.ui.keyRows.push([tr, only]);
    }
    box.append(table);
  }

  refreshTools() {
    const v = this.volumes[0];
    if (!v) return;
    const three = v.plane3d();
    this.ui.planeRow.hidden = !three;
    this.ui.sliceRow.hidden = !three;
    this.ui.layout.hidden = !three;
    this.ui.layout.textContent = this.state.layout === "three" ? "1 plane" : "3 planes";
    this.ui.planes.forEach((b, axis) => b.classList.toggle("active", this.state.layout === "single" && axis === this.state.axis));
    if (three) {
      const axis = this.activeAxis();
      const n = v.info(axis).slices;
      this.ui.slice.max = String(n - 1);
      this.ui.slice.value = String(v.index(axis, this.state.pos[axis]));
      this.ui.sliceText.textContent = `${PLANE_NAMES[axis]} ${v.index(axis, this.state.pos[axis]) + 1} / ${n}`;
    }
    this.ui.presets.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.name === this.state.window.name));
    const labelled = this.withLabels && this.volumes.some((x) => x.meta.labels.length > 0);
    for (const [tr, only] of this.ui.keyRows || []) tr.hidden = only === "3d" ? !three : !labelled;
    this.ui.labelRow.hidden = !labelled;
    this.ui.legend.hidden = !labelled || !this.state.labels;
    this.ui.labelToggle.checked = this.state.labels;
    this.ui.channelRow.hidden = v.meta.channels < 2;
  }

  buildPresets() {
    const box = this.ui.presets;
    box.querySelectorAll("button").forEach((b) => b.remove());
    this.volumes[0].meta.windows.forEach((w, k) => {
      const b = el("button", "tool preset", w.name);
      b.type = "button";
      b.dataset.name = w.name;
      b.title = `L ${formatValue(w.level)} W ${formatValue(w.width)} (W cycles)`;
      b.addEventListener("click", () => this.setWindow(k));
      box.append(b);
    });
  }

  buildLegend() {
    const box = this.ui.legend;
    box.textContent = "";
    const values = [...new Set(this.volumes.flatMap((v) => v.meta.labels))].sort((a, b) => a - b);
    for (const v of values) {
      const c = LABEL_COLOURS[(v - 1) % LABEL_COLOURS.length];
      const item = el("span", "legend-item", String(v));
      const sw = el("i");
      sw.style.background = `rgb(${c.join(",")})`;
      item.prepend(sw);
      box.append(item);
    }
  }

  buildChannels() {
    const meta = this.volumes[0].meta;
    const n = meta.channels;
    this.ui.channel.textContent = "";
    for (let c = 0; c < n; c++) {
      const name = (meta.channel_names || [])[c];
      const o = el("option", null, name && name !== `channel ${c}` ? `${c}: ${name}` : `channel ${c}`);
      o.value = String(c);
      this.ui.channel.append(o);
    }
    this.ui.channel.value = String(this.state.channel);
  }

  // ------------------------------------------------------------ images
  // sources: [{params, caption}]; keepView: keep zoom, pan and slices (same sample, more images shown)
  show(sources, options = {}) {
    return busy(this.showNow(sources, options));
  }

  async showNow(sources, { labels = true, keepView = false }) {
    this.withLabels = labels;
    const volumes = await Promise.all(sources.map((s) => Volume.load(s.params, this.state.channel)));
    this.sources = sources;
    this.volumes = volumes;
    if (!keepView) {
      this.state.zoom = [null, null, null];
      this.state.pan = [[0, 0], [0, 0], [0, 0]];
      this.state.pos = [0.5, 0.5, 0.5];
    }
    this.applyWindowName();
    this.buildPresets();
    this.buildLegend();
    this.buildChannels();
    this.buildPanes();
    await this.render();
  }

  async reloadChannel(channel) {
    this.state.channel = channel;
    await this.show(this.sources, { labels: this.withLabels, keepView: true });
  }

  // keep the chosen preset by name (its values may differ per image, e.g. "auto"); a dragged window is kept as is
  applyWindowName() {
    const windows = this.volumes[0].meta.windows;
    const name = this.state.window.name;
    if (name === undefined) return; // dragged by hand
    const k = Math.max(0, windows.findIndex((w) => w.name === name));
    this.state.window = { ...windows[k] };
  }

  buildPanes() {
    this.host.textContent = "";
    this.panes = [];
    this.pointer = null; // the panes move: the readout waits for the pointer to move
    const three = this.state.layout === "three" && this.volumes[0].plane3d();
    const axes = three ? [0, 1, 2] : [this.volumes[0].plane3d() ? this.state.axis : 0];
    this.host.style.gridTemplateColumns = `repeat(${three ? 3 : this.volumes.length}, minmax(0, 1fr))`;
    this.host.style.gridTemplateRows = `repeat(${three ? this.volumes.length : 1}, minmax(0, 1fr))`;
    this.volumes.forEach((v, k) => {
      for (const axis of axes) {
        const pane = new Pane(this, v, axis, this.sources[k].caption);
        this.panes.push(pane);
        this.host.append(pane.root);
      }
    });
  }

  activeAxis() {
    return this.state.layout === "three" ? this.hoverAxis ?? this.state.axis : this.state.axis;
  }

  scaleOf(axis) {
    if (this.state.zoom[axis] !== null) return this.state.zoom[axis];
    const fits = this.panes.filter((p) => p.axis === axis).map((p) => p.fitScale());
    return fits.length ? Math.min(...fits) : 1;
  }

  schedule() {
    if (this.frame !== null) return;
    setPending(1); // until the frame has been drawn
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      busy(this.render()).catch((err) => this.onError(err)).finally(() => setPending(-1));
    });
  }

  async render() {
    if (!this.panes.length) return;
    const ticket = ++this.ticket;
    const planes = await Promise.all(this.panes.map((p) => p.prepare()));
    if (ticket !== this.ticket) return; // a newer render is on its way
    this.panes.forEach((p, k) => p.draw(planes[k]));
    this.showReadout();
    this.refreshTools();
    document.body.dataset.rendered = String(++this.renders);
  }

  // the value under the pointer in every pane of the plane pointed at: linked panes show the same place there, so the
  // original's value is read beside the augmented one; the other panes show none
  showReadout() {
    const at = this.pointer;
    for (const pane of this.panes) {
      if (at && pane.axis === at.axis) pane.showValue(at.x, at.y);
      else pane.readout.textContent = "";
    }
  }

  onError(err) {
    const status = document.getElementById("status");
    if (status) status.textContent = `Error: ${err.message}`;
  }

  // ------------------------------------------------------------ actions
  fit() {
    this.state.zoom = [null, null, null];
    this.state.pan = [[0, 0], [0, 0], [0, 0]];
    this.schedule();
  }

  actualSize() {
    const dpr = window.devicePixelRatio || 1;
    for (const axis of [0, 1, 2]) {
      const info = this.volumes[0].info(axis);
      this.state.zoom[axis] = 1 / (Math.min(...info.spacing) * dpr);
    }
    this.schedule();
  }

  // zoom by factor about a point (CSS pixels in pane), or about the pane centre
  zoomBy(pane, factor, x, y) {
    const axis = pane.axis;
    const s = this.scaleOf(axis);
    const s2 = Math.min(Math.max(s * factor, 1e-3), 1e3);
    const cx = x === undefined ? 0 : x - pane.root.clientWidth / 2;
    const cy = y === undefined ? 0 : y - pane.root.clientHeight / 2;
    const pan = this.state.pan[axis];
    // keep the physical point under the pointer where it is
    this.state.pan[axis] = [cx / s2 - (cx / s - pan[0]), cy / s2 - (cy / s - pan[1])];
    this.state.zoom[axis] = s2;
    this.schedule();
  }

  panBy(pane, dx, dy) {
    const s = this.scaleOf(pane.axis);
    const pan = this.state.pan[pane.axis];
    this.state.pan[pane.axis] = [pan[0] + dx / s, pan[1] + dy / s];
    this.schedule();
  }

  scrollSlice(delta, axis) {
    const a = axis ?? this.activeAxis();
    const v = this.volumes[0];
    if (!v || !v.plane3d()) return;
    const n = v.info(a).slices;
    const k = Math.min(n - 1, Math.max(0, v.index(a, this.state.pos[a]) + delta));
    this.state.pos[a] = n > 1 ? k / (n - 1) : 0.5;
    this.schedule();
  }

  setAxis(axis) {
    this.state.axis = axis;
    this.state.layout = "single";
    this.buildPanes();
    this.schedule();
  }

  toggleLayout() {
    this.state.layout = this.state.layout === "three" ? "single" : "three";
    this.buildPanes();
    this.schedule();
  }

  setWindow(k) {
    this.state.window = { ...this.volumes[0].meta.windows[k] };
    this.schedule();
  }

  cycleWindow(step) {
    const windows = this.volumes[0].meta.windows;
    const k = windows.findIndex((w) => w.name === this.state.window.name);
    this.setWindow((k + step + windows.length) % windows.length);
  }

  dragWindow(dx, dy) {
    const [lo, hi] = this.volumes[0].meta.range;
    const span = Math.max(hi - lo, 1e-6);
    const w = this.state.window;
    this.state.window = { level: w.level + (dy * span) / 500, width: Math.max(span / 1000, w.width * Math.exp(dx / 150)),
      name: undefined };
    this.schedule();
  }

  setLabels(on) {
    this.state.labels = on;
    this.schedule();
  }

  // ------------------------------------------------------------ input
  paneOf(target) {
    return this.panes.find((p) => p.canvas === target);
  }

  bindInput() {
    const host = this.host;
    const pointers = new Map();
    let gesture = null;
    host.addEventListener("contextmenu", (e) => e.preventDefault());
    host.addEventListener("wheel", (e) => {
      const pane = this.paneOf(e.target);
      if (!pane) return;
      e.preventDefault();
      if (e.shiftKey) this.scrollSlice(Math.sign(e.deltaY || e.deltaX), pane.axis);
      else this.zoomBy(pane, Math.exp(-e.deltaY * 0.0015), e.offsetX, e.offsetY);
    }, { passive: false });
    host.addEventListener("pointerdown", (e) => {
      const pane = this.paneOf(e.target);
      if (!pane) return;
      e.target.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY });
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        gesture = { kind: "pinch", pane, dist: Math.hypot(a.x - b.x, a.y - b.y) };
      } else {
        const wl = e.button === 2 || e.ctrlKey || e.altKey;
        gesture = { kind: wl ? "window" : "pan", pane, x: e.offsetX, y: e.offsetY, moved: 0 };
      }
    });
    host.addEventListener("pointermove", (e) => {
      const pane = this.paneOf(e.target);
      if (pane) {
        this.hoverAxis = pane.axis;
        this.pointer = { axis: pane.axis, x: e.offsetX, y: e.offsetY };
        this.showReadout();
      }
      if (!gesture || !pointers.has(e.pointerId)) return;
      pointers.set(e.pointerId, { x: e.offsetX, y: e.offsetY });
      if (gesture.kind === "pinch") {
        const [a, b] = [...pointers.values()];
        const dist = Math.hypot(a.x - b.x, a.y - b.y);
        if (gesture.dist > 0) this.zoomBy(gesture.pane, dist / gesture.dist, (a.x + b.x) / 2, (a.y + b.y) / 2);
        gesture.dist = dist;
        return;
      }
      const dx = e.offsetX - gesture.x;
      const dy = e.offsetY - gesture.y;
      gesture.x = e.offsetX;
      gesture.y = e.offsetY;
      gesture.moved += Math.abs(dx) + Math.abs(dy);
      if (gesture.kind === "pan") this.panBy(gesture.pane, dx, dy);
      else this.dragWindow(dx, dy);
    });
    const end = (e) => {
      pointers.delete(e.pointerId);
      if (gesture && gesture.kind === "pan" && gesture.moved < 3 && this.state.layout === "three") {
        const to = gesture.pane.pointTo(e.offsetX, e.offsetY);
        if (to) {
          Object.entries(to).forEach(([axis, f]) => { this.state.pos[Number(axis)] = f; });
          this.schedule();
        }
      }
      gesture = null;
    };
    host.addEventListener("pointerup", end);
    host.addEventListener("pointercancel", end);
    host.addEventListener("pointerout", (e) => { // off an image (pointerout bubbles, pointerleave does not)
      if (!this.paneOf(e.target) || this.paneOf(e.relatedTarget)) return;
      this.pointer = null;
      this.showReadout();
    });
  }

  // a key of the reading view; returns whether it was one
  handleKey(e) {
    if (!this.volumes.length) return false;
    const key = e.key;
    if (key === "f" || key === "F") this.fit();
    else if (key === "z" || key === "Z") this.actualSize();
    else if (key === "w") this.cycleWindow(1);
    else if (key === "W") this.cycleWindow(-1);
    else if (key === "l" || key === "L") this.setLabels(!this.state.labels);
    else if (key === "p" || key === "P") this.setAxis((this.state.axis + 1) % 3);
    else if (key === "t" || key === "T") this.toggleLayout();
    else if (key === "ArrowUp" || key === "PageUp") this.scrollSlice(key === "PageUp" ? 5 : 1);
    else if (key === "ArrowDown" || key === "PageDown") this.scrollSlice(key === "PageDown" ? -5 : -1);
    else return false;
    e.preventDefault();
    return true;
  }
}

window.MedaugViewer = { Viewer, apiJson, postJson, el };
})();
