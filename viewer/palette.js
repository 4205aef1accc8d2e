// PALETTE tiles (TileFormat.PALETTE, wire version 3), mirroring gateway/wire/display/palette.py.
// Attacker-controlled: the tile data. Limits: 1..256 colours; inflating stops as soon as the
// output passes h rows of ceil(w*bits/8) bytes (a zlib bomb costs at most that plus one chunk);
// every index must be below the colour count; junk after the zlib stream is an error.
//
// Tile data: | colors-1 u8 | palette: colors x (r u8 | g u8 | b u8) | zlib stream (RFC 1950) |
// The stream inflates to h rows of w indices of `bits` bits (1 for <= 2 colours, 2 for <= 4,
// 4 for <= 16, else 8), most significant bit first, each row padded to a whole byte.
// Inflating runs in the browser's native DecompressionStream, off the page's JavaScript.

export class PaletteError extends Error {}

export function bitsFor(colors) {
  return colors <= 2 ? 1 : colors <= 4 ? 2 : colors <= 16 ? 4 : 8;
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

/** Decode to an ImageData of w x h (opaque); rejects with PaletteError on any deviation. */
export async function decodePalette(w, h, data) {
  const { colors, start } = checkPalette(data);
  const bits = bitsFor(colors);
  const stride = (w * bits + 7) >> 3;
  const rows = await inflate(data.subarray(start), stride * h);
  const pal = new Uint32Array(colors);
  for (let i = 0; i < colors; i++) {
    const o = 1 + 3 * i; // RGBA bytes in memory = 0xAABBGGRR on little-endian machines
    pal[i] = (0xff000000 | (data[o + 2] << 16) | (data[o + 1] << 8) | data[o]) >>> 0;
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
