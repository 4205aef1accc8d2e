// Lock-down of the viewer page: only pixels come in, only keys and pointer events go out.
// Attacker-controlled: whatever the local browser, other apps and the teacher feed the page
// (drops, pastes, print requests). Limits: no drag-and-drop, selection, context menu or printable
// pixels; clipboard events are always cancelled and stopped here and reach clipboard.js only in a
// direction the session allows; every refused attempt goes to onBlocked (reported to the gateway).
//
// What no page can prevent (see viewer/LOCKDOWN.md): DevTools or OS screenshots and cameras; the
// gateway's watermark is the answer to those. toDataURL works for any script of this origin, but
// the page has no other script and exposes no save or export path.

import { Clipboard, clipboardAllows } from "./session.js";

// Events whose default action would move data in or out of the page.
const CLIPBOARD_EVENTS = Object.freeze({
  copy: Clipboard.TO_LOCAL, cut: Clipboard.TO_LOCAL, paste: Clipboard.TO_REMOTE,
});
const ALWAYS_BLOCKED = Object.freeze([
  "dragstart", "drag", "dragenter", "dragover", "drop", "contextmenu", "selectstart",
]);

function stop(e) {
  e.preventDefault();
  e.stopImmediatePropagation();
}

// dragover must be cancelled, or dropping a file makes the browser open (navigate to) it; its
// dropEffect "none" tells the OS nothing would be taken, and the drop, if any, is cancelled too.
function blockDrag(e) {
  stop(e);
  if (!e.dataTransfer) return;
  if (e.type === "dragstart") e.dataTransfer.effectAllowed = "none";
  else e.dataTransfer.dropEffect = "none";
}

/**
 * Second line of defence for printing (the first is `@media print` in viewer.css): blank the
 * canvas pixels for the print and put them back afterwards, holding the renderer in between.
 */
export class PrintGuard {
  constructor(canvas, renderer) {
    this.canvas = canvas;
    this.renderer = renderer;
    this.saved = null; // a detached canvas holding the screen while printing
  }

  get printing() { return this.saved !== null; }

  blank() {
    if (this.saved) return;
    this.renderer.hold();
    const { canvas } = this;
    const saved = document.createElement("canvas");
    saved.width = canvas.width;
    saved.height = canvas.height;
    if (canvas.width && canvas.height) saved.getContext("2d").drawImage(canvas, 0, 0);
    this.saved = saved;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    canvas.style.visibility = "hidden";
  }

  restore() {
    const saved = this.saved;
    if (!saved) return;
    this.saved = null;
    const { canvas } = this;
    if (saved.width && saved.height) canvas.getContext("2d").drawImage(saved, 0, 0);
    saved.width = saved.height = 0; // free the copy now rather than at GC
    canvas.style.visibility = "";
    this.renderer.release();
  }
}

/**
 * Lock the page down. `getSession()` returns the current session state (session.js); its
 * `clipboard` field decides whether a copy/cut/paste event, cancelled and stopped either way,
 * goes to `onClipboard(event)` (allowed direction) or to `onBlocked(type)`. Returns
 * { guard, remove }.
 */
export function installLockdown({
  canvas, renderer, getSession, onBlocked = () => {}, onClipboard = () => {},
}) {
  const guard = new PrintGuard(canvas, renderer);
  const offs = [];
  const on = (type, fn) => {
    window.addEventListener(type, fn, { capture: true });
    offs.push(() => window.removeEventListener(type, fn, { capture: true }));
  };
  for (const [type, direction] of Object.entries(CLIPBOARD_EVENTS)) {
    on(type, (e) => {
      stop(e); // the page has nothing to paste into or copy from; clipboard.js moves the text
      if (clipboardAllows(getSession(), direction)) onClipboard(e);
      else onBlocked(type);
    });
  }
  for (const type of ALWAYS_BLOCKED) {
    on(type, (e) => {
      if (type.startsWith("drag") || type === "drop") blockDrag(e);
      else stop(e);
      if (type === "drop" || type === "dragstart") onBlocked(type);
    });
  }
  on("beforeprint", () => { guard.blank(); onBlocked("print"); });
  on("afterprint", () => guard.restore());
  canvas.draggable = false;
  return { guard, remove: () => { for (const off of offs.splice(0)) off(); guard.restore(); } };
}
