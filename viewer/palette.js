// PALETTE tiles (TileFormat.PALETTE, wire version 3), mirroring gateway/wire/display/palette.py.
// Attacker-controlled: the tile data. Limits: 1..256 colours; inflating stops as soon as the
// output passes h rows of ceil(w*bits/8) bytes (a zlib bomb costs at most that plus one chunk);
// every index must be below the colour count; junk after the zlib stream is an error.
//
// Tile data: | colors-1 u8 | palette: colors x (r u8 | g u8 | b u8) | zlib stream (RFC 1950) |
// The stream inflates to h rows of w indices of `bits` bits (1 for <= 2 colours, 2 for <= 4,
// 4 for <= 16, else 8), most significant bit first, each row padded to a whole byte.
// PALETTE_PACKED (wire version 4): | colors-1 u8 | zlib stream |, which inflates to the palette
// (3 x colors bytes: the reds, then the greens, then the blues, each as its difference from
// the one before, mod 256) followed by the rows as above.
// Inflating runs in the browser's native DecompressionStream, off the page's JavaScript, except
// for a stream of stored blocks only (the gateway sends small tiles so): those are copied here,
// synchronously, with the same limits (output bounded by the tile size, Adler-32 checked, no
// junk after the stream), which saves the stream's several task hops on a typed glyph's box.

export class PaletteError extends Error {}

export function bitsFor(colors) {
  return colors <= 2 ? 1 : colors <= 4 ? 2 : colors <= 16 ? 4 : 8;
}

/** checkPalette for PALETTE_PACKED: { colors, start: 1 }. */
export function checkPackedPalette(data) {
  if (data.length < 7) throw new PaletteError("packed palette tile shorter than a zlib stream");
  const cmf = data[1], flg = data[2];
  if ((cmf & 0x0f) !== 8 || ((cmf << 8) | flg) % 31) throw new PaletteError("palette tile has no zlib stream");
  return { colors: data[0] + 1, start: 1 };
}

/** Cheap header check, no inflating: { colors, start } (start = offset of the zlib stream). */
export function checkPalette(data) {
  if (!data.length) throw new PaletteError("empty palette tile");
  const colors = data[0] + 1;
  const start = 1 + 3 * colors;
  if (data.length < start + 6) throw new PaletteError("palette tile shorter than its palette");
  const cmf = data[start], flg = data[start + 1];
  if ((cmf & 0x0f) !== 8 || ((cmf << 8) | flg) % 31) throw new PaletteError("palette tile has no zlib stream");
  return { colors, start };
}

async function inflate(bytes, limit) {
  const ds = new DecompressionStream("deflate");
  const writer = ds.writable.getWriter();
  writer.write(bytes).catch(() => {});
  writer.close().catch(() => {});
  const reader = ds.readable.getReader();
  const out = new Uint8Array(limit);
  let n = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      throw new PaletteError("palette tile's zlib stream is corrupt");
    }
    if (chunk.done) break;
    if (n + chunk.value.length > limit) {
      reader.cancel().catch(() => {});
      throw new PaletteError("palette tile inflates past its size");
    }
    out.set(chunk.value, n);
    n += chunk.value.length;
  }
  if (n !== limit) throw new PaletteError("palette tile inflates short of its size");
  return out;
}

/**
 * Copy a zlib stream made of stored deflate blocks only (RFC 1950/1951) into limit bytes, or null
 * when a block is not stored (zlib may store some blocks of any stream: the caller inflates it
 * then, having spent one pass over the input). Throws PaletteError on any deviation: a block past
 * limit, a LEN/NLEN mismatch, truncation, a bad checksum, junk after the stream, output short of
 * limit.
 */
export function copyStored(bytes, limit) {
  if (bytes.length < 7 || (bytes[1] & 0x20) || (bytes[2] & 0x06)) return null; // FDICT; not stored
  const out = new Uint8Array(limit);
  let pos = 2, n = 0;
  for (let final = 0; !final;) {
    if (pos + 5 > bytes.length) throw new PaletteError("palette tile's zlib stream is corrupt");
    const head = bytes[pos];
    if (head & 0x06) return null;
    final = head & 1;
    const len = bytes[pos + 1] | (bytes[pos + 2] << 8), nlen = bytes[pos + 3] | (bytes[pos + 4] << 8);
    if ((len ^ nlen) !== 0xffff) throw new PaletteError("palette tile's zlib stream is corrupt");
    pos += 5;
    if (n + len > limit) throw new PaletteError("palette tile inflates past its size");
    if (pos + len > bytes.length) throw new PaletteError("palette tile's zlib stream is corrupt");
    out.set(bytes.subarray(pos, pos + len), n);
    n += len;
    pos += len;
  }
  if (pos + 4 !== bytes.length) throw new PaletteError("palette tile's zlib stream is corrupt");
  let a = 1, b = 0;
  for (let i = 0; i < n; i++) { a = (a + out[i]) % 65521; b = (b + a) % 65521; }
  const sum = ((bytes[pos] << 24) | (bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3]) >>> 0;
  if (((b << 16) | a) >>> 0 !== sum) throw new PaletteError("palette tile's zlib stream is corrupt");
  if (n !== limit) throw new PaletteError("palette tile inflates short of its size");
  return out;
}

/**
 * Decode to an ImageData of w x h (opaque), or throw PaletteError on any deviation. Returns the
 * ImageData itself when the stream is stored blocks (no await), else a promise of it.
 */
export function decodePaletteNow(w, h, data, packed = false) {
  const { colors, start } = packed ? checkPackedPalette(data) : checkPalette(data);
  const head = packed ? 3 * colors : 0; // the palette, when it travels in the stream
  const stride = (w * bitsFor(colors) + 7) >> 3;
  const stream = data.subarray(start);
  const done = (body) => paint(w, h, packed ? undelta(body, colors) : data.subarray(1, start),
                               colors, body.subarray(head));
  const body = copyStored(stream, head + stride * h);
  if (body) return done(body);
  return inflate(stream, head + stride * h).then(done);
}

/** Decode to an ImageData of w x h (opaque); rejects with PaletteError on any deviation. */
export async function decodePalette(w, h, data, packed = false) {
  return decodePaletteNow(w, h, data, packed);
}

/** PALETTE_PACKED's planar deltas (the first 3 x colors bytes of body) to r, g, b triplets. */
function undelta(body, colors) {
  const rgb = new Uint8Array(3 * colors);
  for (let c = 0; c < 3; c++) {
    let v = 0;
    for (let i = 0; i < colors; i++) {
      v = (v + body[c * colors + i]) & 0xff;
      rgb[3 * i + c] = v;
    }
  }
  return rgb;
}

/** rgb: the palette as r, g, b bytes per colour; rows: the index rows. */
function paint(w, h, rgb, colors, rows) {
  const bits = bitsFor(colors);
  const stride = (w * bits + 7) >> 3;
  const pal = new Uint32Array(colors);
  for (let i = 0; i < colors; i++) {
    const o = 3 * i; // RGBA bytes in memory = 0xAABBGGRR on little-endian machines
    pal[i] = (0xff000000 | (rgb[o + 2] << 16) | (rgb[o + 1] << 8) | rgb[o]) >>> 0;
  }
  const img = new ImageData(w, h);
  const px = new Uint32Array(img.data.buffer);
  const per = 8 / bits, mask = (1 << bits) - 1;
  for (let y = 0; y < h; y++) {
    const row = y * stride, line = y * w;
    for (let x = 0; x < w; x++) {
      const idx = bits === 8 ? rows[row + x]
        : (rows[row + ((x / per) | 0)] >> (8 - bits - (x % per) * bits)) & mask;
      if (idx >= colors) throw new PaletteError(`palette index ${idx} of ${colors} colours`);
      px[line + x] = pal[idx];
    }
  }
  return img;
}
