// Keyboard and pointer capture: browser events -> X keysyms and RFB button masks.
// Attacker-controlled: nothing (local events); what we send is re-checked by the gateway.
// Keys are taken from the whole window, not just the canvas, so browser shortcuts (Ctrl+P print,
// Ctrl+S save, Ctrl+F find, Ctrl+C/V/X) go to the remote desktop wherever the focus is; the
// browser keeps the ones pages cannot cancel (Ctrl+W/T/N… outside keyboard lock, see LOCKDOWN.md).
// IME: the canvas is not editable, so the local IME does not compose; keys go out raw and the
// remote desktop's IME (e.g. fcitx5-mozc) composes. Keys the local IME swallows ("Process",
// keyCode 229) are mapped from their physical `code`; text from a composition that still
// happens is sent as Unicode keysyms.

import { toDesktop } from "./canvas.js";

// event.key -> keysym for non-printing keys (X11 keysymdef.h).
export const KEYSYMS = Object.freeze({
  Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff,
  Home: 0xff50, ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
  PageUp: 0xff55, PageDown: 0xff56, End: 0xff57, Insert: 0xff63, ContextMenu: 0xff67,
  Pause: 0xff13, ScrollLock: 0xff14, PrintScreen: 0xff61, NumLock: 0xff7f, CapsLock: 0xffe5,
  Clear: 0xff0b, Help: 0xff6a,
  // Japanese keyboard keys (keysymdef.h "Japanese keyboard support").
  Convert: 0xff23, // 変換 Henkan
  NonConvert: 0xff22, // 無変換 Muhenkan
  KanaMode: 0xff27, // カタカナ/ひらがな Hiragana_Katakana
  HiraganaKatakana: 0xff27,
  Hiragana: 0xff25,
  Katakana: 0xff26,
  Zenkaku: 0xff2a, // 半角/全角 Zenkaku_Hankaku (browsers report the state the key toggles to)
  Hankaku: 0xff2a,
  ZenkakuHankaku: 0xff2a,
  Romaji: 0xff24,
  Eisu: 0xff30, // 英数 Eisu_toggle
  Alphanumeric: 0xff30,
  KanjiMode: 0xff21,
});

// Modifiers differ left/right, so they go by `code`.
const CODE_KEYSYMS = Object.freeze({
  ShiftLeft: 0xffe1, ShiftRight: 0xffe2, ControlLeft: 0xffe3, ControlRight: 0xffe4,
  AltLeft: 0xffe9, AltRight: 0xffea, MetaLeft: 0xffeb, MetaRight: 0xffec, OSLeft: 0xffeb,
  OSRight: 0xffec, Convert: 0xff23, NonConvert: 0xff22, KanaMode: 0xff27, Lang1: 0xff27,
  Lang2: 0xff30, Backquote: 0x60, IntlRo: 0x5c, IntlYen: 0xa5,
  Space: 0x20, Enter: 0xff0d, Backspace: 0xff08,
  Tab: 0xff09, Escape: 0xff1b,
});

/** The keysym of a Unicode character (keysymdef.h: Latin-1 direct, the rest 0x01000000+cp). */
export function charKeysym(ch) {
  const cp = ch.codePointAt(0);
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return 0x01000000 + cp;
}

// Physical key -> keysym, used when the local IME hides `key` ("Process").
function codeKeysym(code, shift) {
  if (code in CODE_KEYSYMS) return CODE_KEYSYMS[code];
  let m = /^Key([A-Z])$/.exec(code);
  if (m) return (shift ? m[1] : m[1].toLowerCase()).charCodeAt(0);
  m = /^Digit([0-9])$/.exec(code);
  if (m) return m[1].charCodeAt(0);
  m = /^F([0-9]{1,2})$/.exec(code);
  if (m && +m[1] >= 1 && +m[1] <= 24) return 0xffbe + (+m[1] - 1);
  return null;
}

/** The keysym for a keydown/keyup event, or null if the key cannot be sent. */
export function keysymFor(event) {
  const { key, code } = event;
  if (/^(Shift|Control|Alt|Meta|OS)(Left|Right)$/.test(code)) return CODE_KEYSYMS[code];
  if (code === "NumpadEnter") return 0xff8d;
  if (key in KEYSYMS) return KEYSYMS[key];
  const fn = /^F([0-9]{1,2})$/.exec(key);
  if (fn && +fn[1] >= 1 && +fn[1] <= 24) return 0xffbe + (+fn[1] - 1);
  if (key === "Process" || key === "Unidentified" || event.keyCode === 229) {
    return codeKeysym(code, event.shiftKey);
  }
  if ([...key].length === 1) return charKeysym(key);
  if (key === "Dead") return null; // the composed character arrives as a composition
  return codeKeysym(code, event.shiftKey);
}

// Browser `buttons` bits -> RFB mask bits (RFB: 0 left, 1 middle, 2 right, 7 back).
function rfbButtons(buttons) {
  return (buttons & 1) | ((buttons & 4) >> 1) | ((buttons & 2) << 1) | ((buttons & 8) << 4);
}

const WHEEL_STEP = 50; // CSS pixels of scrolling per wheel click sent

// Keys a focused control of the page itself (the fullscreen button) keeps, unmodified.
const CONTROL_KEYS = new Set(["Enter", " ", "Tab"]);

function forControl(e) {
  const t = e.target;
  return t instanceof HTMLButtonElement && CONTROL_KEYS.has(e.key)
    && !(e.ctrlKey || e.altKey || e.metaKey);
}

/**
 * Captures pointer input on `canvas` and keys on `keyTarget` (the canvas by default; the viewer
 * passes `window`) and reports them through onKey(keysym, down) / onPointer(x, y, buttons).
 */
export class InputCapture {
  constructor(canvas, { onKey, onPointer, keyTarget = canvas }) {
    this.canvas = canvas;
    this.keyTarget = keyTarget;
    this.onKey = onKey; // (keysym, down)
    this.onPointer = onPointer; // (x, y, buttons)
    this.pressed = new Map(); // code -> keysym sent on keydown, so keyup matches it
    this.buttons = 0;
    this.pos = { x: 0, y: 0 };
    this.wheel = { x: 0, y: 0 };
    this.enabled = true;
    this.handlers = [];
  }

  listen(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.handlers.push(() => target.removeEventListener(type, fn, opts));
  }

  attach() {
    const c = this.canvas;
    const k = this.keyTarget;
    // Capture phase: nothing on the page sees a key before it is sent (or kept, see forControl).
    this.listen(k, "keydown", (e) => this.key(e, true), { capture: true });
    this.listen(k, "keyup", (e) => this.key(e, false), { capture: true });
    this.listen(c, "blur", () => this.releaseAll());
    if (k !== c) this.listen(window, "blur", () => this.releaseAll());
    this.listen(c, "compositionend", (e) => this.text(e.data));
    this.listen(c, "pointerdown", (e) => { c.focus(); c.setPointerCapture(e.pointerId); this.pointer(e); });
    this.listen(c, "pointerup", (e) => this.pointer(e));
    this.listen(c, "pointermove", (e) => this.pointer(e));
    this.listen(c, "wheel", (e) => this.wheelEvent(e), { passive: false });
    this.listen(c, "contextmenu", (e) => e.preventDefault());
  }

  detach() { this.releaseAll(); for (const off of this.handlers.splice(0)) off(); }

  key(e, down) {
    if (forControl(e)) return;
    e.preventDefault(); // no browser shortcuts (print, save, find, copy, paste) on this page
    e.stopPropagation();
    if (!this.enabled) return;
    // A keyup sends what its keydown sent; one whose keydown we never saw is not sent.
    const keysym = down ? keysymFor(e) : this.pressed.get(e.code);
    if (keysym == null) return;
    if (down) this.pressed.set(e.code, keysym);
    else this.pressed.delete(e.code);
    this.onKey(keysym, down);
    // Browsers send no keyup for toggles like 半角/全角 while an IME is active: release now.
    if (down && (keysym === 0xff2a || keysym === 0xff27) && e.repeat === false) {
      this.pressed.delete(e.code);
      this.onKey(keysym, false);
    }
  }

  text(data) {
    if (!this.enabled || !data) return;
    for (const ch of data) { const k = charKeysym(ch); this.onKey(k, true); this.onKey(k, false); }
  }

  releaseAll() {
    for (const keysym of this.pressed.values()) this.onKey(keysym, false);
    this.pressed.clear();
    if (this.buttons) { this.buttons = 0; this.onPointer(this.pos.x, this.pos.y, 0); }
  }

  pointer(e) {
    e.preventDefault();
    if (!this.enabled) return;
    this.pos = toDesktop(this.canvas, e.clientX, e.clientY);
    this.buttons = rfbButtons(e.buttons);
    this.onPointer(this.pos.x, this.pos.y, this.buttons);
  }

  wheelEvent(e) {
    e.preventDefault();
    if (!this.enabled) return;
    const unit = e.deltaMode === 1 ? WHEEL_STEP : e.deltaMode === 2 ? WHEEL_STEP * 10 : 1;
    this.pos = toDesktop(this.canvas, e.clientX, e.clientY);
    this.wheel.x += e.deltaX * unit;
    this.wheel.y += e.deltaY * unit;
    const click = (bit) => {
      this.onPointer(this.pos.x, this.pos.y, this.buttons | (1 << bit));
      this.onPointer(this.pos.x, this.pos.y, this.buttons);
    };
    // Bits 3/4: wheel up/down; 5/6: wheel left/right (X buttons 4-7).
    for (; this.wheel.y <= -WHEEL_STEP; this.wheel.y += WHEEL_STEP) click(3);
    for (; this.wheel.y >= WHEEL_STEP; this.wheel.y -= WHEEL_STEP) click(4);
    for (; this.wheel.x <= -WHEEL_STEP; this.wheel.x += WHEEL_STEP) click(5);
    for (; this.wheel.x >= WHEEL_STEP; this.wheel.x -= WHEEL_STEP) click(6);
  }
}
