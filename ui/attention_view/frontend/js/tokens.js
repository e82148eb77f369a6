// The token strip: every token as a span (text set with textContent, never parsed as HTML),
// the focus token outlined, its most attended tokens shaded and joined to it by lines.

const SHADE = "33, 113, 181"; // the darker blue of the colour scale

/** What a token shows: newlines and tabs as visible marks, so the strip keeps its shape. */
function visible(token) {
  return token.length === 0 ? "\u2205" : token.replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
}

export class TokenStrip {
  /** `onHover(index | null)` as the mouse moves over tokens; `onClick(index)` pins one. */
  constructor(container, tokensElement, lines, { onHover, onClick }) {
    this.container = container;
    this.element = tokensElement;
    this.lines = lines;
    this.spans = [];
    this.marked = [];
    tokensElement.addEventListener("mouseover", (event) => {
      const span = event.target.closest(".tok");
      if (span) onHover(Number(span.dataset.index));
    });
    tokensElement.addEventListener("mouseleave", () => onHover(null));
    tokensElement.addEventListener("click", (event) => {
      const span = event.target.closest(".tok");
      if (span) onClick(Number(span.dataset.index));
    });
  }

  setTokens(tokens, promptLen) {
    const fragment = document.createDocumentFragment();
    this.spans = tokens.map((token, index) => {
      const span = document.createElement("span");
      span.className = index >= promptLen ? "tok gen" : "tok";
      span.dataset.index = String(index);
      span.textContent = visible(token);
      span.title = `#${index}`;
      fragment.append(span);
      return span;
    });
    this.element.replaceChildren(fragment);
    this.marked = [];
    // The lines canvas counts in the strip's scroll size; shrink it until the next highlight.
    this.lines.width = 0;
    this.lines.height = 0;
    this.lines.style.width = "0px";
    this.lines.style.height = "0px";
  }

  resize(width, height) {
    this.container.style.width = `${width}px`;
    this.container.style.height = `${height}px`;
  }

  /** Outline `focus`, shade `keys` ([{key, weight}]) and draw lines to them; null clears. */
  highlight(focus, keys, pinned) {
    for (const span of this.marked) {
      span.classList.remove("focus", "pinned");
      span.style.backgroundColor = "";
    }
    this.marked = [];
    const context = this.lines.getContext("2d");
    const width = this.container.scrollWidth;
    const height = this.container.scrollHeight;
    const ratio = window.devicePixelRatio || 1;
    if (this.lines.width !== Math.round(width * ratio) || this.lines.height !== Math.round(height * ratio)) {
      this.lines.width = Math.round(width * ratio);
      this.lines.height = Math.round(height * ratio);
      this.lines.style.width = `${width}px`;
      this.lines.style.height = `${height}px`;
    }
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    if (focus === null) return;
    const from = this.spans[focus];
    from.classList.add("focus");
    if (pinned) from.classList.add("pinned");
    this.marked.push(from);
    const start = centre(from);
    context.strokeStyle = "#f28e2b";
    for (const { key, weight } of keys) {
      const span = this.spans[key];
      span.style.backgroundColor = `rgba(${SHADE}, ${0.15 + 0.6 * weight})`;
      this.marked.push(span);
      if (key === focus) continue;
      const end = centre(span);
      context.globalAlpha = 0.35 + 0.65 * weight;
      context.lineWidth = 1 + 3 * weight;
      context.beginPath();
      context.moveTo(start.x, start.y);
      // A bow above both tokens, so lines within one line of text stay visible.
      const lift = Math.min(40, 12 + Math.abs(end.x - start.x) / 8);
      context.quadraticCurveTo((start.x + end.x) / 2, Math.min(start.y, end.y) - lift, end.x, end.y);
      context.stroke();
    }
    context.globalAlpha = 1;
  }

  /** Scroll the strip so that token `index` is in view (when focus comes from the map). */
  reveal(index) {
    const span = this.spans[index];
    const top = span.offsetTop;
    if (top < this.container.scrollTop || top > this.container.scrollTop + this.container.clientHeight - 20) {
      this.container.scrollTop = top - this.container.clientHeight / 2;
    }
  }
}

/** Centre of a span in the strip's content coordinates (the strip is the spans' offsetParent). */
function centre(span) {
  return { x: span.offsetLeft + span.offsetWidth / 2, y: span.offsetTop + span.offsetHeight / 2 };
}
