// Wires the view together: Streamlit messages in, the overview grid, the head map, the token
// strip, and the selected head back out. All user text is set with textContent.

import { decodeDetail, decodeOverview, topKeys } from "./codec.js";
import { DetailView, detailImage } from "./detail.js";
import { OverviewGrid } from "./overview.js";
import { onRender, setComponentValue, setFrameHeight } from "./streamlit.js";
import { TokenStrip } from "./tokens.js";

const STATS = [
  ["entropy", "entropy", " nats"],
  ["mean_distance", "mean distance", " tokens"],
  ["previous_token", "previous token", ""],
  ["first_token", "first token", ""],
  ["self", "self", ""],
];
const SOURCES = {
  full: "full map",
  recomputed: "full map (layer recomputed)",
  "top-k": "top-k only: the model was not available to recompute the layer",
};
const WIDE = 720; // below this many pixels the strip goes under the map

const element = (id) => document.getElementById(id);
const status = element("status");
const caption = element("detail-caption");

// When each part was first on screen (ms since the epoch), for tests and bench/bench_render.py.
const timings = {};
window.headlightTimings = timings;

const state = { overview: null, detail: null, detailKey: null, selected: null, pinned: null, hovered: null };

const grid = new OverviewGrid(element("overview"), { onPick: pick, onHover: describeHead });
const view = new DetailView(element("detail"), element("detail-overlay"), element("detail-stack"), {
  onHover: hoverCell,
  onClick: (row) => state.detail && pin(state.detail.edges[row]),
});
const strip = new TokenStrip(element("strip"), element("tokens"), element("strip-lines"), {
  onHover: (index) => {
    state.hovered = index;
    refocus(false);
  },
  onClick: pin,
});

function markPainted(name) {
  // Drawing calls show on the next frame; the timeout runs once that frame is out.
  requestAnimationFrame(() =>
    setTimeout(() => {
      timings[name] = performance.timeOrigin + performance.now();
      document.body.dataset[name] = "painted";
    }, 0),
  );
}

function quote(index) {
  const token = state.overview.tokens[index];
  return `#${index} "${token.length > 24 ? `${token.slice(0, 24)}…` : token}"`;
}

function defaultStatus() {
  const { seqLen, nLayers, nHeads } = state.overview;
  return (
    `${seqLen.toLocaleString()} tokens · ${nLayers} layers × ${nHeads} heads. Each square is one ` +
    "head (queries down, keys across, colour ∝ √weight); click one for its full map."
  );
}

function describeHead(cell) {
  if (!cell) {
    status.textContent = defaultStatus();
    return;
  }
  const parts = STATS.filter(([name]) => state.overview.stats[name]).map(([name, label, unit]) => {
    const value = state.overview.stats[name][cell.layer][cell.head];
    return `${label} ${value.toFixed(2)}${unit}`;
  });
  status.textContent = `Layer ${cell.layer}, head ${cell.head}: ${parts.join(" · ")}`;
}

function pick(layer, head) {
  const current = state.selected;
  if (current && current.layer === layer && current.head === head) return;
  state.selected = { layer, head };
  state.detail = null;
  state.detailKey = null;
  grid.select(layer, head, true);
  view.show(grid.thumbnail(layer, head), false);
  caption.textContent = `Layer ${layer}, head ${head}: loading its full map… (its thumbnail meanwhile)`;
  refocus(false);
  setComponentValue({ layer, head });
}

function showDetail(detail) {
  const current = state.detail;
  const sameHead = current && current.layer === detail.layer && current.head === detail.head;
  state.detail = detail;
  state.selected = { layer: detail.layer, head: detail.head };
  grid.select(detail.layer, detail.head, false);
  view.show({ image: detailImage(detail), x: 0, y: 0, size: detail.size }, sameHead);
  refocus(false); // also sets the caption
  document.body.dataset.detailHead = `${detail.layer}:${detail.head}`;
  markPainted("detail");
}

function describeDetail(detail) {
  const blocks = detail.size < detail.seqLen ? ` in blocks of ~${Math.round(detail.seqLen / detail.size)} tokens` : "";
  return (
    `Layer ${detail.layer}, head ${detail.head} · ${SOURCES[detail.source]}${blocks} · ` +
    "wheel zooms, drag pans, double-click resets; hover or click a row or token"
  );
}

function hoverCell(cell) {
  const detail = state.detail;
  if (!detail) return;
  state.hovered = cell ? detail.edges[cell.row] : null;
  refocus(true, cell);
  if (cell) {
    const weight = (detail.codes[cell.row * detail.size + cell.col] * detail.rowScale[cell.row]) / 255;
    const key = detail.edges[cell.col];
    const what = detail.size < detail.seqLen ? "block mean" : "weight";
    caption.textContent = `query ${quote(state.hovered)} → key ${quote(key)}: ${what} ${weight.toFixed(3)}`;
  }
}

function pin(index) {
  state.pinned = state.pinned === index ? null : index;
  refocus(true);
}

/** Redraw the focus token's marks in the strip and on the map; `fromMap` scrolls the strip to it. */
function refocus(fromMap, hoverCellOnMap = null) {
  const focus = state.pinned ?? state.hovered;
  const detail = state.detail;
  const keys = detail && focus !== null ? topKeys(detail, focus) : [];
  strip.highlight(focus, keys, focus !== null && focus === state.pinned);
  if (focus !== null && fromMap) strip.reveal(focus);
  if (!detail) {
    view.mark({});
    return;
  }
  view.mark({
    focusRow: focus === null ? null : detail.blockOf[focus],
    keys: keys.map(({ key, weight }) => ({ col: detail.blockOf[key], weight })),
    hover: hoverCellOnMap,
  });
  if (focus === null) {
    caption.textContent = describeDetail(detail);
  } else if (!hoverCellOnMap) {
    const list = keys.map(({ key, weight }) => `${quote(key)} ${weight.toFixed(2)}`).join(", ");
    caption.textContent = `${quote(focus)} attends most to ${list || "nothing above 1/255"}`;
  }
}

function layout() {
  if (!state.overview) return;
  const width = document.documentElement.clientWidth - 4;
  grid.layout(width);
  grid.draw();
  const wide = width >= WIDE;
  const side = wide ? Math.min(640, Math.max(280, Math.floor(width * 0.5))) : width - 2;
  view.resize(side);
  view.draw();
  element("detail-pane").style.width = `${side + 2}px`; // + the map's border
  strip.resize(wide ? width - side - 14 : width, side);
  refocus(false);
  setFrameHeight(document.body.scrollHeight + 4);
}

function showOverview(payload) {
  state.overview = decodeOverview(payload);
  Object.assign(state, { detail: null, detailKey: null, selected: null, pinned: null, hovered: null });
  grid.setData(state.overview);
  strip.setTokens(state.overview.tokens, state.overview.promptLen);
  view.show(null, false);
  layout();
  status.textContent = defaultStatus();
  caption.textContent = "Click a head above to see its full map.";
  markPainted("overview");
}

onRender((args) => {
  const payload = args.overview;
  if (!payload) return;
  if (!state.overview || state.overview.id !== payload.id) showOverview(payload);
  const detail = args.detail;
  if (!detail) return;
  const key = `${detail.layer}:${detail.head}:${detail.source}`;
  const selected = state.selected;
  // A render may still carry the previous head while the one just clicked is computed.
  const wanted = !selected || (selected.layer === detail.layer && selected.head === detail.head);
  if (wanted && key !== state.detailKey) {
    state.detailKey = key;
    showDetail(decodeDetail(detail));
  }
});

let resizeQueued = false;
window.addEventListener("resize", () => {
  if (resizeQueued) return;
  resizeQueued = true;
  requestAnimationFrame(() => {
    resizeQueued = false;
    layout();
  });
});
