// One head's map on canvas: queries down, keys across; wheel zooms about the cursor, drag pans,
// double-click resets. A second canvas on top carries the hover and top-k marks, so moving
// the mouse never redraws the map itself.

import { PALETTE, colourIndex } from "./colors.js";

const MAX_CELL_PX = 48; // zoom stops when one cell is this wide
const CLICK_SLOP = 3; // pixels a press may move and still count as a click

/**
 * The map as an image [D, D]. Colour shows the weight itself (code * row_scale / 255), not a
 * fraction of the head's largest: heads that dump most weight on one "sink" token would
 * otherwise look empty everywhere else.
 */
export function detailImage(detail) {
  const { size, codes, rowScale } = detail;
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext("2d");
  const image = context.createImageData(size, size);
  const pixels = image.data;
  const rowColour = new Uint8Array(256);
  for (let row = 0; row < size; row++) {
    const factor = rowScale[row] / 255;
    for (let code = 0; code < 256; code++) rowColour[code] = colourIndex(code * factor);
    let px = row * size * 4;
    for (let col = 0; col < size; col++, px += 4) {
      const colour = rowColour[codes[row * size + col]] * 4;
      pixels[px] = PALETTE[colour];
      pixels[px + 1] = PALETTE[colour + 1];
      pixels[px + 2] = PALETTE[colour + 2];
      pixels[px + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

export class DetailView {
  /**
   * `onHover({row, col})` / `onHover(null)` as the mouse moves over map cells; `onClick(row)`.
   */
  constructor(canvas, overlay, stack, { onHover, onClick }) {
    this.canvas = canvas;
    this.overlay = overlay;
    this.stack = stack;
    this.side = 0;
    this.source = null; // {image, x, y, size}: the part of `image` that is the map
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.drag = null;
    this.marks = {};
    stack.addEventListener("wheel", (event) => this.zoom(event), { passive: false });
    stack.addEventListener("mousedown", (event) => {
      this.drag = { x: event.clientX, y: event.clientY, tx: this.tx, ty: this.ty, moved: false };
    });
    window.addEventListener("mouseup", (event) => {
      if (this.drag && !this.drag.moved) {
        const cell = this.cellAt(event);
        if (cell) onClick(cell.row);
      }
      this.drag = null;
    });
    stack.addEventListener("mousemove", (event) => {
      if (this.drag) {
        const dx = event.clientX - this.drag.x;
        const dy = event.clientY - this.drag.y;
        if (Math.abs(dx) + Math.abs(dy) > CLICK_SLOP) this.drag.moved = true;
        if (this.drag.moved) {
          this.tx = this.drag.tx + dx;
          this.ty = this.drag.ty + dy;
          this.clamp();
          this.draw();
          return;
        }
      }
      onHover(this.cellAt(event));
    });
    stack.addEventListener("mouseleave", () => onHover(null));
    stack.addEventListener("dblclick", () => {
      this.reset();
      this.draw();
    });
  }

  /** A square of `side` CSS pixels. */
  resize(side) {
    const ratio = window.devicePixelRatio || 1;
    for (const canvas of [this.canvas, this.overlay]) {
      canvas.width = Math.round(side * ratio);
      canvas.height = Math.round(side * ratio);
      canvas.style.width = `${side}px`;
      canvas.style.height = `${side}px`;
    }
    this.side = side;
    this.reset();
  }

  /** Show `source` ({image, x, y, size}); `keepView` keeps zoom and pan (same head, better data). */
  show(source, keepView) {
    if (!keepView) this.reset();
    this.source = source;
    this.draw();
  }

  reset() {
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
  }

  clamp() {
    const extent = this.side * this.scale;
    this.tx = Math.min(0, Math.max(this.side - extent, this.tx));
    this.ty = Math.min(0, Math.max(this.side - extent, this.ty));
  }

  zoom(event) {
    if (!this.source) return;
    event.preventDefault();
    const box = this.canvas.getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    const largest = Math.max(1, (MAX_CELL_PX * this.source.size) / this.side);
    const scale = Math.min(largest, Math.max(1, this.scale * Math.exp(-event.deltaY * 0.0015)));
    this.tx = x - ((x - this.tx) * scale) / this.scale;
    this.ty = y - ((y - this.ty) * scale) / this.scale;
    this.scale = scale;
    this.clamp();
    this.draw();
  }

  /** CSS pixels of one map cell at the current zoom. */
  cellPx() {
    return (this.side * this.scale) / this.source.size;
  }

  cellAt(event) {
    if (!this.source) return null;
    const box = this.canvas.getBoundingClientRect();
    const col = Math.floor((event.clientX - box.left - this.tx) / this.cellPx());
    const row = Math.floor((event.clientY - box.top - this.ty) / this.cellPx());
    const size = this.source.size;
    return row >= 0 && col >= 0 && row < size && col < size ? { row, col } : null;
  }

  draw() {
    const context = this.canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, this.side, this.side);
    if (!this.source) return;
    const { image, x, y, size } = this.source;
    const cell = this.cellPx();
    // Only the visible cells are copied; shrinking averages (smoothing), enlarging keeps cells sharp.
    const first = Math.max(0, Math.floor(-this.tx / cell));
    const firstRow = Math.max(0, Math.floor(-this.ty / cell));
    const count = Math.min(size - first, Math.ceil(this.side / cell) + 1);
    const rows = Math.min(size - firstRow, Math.ceil(this.side / cell) + 1);
    context.imageSmoothingEnabled = cell < 1;
    context.imageSmoothingQuality = "high";
    context.drawImage(
      image, x + first, y + firstRow, count, rows,
      this.tx + first * cell, this.ty + firstRow * cell, count * cell, rows * cell,
    );
    this.mark(this.marks);
  }

  /**
   * Marks on the overlay: the focus row as a band, its top keys as rings (radius by weight),
   * and the hovered cell. Rows and columns are map cells.
   */
  mark(marks) {
    this.marks = marks;
    const { focusRow = null, keys = [], hover = null } = marks;
    const context = this.overlay.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, this.side, this.side);
    if (!this.source) return;
    const cell = this.cellPx();
    if (focusRow !== null) {
      context.fillStyle = "rgba(242, 142, 43, 0.25)";
      context.fillRect(0, this.ty + focusRow * cell, this.side, Math.max(cell, 2));
      context.strokeStyle = "#f28e2b";
      context.lineWidth = 1.5;
      for (const { col, weight } of keys) {
        const cx = this.tx + (col + 0.5) * cell;
        const cy = this.ty + (focusRow + 0.5) * cell;
        context.beginPath();
        context.arc(cx, cy, Math.max(3, cell / 2) + 6 * Math.sqrt(weight), 0, 2 * Math.PI);
        context.stroke();
      }
    }
    if (hover) {
      context.strokeStyle = "#262730";
      context.lineWidth = 1;
      const size = Math.max(cell, 3);
      context.strokeRect(this.tx + hover.col * cell, this.ty + hover.row * cell, size, size);
    }
  }
}
