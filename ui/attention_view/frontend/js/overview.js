// The overview grid: one thumbnail per head, layers across and heads down.

import { CODE_COLOUR, PALETTE } from "./colors.js";

const GAP = 2;
const LEFT = 30; // room for the head labels
const TOP = 16; // room for the layer labels
const MIN_CELL = 8;
const MAX_CELL = 44;

/** All thumbnails side by side in one canvas [heads * T, layers * T], drawn once per analysis. */
function buildAtlas(overview) {
  const { nLayers, nHeads, thumbSize: t, thumbs } = overview;
  const atlas = document.createElement("canvas");
  atlas.width = nLayers * t;
  atlas.height = nHeads * t;
  const context = atlas.getContext("2d");
  const image = context.createImageData(atlas.width, atlas.height);
  const pixels = image.data;
  for (let layer = 0; layer < nLayers; layer++) {
    for (let head = 0; head < nHeads; head++) {
      const base = (layer * nHeads + head) * t * t;
      for (let row = 0; row < t; row++) {
        let px = ((head * t + row) * atlas.width + layer * t) * 4;
        for (let col = 0; col < t; col++, px += 4) {
          const colour = CODE_COLOUR[thumbs[base + row * t + col]] * 4;
          pixels[px] = PALETTE[colour];
          pixels[px + 1] = PALETTE[colour + 1];
          pixels[px + 2] = PALETTE[colour + 2];
          pixels[px + 3] = 255;
        }
      }
    }
  }
  context.putImageData(image, 0, 0);
  return atlas;
}

export class OverviewGrid {
  /** `onPick(layer, head)` on click; `onHover(layer, head)` or `onHover(null)` as the mouse moves. */
  constructor(canvas, { onPick, onHover }) {
    this.canvas = canvas;
    this.data = null;
    this.atlas = null;
    this.cell = MIN_CELL;
    this.hover = null;
    this.selected = null;
    this.pending = false;
    canvas.addEventListener("mousemove", (event) => {
      const cell = this.cellAt(event);
      const changed = (cell && cell.key) !== (this.hover && this.hover.key);
      this.hover = cell;
      if (changed) {
        this.draw();
        onHover(cell);
      }
    });
    canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.draw();
      onHover(null);
    });
    canvas.addEventListener("click", (event) => {
      const cell = this.cellAt(event);
      if (cell) onPick(cell.layer, cell.head);
    });
  }

  setData(overview) {
    this.data = overview;
    this.atlas = buildAtlas(overview);
    this.hover = null;
    this.selected = null;
  }

  /** Fit the grid to `width` CSS pixels. */
  layout(width) {
    const { nLayers, nHeads } = this.data;
    this.cell = Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor((width - LEFT) / nLayers) - GAP));
    const cssWidth = LEFT + nLayers * (this.cell + GAP);
    const cssHeight = TOP + nHeads * (this.cell + GAP);
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssWidth * ratio);
    this.canvas.height = Math.round(cssHeight * ratio);
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
  }

  /** Marks one head as selected; `pending` while its detail is on the way. */
  select(layer, head, pending) {
    this.selected = { layer, head };
    this.pending = pending;
    this.draw();
  }

  cellAt(event) {
    if (!this.data) return null;
    const box = this.canvas.getBoundingClientRect();
    const step = this.cell + GAP;
    const layer = Math.floor((event.clientX - box.left - LEFT) / step);
    const head = Math.floor((event.clientY - box.top - TOP) / step);
    if (layer < 0 || head < 0 || layer >= this.data.nLayers || head >= this.data.nHeads) return null;
    return { layer, head, key: `${layer}:${head}` };
  }

  draw() {
    if (!this.data) return;
    const { nLayers, nHeads, thumbSize: t } = this.data;
    const context = this.canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.imageSmoothingEnabled = this.cell < t; // shrinking: average; enlarging: crisp cells
    const step = this.cell + GAP;
    for (let layer = 0; layer < nLayers; layer++) {
      for (let head = 0; head < nHeads; head++) {
        const x = LEFT + layer * step;
        const y = TOP + head * step;
        context.drawImage(this.atlas, layer * t, head * t, t, t, x, y, this.cell, this.cell);
      }
    }
    context.fillStyle = "#6b6f7b";
    context.font = "10px sans-serif";
    context.textBaseline = "middle";
    const every = Math.ceil(24 / step); // keep labels from overlapping
    context.textAlign = "center";
    for (let layer = 0; layer < nLayers; layer += every) {
      context.fillText(`L${layer}`, LEFT + layer * step + this.cell / 2, TOP / 2);
    }
    context.textAlign = "right";
    const everyHead = Math.ceil(12 / step);
    for (let head = 0; head < nHeads; head += everyHead) {
      context.fillText(`H${head}`, LEFT - 4, TOP + head * step + this.cell / 2);
    }
    this.outline(this.hover, "#6b6f7b", []);
    this.outline(this.selected, "#f28e2b", this.pending ? [3, 2] : []);
  }

  outline(cell, colour, dash) {
    if (!cell) return;
    const context = this.canvas.getContext("2d");
    const step = this.cell + GAP;
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.setLineDash(dash);
    context.strokeRect(LEFT + cell.layer * step - 1, TOP + cell.head * step - 1, this.cell + 2, this.cell + 2);
    context.setLineDash([]);
  }

  /** The thumbnail of one head as an image source rectangle, for the detail placeholder. */
  thumbnail(layer, head) {
    const t = this.data.thumbSize;
    return { image: this.atlas, x: layer * t, y: head * t, size: t };
  }
}
