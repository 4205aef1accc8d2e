// The recordings player: plays a recording on a canvas with the viewer's own decoder and
// renderer, from replay windows (GET /api/v1/recordings/{id}/window?t=MS): the whole frame at or
// before t, then the frames of the minute after it, as items | t_ms u64 | length u32 | bytes |.
// A seek draws a window's key frame and every frame up to t at once, then plays on; the next
// window is fetched ahead, and switching to it is a seek the viewer does not notice.
// Attacker-controlled: nothing new (our gateway's answers; item lengths are checked against the
// body, display bytes by protocol.js).

import { fitCanvas, Renderer } from "../viewer/canvas.js";
import { Decoder } from "../viewer/protocol.js";
import { getBytes } from "./api.js";

export const SPEEDS = Object.freeze([0.5, 1, 2, 4, 8]);
const WINDOW_MS = 60_000; // what one window covers after max(t, its key frame)
const PREFETCH_MS = 20_000; // recording time before a window runs out to ask for the next
const MAX_TICK_MS = 250; // the time display moves at least this often

/** A window body as [{ t, bytes }]; a malformed body is an Error (no partial windows). */
export function parseWindow(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const items = [];
  for (let off = 0; off < bytes.length;) {
    if (bytes.length - off < 12) throw new Error("the replay window is cut off");
    const t = Number(view.getBigUint64(off));
    const length = view.getUint32(off + 8);
    if (length > bytes.length - off - 12) throw new Error("a replay item runs past the window");
    items.push({ t, bytes: bytes.subarray(off + 12, off + 12 + length) });
    off += 12 + length;
  }
  if (!items.length) throw new Error("the replay window is empty");
  return items;
}

export class Player {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{id: string, durationMs: number, box: HTMLElement,
   *          onTime?: (ms:number)=>void, onState?: (state:string, detail?:string)=>void,
   *          onSeeked?: (ms:number, tookMs:number)=>void}} options
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.o = options;
    this.duration = Math.max(0, options.durationMs);
    this.renderer = new Renderer(canvas, {
      onResize: () => fitCanvas(canvas, options.box),
      onError: (error) => this.fail(error),
    });
    this.speed = 1;
    this.playing = false;
    this.wantPlay = true; // a replay starts playing once its first window is drawn
    this.pos0 = 0; // recording time at wall0 (or the paused position)
    this.wall0 = 0;
    this.window = null; // { reqT, start, items, next, decoder }
    this.ahead = null; // { t, window } of the next window, window null until it arrives
    this.generation = 0;
    this.abort = new AbortController();
    this.timer = null;
    this.first = true; // the gateway audits the first window of each replay
    this.state = "loading";
  }

  now() {
    const t = this.playing ? this.pos0 + (performance.now() - this.wall0) * this.speed : this.pos0;
    return Math.min(t, this.duration);
  }

  /** Draw the picture at `ms` as soon as its window is here; keeps playing if it was. */
  async seek(ms) {
    const target = Math.max(0, Math.min(Math.round(ms), this.duration));
    const started = performance.now();
    const mine = ++this.generation;
    this.halt();
    this.pos0 = target;
    this.ahead = null;
    this.setState("loading");
    let win;
    try {
      win = await this.fetchWindow(target);
    } catch (error) {
      if (mine === this.generation) this.fail(error);
      return;
    }
    if (mine !== this.generation) return; // a later seek (or close) won
    this.window = win;
    if (!this.drawUpTo(target)) return;
    await this.renderer.idle();
    if (mine !== this.generation) return;
    this.o.onSeeked?.(target, performance.now() - started);
    this.o.onTime?.(target);
    if (this.wantPlay && target < this.duration) this.start();
    else this.setState(target >= this.duration ? "ended" : "paused");
  }

  play() {
    if (this.state === "error" || this.playing) return;
    this.wantPlay = true;
    if (this.state === "loading") return; // the pending seek starts playing when drawn
    if (this.now() >= this.duration) { this.seek(0); return; } // from the start again
    this.start();
  }

  start() {
    this.playing = true;
    this.wall0 = performance.now();
    this.setState("playing");
    this.tick();
  }

  pause() {
    this.wantPlay = false;
    if (!this.playing) return;
    this.halt();
    // The picture stops exactly at the paused time: frames due since the last tick go on now.
    if (!this.advance(this.pos0)) return;
    this.o.onTime?.(this.pos0);
    this.setState("paused");
  }

  setSpeed(speed) {
    if (!SPEEDS.includes(speed)) return;
    this.pos0 = this.now(); // the clock rebases: the picture does not jump
    this.wall0 = performance.now();
    this.speed = speed;
    if (this.playing) this.setState("playing");
  }

  close() {
    this.generation += 1;
    this.halt();
    this.abort.abort();
    this.renderer.hold(); // nothing it still has queued reaches the next replay's canvas
    this.window = this.ahead = null;
    this.state = "closed";
  }

  halt() {
    this.pos0 = this.now();
    this.playing = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  tick() {
    this.timer = null;
    if (!this.playing) return;
    const cur = this.now();
    if (!this.advance(cur)) return;
    this.o.onTime?.(cur);
    if (cur >= this.duration) {
      this.halt();
      this.setState("ended");
      return;
    }
    const next = this.window.items[this.window.next];
    const wait = next ? (next.t - cur) / this.speed : MAX_TICK_MS;
    this.timer = setTimeout(() => this.tick(), Math.max(5, Math.min(MAX_TICK_MS, wait)));
  }

  /** Play forward to `cur`: this window's due frames, the next window once this one is done. */
  advance(cur) {
    const win = this.window;
    if (!this.drawUpTo(cur)) return false;
    const last = win.items[win.items.length - 1].t;
    if (!this.ahead && cur >= last - PREFETCH_MS) this.prefetch(win, last);
    if (win.next < win.items.length || !this.ahead?.window) return true;
    if (cur < this.ahead.window.start) return true; // its key frame lies ahead: not yet
    this.window = this.ahead.window;
    this.ahead = null;
    return this.drawUpTo(cur);
  }

  prefetch(win, last) {
    // After the last frame we have; across a quiet minute (no frame after the request time),
    // from the end of what the window covered, so that playback always moves on.
    const t = last > win.reqT ? last + 1 : Math.max(win.reqT, win.start) + WINDOW_MS + 1;
    if (t > this.duration) return;
    const ahead = { t, window: null };
    this.ahead = ahead;
    const mine = this.generation;
    this.fetchWindow(t).then((w) => { ahead.window = w; }, (error) => {
      if (mine === this.generation) this.fail(error);
    });
  }

  /** Queue this window's frames up to t on the renderer; false if the stream is malformed. */
  drawUpTo(t) {
    const win = this.window;
    try {
      while (win.next < win.items.length && win.items[win.next].t <= t) {
        for (const msg of win.decoder.feed(win.items[win.next].bytes)) {
          if (msg.type !== "end") this.renderer.apply(msg);
        }
        win.next += 1;
      }
    } catch (error) {
      this.fail(error);
      return false;
    }
    return true;
  }

  async fetchWindow(t) {
    const first = this.first ? "&first=1" : "";
    this.first = false; // once per replay, even if a seek overtakes this request
    const { bytes, headers } = await getBytes(
      `/api/v1/recordings/${encodeURIComponent(this.o.id)}/window?t=${t}${first}`,
      { signal: this.abort.signal });
    const items = parseWindow(bytes);
    const start = Number(headers.get("X-Staffroom-Window-Start") ?? items[0].t);
    return { reqT: t, start, items, next: 0, decoder: new Decoder() };
  }

  fail(error) {
    if (error?.name === "AbortError" || this.state === "closed") return;
    this.halt();
    this.generation += 1;
    this.setState("error", error?.message ?? String(error));
  }

  setState(state, detail) {
    this.state = state;
    this.o.onState?.(state, detail);
  }
}
