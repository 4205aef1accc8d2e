// Display protocol codec, mirroring gateway/wire/display.py (see docs/PROTOCOL.md).
// Attacker-controlled: every byte from the socket. Limits: per-type payload bounds are checked
// from the 5-byte header before buffering; texts are strict UTF-8 capped at MAX_TEXT bytes,
// clipboard text at MAX_CLIPBOARD.
// Every message: | type u8 | length u32 | payload |, big-endian.

import { checkPackedPalette, checkPalette } from "./palette.js";

export const VERSION = 4; // 2 added the clipboard flags and messages, 3 the PALETTE tile format,
// 4 PALETTE_PACKED
export const MAX_DIMENSION = 8192;
export const MAX_TILE_DATA = 4 * 1024 * 1024;
export const MAX_CURSOR_SIDE = 256;
export const MAX_CURSOR_DATA = 256 * 1024;
export const MAX_TEXT = 1024;
export const MAX_SESSION_ID = 64;
export const MAX_CLIPBOARD = 1024 * 1024;
export const MAX_RECEIPT = 4096;

export const T = Object.freeze({
  HELLO: 0x01, RESIZE: 0x02, TILE: 0x03, COPY: 0x04, CURSOR: 0x05, SYNC: 0x06,
  NOTICE: 0x07, END: 0x08, PONG: 0x09, FILL: 0x0a, CLIPBOARD_OUT: 0x0b, RECEIPT: 0x0c,
  RESUME: 0x80, ACK: 0x81, KEY: 0x82, POINTER: 0x83, PING: 0x84, CLIPBOARD_IN: 0x85, BLOCKED: 0x86,
  HELP_STATE: 0x20, HELP: 0xa0, // call-centre help, only after a Hello with HelloFlags.HELP
});
export const TileFormat = Object.freeze({ PNG: 1, JPEG: 2, WEBP: 3, PALETTE: 4, PALETTE_PACKED: 5 });
export const MIME = Object.freeze({ 1: "image/png", 2: "image/jpeg", 3: "image/webp" });
export const HelloFlags = Object.freeze({
  VIEW_ONLY: 1, RECORDED: 2, WATERMARKED: 4, CLIPBOARD_TO_REMOTE: 8, CLIPBOARD_TO_LOCAL: 16,
  HELP: 256,
});
/** Call-centre help: where it stands (HelpState) and what the teacher does (Help). */
export const HelpStatus = Object.freeze({ NONE: 0, ASKED: 1, WATCHING: 2, CONTROL: 3 });
export const HelpAction = Object.freeze({ ASK: 1, ALLOW_CONTROL: 2, VIEW_ONLY: 3, END: 4 });
/** Notice codes the page shows apart (others are plain notes). */
export const NoticeCode = Object.freeze({ IDLE: 1, WATCHED: 2, POSTURE: 3 });
/** Blocked kinds: what the page refused, for the gateway's audit. */
export const BlockedKind = Object.freeze({ PASTE: 1, COPY: 2, DROP: 3, PRINT: 4, DRAG: 5 });

export class ProtocolError extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const toUtf8 = new TextEncoder();


function text(bytes, what) {
  if (bytes.length > MAX_TEXT) throw new ProtocolError(`${what} too long`);
  try { return utf8.decode(bytes); } catch { throw new ProtocolError(`${what} is not UTF-8`); }
}

function dim(v, what) {
  if (v < 1 || v > MAX_DIMENSION) throw new ProtocolError(`${what} ${v} out of range`);
  return v;
}

function startsWith(bytes, sig) {
  if (bytes.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[i] !== sig[i]) return false;
  return true;
}

function checkImage(format, data) {
  if (format === TileFormat.PALETTE || format === TileFormat.PALETTE_PACKED) {
    try {
      if (format === TileFormat.PALETTE) checkPalette(data); else checkPackedPalette(data);
    } catch (e) { throw new ProtocolError(e.message); }
    return;
  }
  const ok = format === TileFormat.PNG ? startsWith(data, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    : format === TileFormat.JPEG ? startsWith(data, [0xff, 0xd8, 0xff])
    : format === TileFormat.WEBP ? startsWith(data, [0x52, 0x49, 0x46, 0x46])
      && data.length >= 12 && startsWith(data.subarray(8), [0x57, 0x45, 0x42, 0x50])
    : false;
  if (!ok) throw new ProtocolError("tile image has the wrong signature");
}

// --- gateway -> viewer decoders: each takes (DataView of payload, Uint8Array of payload) ------

// | 0x01 | len | version u16 | width u16 | height u16 | flags u32 | sid_len u8 | sid | info |
function dHello(v, b) {
  const sidLen = v.getUint8(10);
  if (sidLen > MAX_SESSION_ID || 11 + sidLen > b.length) throw new ProtocolError("bad session id");
  return {
    type: "hello", version: v.getUint16(0), width: dim(v.getUint16(2), "width"),
    height: dim(v.getUint16(4), "height"), flags: v.getUint32(6),
    sessionId: text(b.subarray(11, 11 + sidLen), "session id"), info: text(b.subarray(11 + sidLen), "info"),
  };
}
// | 0x02 | len=4 | width u16 | height u16 |
function dResize(v) {
  return { type: "resize", width: dim(v.getUint16(0), "width"), height: dim(v.getUint16(2), "height") };
}
// | 0x03 | len | x u16 | y u16 | w u16 | h u16 | format u8 | image bytes |
function dTile(v, b) {
  const format = v.getUint8(8);
  const data = b.slice(9);
  checkImage(format, data);
  return { type: "tile", x: v.getUint16(0), y: v.getUint16(2), w: dim(v.getUint16(4), "w"),
    h: dim(v.getUint16(6), "h"), format, data };
}
// | 0x04 | len=12 | src_x u16 | src_y u16 | dst_x u16 | dst_y u16 | w u16 | h u16 |
function dCopy(v) {
  return { type: "copy", srcX: v.getUint16(0), srcY: v.getUint16(2), dstX: v.getUint16(4),
    dstY: v.getUint16(6), w: dim(v.getUint16(8), "w"), h: dim(v.getUint16(10), "h") };
}
// | 0x05 | len | hot_x u16 | hot_y u16 | w u16 | h u16 | RGBA PNG |  (w=h=0: hidden)
function dCursor(v, b) {
  const m = { type: "cursor", hotX: v.getUint16(0), hotY: v.getUint16(2), w: v.getUint16(4),
    h: v.getUint16(6), png: b.slice(8) };
  if (m.w > MAX_CURSOR_SIDE || m.h > MAX_CURSOR_SIDE) throw new ProtocolError("cursor too large");
  if (m.w && (m.hotX >= m.w || m.hotY >= m.h)) throw new ProtocolError("bad cursor hotspot");
  if (m.w) checkImage(TileFormat.PNG, m.png);
  return m;
}
// | 0x06 | len=12 | frame_id u32 | timestamp_ms u64 |
function dSync(v) {
  return { type: "sync", frameId: v.getUint32(0), timestampMs: Number(v.getBigUint64(4)) };
}
// | 0x07 | len | level u8 | code u16 | text |
function dNotice(v, b) {
  const level = v.getUint8(0);
  if (level > 2) throw new ProtocolError("bad notice level");
  return { type: "notice", level, code: v.getUint16(1), text: text(b.subarray(3), "notice") };
}
// | 0x08 | len | code u16 | text |
function dEnd(v, b) { return { type: "end", code: v.getUint16(0), text: text(b.subarray(2), "end") }; }
// | 0x09 | len=8 | t u64 |
function dPong(v) { return { type: "pong", t: Number(v.getBigUint64(0)) }; }
// | 0x0A | len=11 | x u16 | y u16 | w u16 | h u16 | r u8 | g u8 | b u8 |
function dFill(v) {
  return { type: "fill", x: v.getUint16(0), y: v.getUint16(2), w: dim(v.getUint16(4), "w"),
    h: dim(v.getUint16(6), "h"), r: v.getUint8(8), g: v.getUint8(9), b: v.getUint8(10) };
}

// | 0x0B | len <= 1 MiB | text utf-8 (rest) |  (the length was bounded from the header)
function dClipboardOut(v, b) {
  try { return { type: "clipboard", text: utf8.decode(b) }; } catch {
    throw new ProtocolError("clipboard text is not UTF-8");
  }
}

// | 0x20 | len | status u8 | helper utf-8 (rest) |
function dHelpState(v, b) {
  const status = v.getUint8(0);
  if (status > HelpStatus.CONTROL) throw new ProtocolError("bad help status");
  return { type: "help", status, helper: text(b.subarray(1), "helper") };
}
// | 0x0C | len <= 4096 | receipt file bytes |  (from the agent itself, never the gateway)
function dReceipt(v, b) { return { type: "receipt", data: b.slice() }; }

// type -> [min payload, max payload, decoder]; anything else is refused.
const RULES = new Map([
  [T.HELLO, [11, 11 + MAX_SESSION_ID + MAX_TEXT, dHello]],
  [T.RESIZE, [4, 4, dResize]],
  [T.TILE, [12, 9 + MAX_TILE_DATA, dTile]],
  [T.COPY, [12, 12, dCopy]],
  [T.CURSOR, [8, 8 + MAX_CURSOR_DATA, dCursor]],
  [T.SYNC, [12, 12, dSync]],
  [T.NOTICE, [3, 3 + MAX_TEXT, dNotice]],
  [T.END, [2, 2 + MAX_TEXT, dEnd]],
  [T.PONG, [8, 8, dPong]],
  [T.FILL, [11, 11, dFill]],
  [T.CLIPBOARD_OUT, [0, MAX_CLIPBOARD, dClipboardOut]],
  [T.HELP_STATE, [1, 1 + MAX_TEXT, dHelpState]],
  [T.RECEIPT, [1, MAX_RECEIPT, dReceipt]],
]);

/** Resumable decoder of the gateway -> viewer stream. feed(Uint8Array) -> array of messages. */
export class Decoder {
  constructor() { this.buf = new Uint8Array(0); }

  feed(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf); joined.set(chunk, this.buf.length);
    const out = [];
    let off = 0;
    while (joined.length - off >= 5) {
      const view = new DataView(joined.buffer, joined.byteOffset + off);
      const type = view.getUint8(0), len = view.getUint32(1);
      const rule = RULES.get(type);
      if (!rule) throw new ProtocolError(`unknown message type ${type}`);
      if (len < rule[0] || len > rule[1]) throw new ProtocolError(`bad length ${len} for type ${type}`);
      if (joined.length - off - 5 < len) break;
      const payload = joined.subarray(off + 5, off + 5 + len);
      out.push(rule[2](new DataView(payload.buffer, payload.byteOffset, len), payload));
      off += 5 + len;
    }
    this.buf = joined.slice(off);
    return out;
  }
}

function frame(type, len, fill) {
  const b = new Uint8Array(5 + len);
  const v = new DataView(b.buffer);
  v.setUint8(0, type); v.setUint32(1, len);
  fill(new DataView(b.buffer, 5), b.subarray(5));
  return b;
}

// --- viewer -> gateway encoders -------------------------------------------------------------

// | 0x80 | len=6 | version u16 | last_frame_id u32 |
export function encodeResume(version, lastFrameId) {
  return frame(T.RESUME, 6, (v) => { v.setUint16(0, version); v.setUint32(2, lastFrameId >>> 0); });
}
// | 0x81 | len=4 | frame_id u32 |
export function encodeAck(frameId) { return frame(T.ACK, 4, (v) => v.setUint32(0, frameId >>> 0)); }
// | 0x82 | len=5 | keysym u32 | down u8 |
export function encodeKey(keysym, down) {
  return frame(T.KEY, 5, (v) => { v.setUint32(0, keysym >>> 0); v.setUint8(4, down ? 1 : 0); });
}
// | 0x83 | len=6 | x u16 | y u16 | buttons u16 |
export function encodePointer(x, y, buttons) {
  return frame(T.POINTER, 6, (v) => { v.setUint16(0, x); v.setUint16(2, y); v.setUint16(4, buttons); });
}
// | 0x84 | len=8 | t u64 |
export function encodePing(t) { return frame(T.PING, 8, (v) => v.setBigUint64(0, BigInt(Math.floor(t)))); }
// | 0x85 | len <= 1 MiB | text utf-8 (rest) |  (only when the Hello allows CLIPBOARD_TO_REMOTE)
export function encodeClipboardIn(text) {
  const bytes = toUtf8.encode(text);
  if (bytes.length > MAX_CLIPBOARD) throw new RangeError("clipboard text too long");
  return frame(T.CLIPBOARD_IN, bytes.length, (v, b) => b.set(bytes));
}
// | 0x86 | len=1 | kind u8 |  (BlockedKind)
export function encodeBlocked(kind) { return frame(T.BLOCKED, 1, (v) => v.setUint8(0, kind)); }
// | 0xA0 | len=1 | action u8 |  (HelpAction; only when the Hello offers HELP)
export function encodeHelp(action) { return frame(T.HELP, 1, (v) => v.setUint8(0, action)); }
