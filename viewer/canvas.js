// Canvas renderer: draws decoded display messages, in order. It knows nothing of sockets, so
// the same class plays recordings and read-only live views (feed it decoded messages).
// Attacker-controlled: message fields (already bounds-checked by protocol.js); images are decoded
// by the browser with colour conversion off, PALETTE tiles by palette.js (bounded); drawing outside
// the canvas is clipped by it.

import { decodePaletteNow } from "./palette.js";
import { MIME, TileFormat } from "./protocol.js";

// Image tiles decode with WebCodecs' ImageDecoder where the page has it (a secure context: the
// agent's 127.0.0.1 page, the console over HTTPS): it takes the bytes as they are, while
// createImageBitmap needs a Blob and a round trip through the browser's blob registry first.
// Measured in Chromium for a glyph's lossless WebP tile: 0.3-0.5 ms against 1.4-2.4 ms, which
// was most of the viewer's share of key-to-pixel latency (docs/PERFORMANCE.md, issue 11 part G).
const HAS_IMAGE_DECODER = typeof ImageDecoder === "function";

/** Start decoding one image tile; resolves to a VideoFrame or ImageBitmap (close() it). */
export function decodeImage(data, format) {
  const type = MIME[format];
  if (HAS_IMAGE_DECODER) {
    const decoder = new ImageDecoder({ data, type, colorSpaceConversion: "none",
                                       premultiplyAlpha: "none" });
    return decoder.decode().then((r) => r.image).finally(() => decoder.close());
  }
  return createImageBitmap(new Blob([data], { type }),
                           { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}

export class Renderer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onSync?: (id:number)=>void, onResize?: (w:number,h:number)=>void,
   *          onError?: (e:Error)=>void}} hooks
   */
  constructor(canvas, hooks = {}) {
    this.canvas = canvas;
    // Kept in memory (willReadFrequently): copies read the canvas back, which on a canvas held
    // by the GPU is a round trip each time; drawing tiles and fills costs little either way.
    this.ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
    this.hooks = hooks;
    this.chain = Promise.resolve();
    this.width = 0;
    this.height = 0;
    this.lastFrame = 0;
    this.failed = false;
    this.gate = null; // while held (printing): a promise that resolves on release()
    this.open = null;
  }

  /**
   * Stop touching the canvas until release(): queued messages wait, so the page can blank the
   * canvas and put it back. Nothing piles up meanwhile: no Acks go out, so the gateway's flow
   * control stops sending frames after max_unacked.
   */
  hold() {
    if (this.gate) return;
    this.gate = new Promise((resolve) => { this.open = resolve; });
  }

  release() {
    const open = this.open;
    this.gate = this.open = null;
    open?.();
  }

  /** Queue one decoded message. Images start decoding at once; drawing keeps message order. */
  apply(msg) {
    let pending = null;
    const packed = msg.format === TileFormat.PALETTE_PACKED;
    if (msg.type === "tile" && (msg.format === TileFormat.PALETTE || packed)) {
      // An ImageData at once for stored blocks (a small tile), else a promise of one.
      try {
        pending = decodePaletteNow(msg.w, msg.h, msg.data, packed);
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.catch?.(() => {});
    } else if (msg.type === "tile") {
      pending = decodeImage(msg.data, msg.format);
      pending.catch(() => {}); // reported when its turn comes
    }
    this.chain = this.chain.then(() => this.draw(msg, pending)).catch((err) => this.fail(err));
    return this.chain;
  }

  /** Resolves once everything queued so far is on the canvas. */
  idle() { return this.chain; }

  fail(err) {
    if (this.failed) return;
    this.failed = true;
    this.hooks.onError?.(err);
  }

  async draw(msg, pending) {
    const bitmap = pending ? await pending : null;
    // Re-checked after every wait: a hold() may come while a tile decodes. From here to the end
    // of the switch nothing awaits, so a held canvas is never drawn on.
    while (this.gate) await this.gate;
    if (this.failed) { bitmap?.close?.(); return; }
    const ctx = this.ctx;
    switch (msg.type) {
      case "hello":
      case "resize":
        this.width = this.canvas.width = msg.width;
        this.height = this.canvas.height = msg.height;
        ctx.imageSmoothingEnabled = false;
        ctx.fillStyle = "#000";
        ctx.fillRect(0, 0, msg.width, msg.height);
        this.hooks.onResize?.(msg.width, msg.height);
        break;
      case "fill":
        ctx.fillStyle = `rgb(${msg.r},${msg.g},${msg.b})`;
        ctx.fillRect(msg.x, msg.y, msg.w, msg.h);
        break;
      case "tile": {
        if (bitmap instanceof ImageData) { // PALETTE: already exactly msg.w x msg.h
          ctx.putImageData(bitmap, msg.x, msg.y);
          break;
        }
        try {
          const w = bitmap.displayWidth ?? bitmap.width, h = bitmap.displayHeight ?? bitmap.height;
          if (w !== msg.w || h !== msg.h) throw new Error("tile size mismatch");
          ctx.drawImage(bitmap, msg.x, msg.y);
        } finally {
          bitmap.close();
        }
        break;
      }
      case "copy": {
        // Read back and put: exact (opaque pixels, no compositing) and overlap-safe (the read
        // is a copy). drawImage with the canvas as its own source snapshots the whole canvas,
        // ~4 ms a copy at 1920x1080 whatever its size, against ~0.01 ms for a strip read back
        // (issue 11 part AM): a dragged window's steps and a scroll's each paid it.
        const pixels = ctx.getImageData(msg.srcX, msg.srcY, msg.w, msg.h);
        ctx.putImageData(pixels, msg.dstX, msg.dstY);
        break;
      }
      case "cursor":
        this.setCursor(msg);
        break;
      case "sync":
        this.lastFrame = msg.frameId;
        this.hooks.onSync?.(msg.frameId);
        break;
      default:
        break; // notices, pongs, ends are the caller's business
    }
  }

  setCursor(msg) {
    if (!msg.w) { this.canvas.style.cursor = "none"; return; }
    let bin = "";
    for (let i = 0; i < msg.png.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, msg.png.subarray(i, i + 0x8000));
    }
    this.canvas.style.cursor = `url(data:image/png;base64,${btoa(bin)}) ${msg.hotX} ${msg.hotY}, default`;
  }
}

/** Size the canvas element to fit `box` keeping the desktop's aspect ratio (CSSOM, CSP-safe). */
export function fitCanvas(canvas, box) {
  if (!canvas.width || !canvas.height) return;
  const scale = Math.min(box.clientWidth / canvas.width, box.clientHeight / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * scale)}px`;
  canvas.style.height = `${Math.floor(canvas.height * scale)}px`;
}

/** Map a client (CSS pixel) position to desktop pixels, clamped to the desktop. */
export function toDesktop(canvas, clientX, clientY) {
  const r = canvas.getBoundingClientRect();
  const clamp = (v, max) => Math.max(0, Math.min(max - 1, v));
  return {
    x: clamp(Math.floor(((clientX - r.left) * canvas.width) / r.width), canvas.width),
    y: clamp(Math.floor(((clientY - r.top) * canvas.height) / r.height), canvas.height),
  };
}
