// Clipboard between the home PC and the school desktop, in the directions the Hello allows.
// Attacker-controlled: ClipboardOut text from the gateway (bounded to MAX_CLIPBOARD by
// protocol.js) and whatever the home clipboard holds. Limits: text moves only in a direction the
// session allows, as text/plain, at most MAX_CLIPBOARD bytes; the page never reads
// navigator.clipboard (a paste's text comes from the paste event the teacher caused) and writes
// it only with to-local; every refusal is reported to the gateway, at most once a second per kind.

import * as P from "./protocol.js";
import { Clipboard, clipboardAllows } from "./session.js";
import { keysymFor } from "./input.js";

export const REPORT_EVERY_MS = 1000;
// The agent takes WebSocket frames of at most 64 KiB from the page (agent/viewer_server.py); a
// message may span frames, so long text goes up in pieces.
export const FRAME_BYTES = 32 * 1024;

const utf8 = new TextEncoder();

// Shortcuts whose browser default (the paste or copy event) must run when the direction is on.
function isPaste(e) {
  return ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === "v" || e.key === "V"))
    || (e.shiftKey && !e.ctrlKey && e.key === "Insert");
}

function isCopy(e) {
  return ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === "c" || e.key === "C"))
    || (e.ctrlKey && !e.shiftKey && e.key === "Insert");
}

/** What lock-down reports as blocked (its event names) -> the Blocked message's kind. */
export const BLOCKED_KIND = Object.freeze({
  paste: P.BlockedKind.PASTE, copy: P.BlockedKind.COPY, cut: P.BlockedKind.COPY,
  drop: P.BlockedKind.DROP, print: P.BlockedKind.PRINT, dragstart: P.BlockedKind.DRAG,
});

export const TEXT = Object.freeze({
  copied: "学校のパソコンからコピーしました Copied from the school desktop",
  pressCopy: "Ctrl+C でコピーできます Press Ctrl+C to copy from the school desktop",
  tooLong: "貼り付ける文字が長すぎます The text is too long to paste",
  notText: "文字だけ貼り付けられます Only text can be pasted",
});

/**
 * The clipboard half of the page. `send(bytes)` writes to the socket, `notify(text)` shows an
 * info notice, `getSession()` is the current session (session.js), `inputEnabled()` whether keys
 * go out now. Install `keyHook` on window (capture) *before* InputCapture, which cancels every
 * key's default action. For a paste shortcut (and, with desktop text waiting and to-local on, a
 * copy shortcut) the hook keeps the key from InputCapture, lets the browser fire its paste/copy
 * event, and sends the key itself after that event: with to-remote the desktop then pastes the
 * text just sent; with it off the event is refused (and reported) and the key still goes out, so
 * the desktop's own copy and paste keep working.
 */
export class ClipboardBridge {
  constructor({ send, notify, getSession, inputEnabled, now = () => performance.now() }) {
    Object.assign(this, { send, notify, getSession, inputEnabled, now });
    this.held = new Map(); // code -> keysym this hook sent down, so that it sends the key up too
    this.deferred = null; // a keysym waiting for its paste/copy event
    this.waiting = null; // ClipboardOut text not yet on the home clipboard
    this.reported = new Map(); // Blocked kind -> time of the last report
  }

  allows(direction) { return clipboardAllows(this.getSession(), direction); }

  /** keydown/keyup listener (window, capture phase, registered before InputCapture). */
  keyHook = (e) => {
    const down = e.type === "keydown";
    if (!down) {
      const keysym = this.held.get(e.code);
      if (keysym === undefined) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      this.held.delete(e.code);
      if (this.deferred !== null) this.flush();
      this.send(P.encodeKey(keysym, false));
      return;
    }
    if (!this.inputEnabled()) return;
    const paste = isPaste(e); // allowed or not: a refused paste is reported
    const copy = !paste && isCopy(e) && this.waiting !== null && this.allows(Clipboard.TO_LOCAL);
    if (!paste && !copy) return;
    const keysym = keysymFor(e);
    if (keysym == null) return;
    e.stopImmediatePropagation(); // no preventDefault: the browser's paste/copy must run
    this.flush();
    this.held.set(e.code, keysym);
    this.deferred = keysym;
    // The event fires during this keydown's default action; if none comes, send the key anyway.
    setTimeout(() => this.flush(), 0);
  };

  flush() {
    if (this.deferred === null) return;
    const keysym = this.deferred;
    this.deferred = null;
    this.send(P.encodeKey(keysym, true));
  }

  sendInPieces(bytes) {
    for (let i = 0; i < bytes.length; i += FRAME_BYTES) this.send(bytes.subarray(i, i + FRAME_BYTES));
  }

  /** A refused paste/copy/drop/print (lock-down cancelled it): report it, let the key go on. */
  blocked(what) {
    this.report(what);
    this.flush();
  }

  /** Release what this hook holds (the window lost focus). */
  releaseAll() {
    this.flush();
    for (const keysym of this.held.values()) this.send(P.encodeKey(keysym, false));
    this.held.clear();
  }

  /** An allowed paste event (lock-down has cancelled and stopped it): its text goes up. */
  paste(e) {
    const data = e.clipboardData;
    const text = data ? data.getData("text/plain") : "";
    if (text) {
      if (utf8.encode(text).length > P.MAX_CLIPBOARD) this.refuse("paste", TEXT.tooLong);
      else this.sendInPieces(P.encodeClipboardIn(text));
    } else if (data && data.types.length) {
      this.refuse("paste", TEXT.notText); // files or images: never sent
    }
    this.flush(); // now the desktop's paste sees the new clipboard
  }

  /** An allowed copy/cut event: writes the desktop's waiting text, if any. */
  copy(e) {
    if (this.waiting !== null && e.clipboardData) {
      e.clipboardData.setData("text/plain", this.waiting);
      this.waiting = null;
      this.notify(TEXT.copied);
    }
    this.flush();
  }

  /** ClipboardOut from the gateway: onto the home clipboard if to-local, else ignored. */
  fromGateway(text) {
    if (!this.allows(Clipboard.TO_LOCAL)) return; // never touch the clipboard API then
    this.waiting = text;
    this.tryWrite();
  }

  /**
   * writeText needs a focused document (and, outside Chromium, a user gesture); when it fails
   * the text waits for the window's next focus or the teacher's next copy shortcut.
   */
  tryWrite() {
    const text = this.waiting;
    if (text === null || !this.allows(Clipboard.TO_LOCAL)) return;
    // The agent may forbid the API (Permissions-Policy); asking anyway only logs a violation.
    const policy = document.permissionsPolicy ?? document.featurePolicy;
    const forbidden = policy ? !policy.allowsFeature("clipboard-write") : false;
    if (forbidden || !document.hasFocus() || !navigator.clipboard) {
      this.notify(TEXT.pressCopy);
      return;
    }
    navigator.clipboard.writeText(text).then(() => {
      if (this.waiting !== text) return; // newer text arrived meanwhile
      this.waiting = null;
      this.notify(TEXT.copied);
    }, () => { if (this.waiting === text) this.notify(TEXT.pressCopy); });
  }

  /** Tell the gateway about a refused attempt (for its audit), once a second per kind. */
  report(what) {
    const kind = BLOCKED_KIND[what];
    if (kind === undefined) return;
    const t = this.now(), last = this.reported.get(kind);
    if (last !== undefined && t - last < REPORT_EVERY_MS) return;
    this.reported.set(kind, t);
    this.send(P.encodeBlocked(kind));
  }

  refuse(what, text) {
    this.report(what);
    this.notify(text);
  }
}
