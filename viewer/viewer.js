// The viewer page: connects to the agent's /display WebSocket, renders, sends input and acks.
// Attacker-controlled: everything from the socket (decoded by protocol.js, which bounds it);
// texts from the gateway are shown with textContent only, never as HTML.

import * as P from "./protocol.js";
import { Renderer, fitCanvas } from "./canvas.js";
import { InputCapture } from "./input.js";
import { installLockdown } from "./lockdown.js";
import { installFullscreen } from "./fullscreen.js";
import { Clipboard, INITIAL_SESSION, clipboardAllows, sessionFromHello } from "./session.js";
import { ClipboardBridge } from "./clipboard.js";
import { installHelp } from "./help.js";

const $ = (id) => document.getElementById(id);
const canvas = $("screen");
const stage = $("stage");

const STATUS_TEXT = {
  connecting: "接続中… Connecting",
  connected: "接続済み Connected",
  reconnecting: "再接続中… Reconnecting",
  ended: "終了 Ended",
  failed: "接続できません Cannot connect",
};
const PING_EVERY_MS = 2000;
const MAX_RETRIES = 8;

let ws = null;
let retries = 0;
let ended = false;
let pingTimer = null;
let session = INITIAL_SESSION; // what the latest Hello allows; clipboard "off" until its flags say

function setStatus(state) {
  const el = $("status");
  el.textContent = STATUS_TEXT[state];
  el.dataset.state = state;
  document.body.dataset.state = state;
}

function send(bytes) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
}

const renderer = new Renderer(canvas, {
  onSync: (id) => send(P.encodeAck(id)),
  onResize: () => fitCanvas(canvas, stage),
  onError: (err) => fail(`画面を表示できません (${err.message})`),
});

// Registered before InputCapture: its keydown hook must see paste/copy shortcuts first.
const clipboard = new ClipboardBridge({
  send, notify: (text) => note(text), getSession: () => session,
  inputEnabled: () => input.enabled && !ended,
});
window.addEventListener("keydown", clipboard.keyHook, { capture: true });
window.addEventListener("keyup", clipboard.keyHook, { capture: true });
window.addEventListener("blur", () => clipboard.releaseAll());
window.addEventListener("focus", () => clipboard.tryWrite());

const input = new InputCapture(canvas, {
  onKey: (keysym, down) => { clearNotice(); send(P.encodeKey(keysym, down)); },
  onPointer: (x, y, buttons) => { clearNotice(); send(P.encodePointer(x, y, buttons)); },
  keyTarget: window,
});
input.attach();
input.enabled = false; // until a Hello says the session takes input
new ResizeObserver(() => fitCanvas(canvas, stage)).observe(stage);

const help = installHelp({ send, $ });

function showEnd(text) {
  ended = true;
  help.ended();
  clearInterval(pingTimer);
  input.enabled = false;
  input.releaseAll();
  $("notice").hidden = true; // the end text says it all
  $("posture").hidden = true;
  $("ended-text").textContent = text;
  $("ended").hidden = false;
  setStatus("ended");
}

function fail(text) {
  showEnd(text);
  ws?.close(1002);
}

const NOTICE_INFO_MS = 10000;
let noticeTimer = null;
function showNotice(msg) {
  const el = $("notice");
  $("notice-text").textContent = msg.text;
  el.dataset.level = String(msg.level);
  el.hidden = false;
  clearTimeout(noticeTimer);
  if (msg.level === 0) noticeTimer = setTimeout(() => { el.hidden = true; }, NOTICE_INFO_MS);
}

// Input answers a warning (level 1: the idle warning); info goes by itself, an error stays.
function clearNotice() {
  const el = $("notice");
  if (el.hidden || el.dataset.level !== "1") return;
  el.hidden = true;
  clearTimeout(noticeTimer);
}

// The in-session security check (posture re-check): a warning stays up, whatever the teacher
// types, until the gateway says it is fixed (an info notice with the same code).
function showPosture(msg) {
  const el = $("posture");
  if (msg.level === 0) {
    el.hidden = true;
    showNotice({ level: 0, text: `セキュリティ確認 OK — ${msg.text}` });
    return;
  }
  $("posture-text").textContent = msg.text;
  el.hidden = false;
}

// The gateway's signed work receipt (勤務記録の受領書), offered with the end of the session.
let receiptUrl = null;
function offerReceipt(data) {
  if (receiptUrl) URL.revokeObjectURL(receiptUrl);
  receiptUrl = URL.createObjectURL(new Blob([data], { type: "application/json" }));
  const link = $("receipt");
  link.href = receiptUrl;
  link.download = `staffroom-receipt-${session.id || "session"}.json`;
  link.hidden = false;
}

const BLOCKED_TEXT = {
  copy: "コピーはできません Copying is disabled",
  cut: "コピーはできません Copying is disabled",
  paste: "この PC からの貼り付けはできません Pasting from this PC is disabled",
  drop: "ファイルの持ち込みはできません Dropping files is disabled",
  dragstart: "画面は持ち出せません The screen cannot be dragged out",
  print: "印刷はできません Printing is disabled",
};

function onMessage(msg) {
  switch (msg.type) {
    case "hello":
      if (msg.version !== P.VERSION) { fail("対応していないバージョンです Unsupported version"); return; }
      session = sessionFromHello(msg);
      if (!clipboardAllows(session, Clipboard.TO_LOCAL)) clipboard.waiting = null;
      $("info").textContent = session.info;
      document.body.dataset.clipboard = session.clipboard;
      input.enabled = !session.viewOnly && !ended;
      help.onHello(msg.flags);
      renderer.apply(msg);
      break;
    case "pong":
      $("latency").textContent = `${Math.max(0, Math.round(performance.now() - msg.t / 1000))} ms`;
      break;
    case "notice":
      if (msg.code === P.NoticeCode.POSTURE) showPosture(msg); else showNotice(msg);
      break;
    case "receipt":
      offerReceipt(msg.data);
      break;
    case "help":
      help.onState(msg);
      break;
    case "clipboard":
      clipboard.fromGateway(msg.text); // ignored unless the Hello allowed to-local
      break;
    case "end":
      showEnd(msg.text || "セッションは終了しました The session has ended.");
      ws.close(1000);
      break;
    default:
      renderer.apply(msg);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const sock = new WebSocket(`${scheme}://${location.host}/display${location.search}`);
  sock.binaryType = "arraybuffer";
  const decoder = new P.Decoder();
  ws = sock;
  sock.onopen = () => {
    retries = 0;
    setStatus("connected");
    sock.send(P.encodeResume(P.VERSION, renderer.lastFrame));
    clearInterval(pingTimer);
    pingTimer = setInterval(() => send(P.encodePing(performance.now() * 1000)), PING_EVERY_MS);
    send(P.encodePing(performance.now() * 1000));
  };
  sock.onmessage = (ev) => {
    if (ended || typeof ev.data === "string") return;
    let msgs;
    try { msgs = decoder.feed(new Uint8Array(ev.data)); } catch (err) {
      fail(`通信エラー Protocol error: ${err.message}`);
      return;
    }
    for (const m of msgs) onMessage(m);
  };
  sock.onclose = (ev) => {
    clearInterval(pingTimer);
    input.releaseAll();
    if (ended) return;
    // 1008 / 4xxx: the agent refused us (spent or wrong token): retrying cannot help.
    if (ev.code === 1008 || (ev.code >= 4000 && ev.code < 5000) || retries >= MAX_RETRIES) {
      setStatus("failed");
      showEnd("接続が切れました。エージェントから開き直してください。Connection lost: reopen from the agent.");
      return;
    }
    setStatus("reconnecting");
    const delay = Math.min(8000, 250 * 2 ** retries++);
    setTimeout(connect, delay);
  };
}

installFullscreen($("fullscreen"), canvas);

// A page's own info note; never hides a warning or error from the gateway.
function note(text) {
  const el = $("notice");
  if (ended || (!el.hidden && el.dataset.level !== "0")) return;
  showNotice({ level: 0, text });
}

// Lock-down: no print, drag and drop, selection or context menu anywhere on the page; the
// clipboard only in the directions the session allows. The gateway hears of every refusal.
const lockdown = installLockdown({
  canvas, renderer, getSession: () => session,
  onBlocked: (what) => {
    clipboard.blocked(what);
    note(BLOCKED_TEXT[what]);
  },
  onClipboard: (e) => (e.type === "paste" ? clipboard.paste(e) : clipboard.copy(e)),
});
document.body.dataset.clipboard = session.clipboard;

setStatus("connecting");
connect();
canvas.focus();

export { renderer, input, lockdown, clipboard };
