// The viewer's view of the session: what Hello announced and what the page may do with it.
// Attacker-controlled: the Hello fields (bounded by protocol.js). Limits: unknown flag bits grant
// nothing; the clipboard stays "off" because display protocol version 1 has no clipboard flag.

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
 * The session state a Hello announces. `clipboard` is always "off" in protocol version 1: a
 * direction may only be turned on by a Hello flag that docs/PROTOCOL.md defines (and the gateway
 * sets from the policy in the login Welcome); until then no bit of `flags` can turn it on.
 */
export function sessionFromHello(hello) {
  return Object.freeze({
    id: hello.sessionId,
    info: hello.info,
    viewOnly: Boolean(hello.flags & HelloFlags.VIEW_ONLY),
    recorded: Boolean(hello.flags & HelloFlags.RECORDED),
    watermarked: Boolean(hello.flags & HelloFlags.WATERMARKED),
    clipboard: Clipboard.OFF,
  });
}

/** Whether `session` lets clipboard data move in `direction` ("to-remote" or "to-local"). */
export function clipboardAllows(session, direction) {
  const c = session.clipboard;
  if (direction !== Clipboard.TO_REMOTE && direction !== Clipboard.TO_LOCAL) return false;
  return c === Clipboard.BOTH || c === direction;
}
