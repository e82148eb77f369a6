// Decoding the payloads of core/attention_payload.py: base64 strings of little-endian arrays.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LOOKUP = new Uint8Array(128);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

// Typed arrays use the machine's byte order; the payloads are little-endian.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("Headlight's attention view needs a little-endian machine.");
}

/** Bytes of a base64 string; several times faster than atob + charCodeAt for megabytes. */
export function base64Bytes(text) {
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n =
      (LOOKUP[text.charCodeAt(i)] << 18) |
      (LOOKUP[text.charCodeAt(i + 1)] << 12) |
      (LOOKUP[text.charCodeAt(i + 2)] << 6) |
      LOOKUP[text.charCodeAt(i + 3)];
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/** Block boundaries [size + 1] as core.compact.overview_edges: block i is edges[i] .. edges[i+1]-1. */
export function blockEdges(seqLen, size) {
  const edges = new Int32Array(size + 1);
  for (let i = 0; i <= size; i++) edges[i] = Math.floor((i * seqLen) / size);
  return edges;
}

/** The overview payload: thumbnails [layer, head, T, T] uint8, scales and statistics per head. */
export function decodeOverview(p) {
  return {
    id: p.id,
    nLayers: p.n_layers,
    nHeads: p.n_heads,
    seqLen: p.seq_len,
    promptLen: p.prompt_len,
    tokens: p.tokens,
    thumbSize: p.thumb_size,
    thumbs: base64Bytes(p.thumbs),
    thumbScale: p.thumb_scale,
    stats: p.stats,
  };
}

/** One head's detail: map codes [D, D] with a scale per row, and top-k [seq_len, k] per query. */
export function decodeDetail(p) {
  const index = base64Bytes(p.topk_index).buffer;
  return {
    layer: p.layer,
    head: p.head,
    source: p.source,
    seqLen: p.seq_len,
    size: p.size,
    codes: base64Bytes(p.codes),
    rowScale: new Float32Array(base64Bytes(p.row_scale).buffer),
    k: p.k,
    topkIndex: p.index_bytes === 2 ? new Uint16Array(index) : new Uint32Array(index),
    topkValue: base64Bytes(p.topk_value),
    edges: blockEdges(p.seq_len, p.size),
    blockOf: blockOf(p.seq_len, p.size),
  };
}

/** The map row (or column) of every position [seq_len]: its block of blockEdges(seqLen, size). */
function blockOf(seqLen, size) {
  const edges = blockEdges(seqLen, size);
  const out = new Int32Array(seqLen);
  for (let block = 0; block < size; block++) out.fill(block, edges[block], edges[block + 1]);
  return out;
}

/** The k most attended keys of `query`, [{key, weight}], largest first, zeros left out. */
export function topKeys(detail, query) {
  const keys = [];
  for (let j = 0; j < detail.k; j++) {
    const weight = detail.topkValue[query * detail.k + j] / 255;
    if (weight > 0) keys.push({ key: detail.topkIndex[query * detail.k + j], weight });
  }
  return keys;
}
