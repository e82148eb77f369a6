// One sequential colour scale for every map: ColorBrewer "Blues", white (0) to navy (largest).

const STOPS = [
  [255, 255, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107],
];

/** RGBA of colour index 0..255, as 256 * 4 bytes. */
export const PALETTE = (() => {
  const out = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const position = (i / 255) * (STOPS.length - 1);
    const low = Math.min(Math.floor(position), STOPS.length - 2);
    const t = position - low;
    for (let c = 0; c < 3; c++) out[i * 4 + c] = STOPS[low][c] + t * (STOPS[low + 1][c] - STOPS[low][c]);
    out[i * 4 + 3] = 255;
  }
  return out;
})();

/**
 * Colour index of a value in 0..1: a weight, or a thumbnail cell as a fraction of its head's
 * largest. The square root stretches the small weights that most of a row is made of, which
 * a linear scale would leave white.
 */
export function colourIndex(fraction) {
  return Math.round(255 * Math.sqrt(Math.min(Math.max(fraction, 0), 1)));
}

/** colourIndex of code / 255 for every uint8 code. */
export const CODE_COLOUR = Uint8Array.from({ length: 256 }, (_, code) => colourIndex(code / 255));
