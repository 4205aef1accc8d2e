// The viewer's view of the session: what Hello announced and what the page may do with it.
// Attacker-controlled: the Hello fields (bounded by protocol.js). Limits: only the two clipboard
// flags turn a direction on (unknown bits grant nothing); a view-only session sends nothing up.

import { HelloFlags } from "./protocol.js";

/** Clipboard directions, named as in policies/default.toml (`clipboard = "off"`). */
export const Clipboard = Object.freeze({
  OFF: "off", TO_REMOTE: "to-remote", TO_LOCAL: "to-local", BOTH: "both",
});

/** Before any Hello: nothing allowed, no input. */
export const INITIAL_SESSION = Object.freeze({
  id: "", info: "", viewOnly: true, recorded: false, watermarked: false, clipboard: Clipboard.OFF,
});

/**
 * The clipboard directions the Hello flags allow. The gateway sets CLIPBOARD_TO_REMOTE and
 * CLIPBOARD_TO_LOCAL from the policy's `clipboard` and enforces it again on what it receives.
 * A view-only session takes no input, so it gets no to-remote either.
 */
export function clipboardFromFlags(flags) {
  const up = Boolean(flags & HelloFlags.CLIPBOARD_TO_REMOTE) && !(flags & HelloFlags.VIEW_ONLY);
  const down = Boolean(flags & HelloFlags.CLIPBOARD_TO_LOCAL);
  if (up && down) return Clipboard.BOTH;
  if (up) return Clipboard.TO_REMOTE;
  return down ? Clipboard.TO_LOCAL : Clipboard.OFF;
}

/** The session state a Hello announces. */
export function sessionFromHello(hello) {
  return Object.freeze({
    id: hello.sessionId,
    info: hello.info,
    viewOnly: Boolean(hello.flags & HelloFlags.VIEW_ONLY),
    recorded: Boolean(hello.flags & HelloFlags.RECORDED),
    watermarked: Boolean(hello.flags & HelloFlags.WATERMARKED),
    clipboard: clipboardFromFlags(hello.flags),
  });
}

/** Whether `session` lets clipboard data move in `direction` ("to-remote" or "to-local"). */
export function clipboardAllows(session, direction) {
  const c = session.clipboard;
  if (direction !== Clipboard.TO_REMOTE && direction !== Clipboard.TO_LOCAL) return false;
  return c === Clipboard.BOTH || c === direction;
}
