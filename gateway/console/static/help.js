// Call-centre help (helpdesk role): the teachers asking for help (GET /api/v1/help, every few
// seconds) and Join, which opens the teacher's screen over a WebSocket to
// GET /api/v1/sessions/{id}/help (the cookie and a same-origin Origin authorize it). The view
// starts view-only; the keys and pointer of this page go up the socket, and the gateway passes
// them to the desktop only while the teacher has given control in their viewer (HelpState says
// which). The teacher can take control back or end the help at any time.
// Attacker-controlled: nothing new (the gateway's stream, bounds-checked by protocol.js; names
// shown with textContent only).

import { fitCanvas, Renderer } from "../viewer/canvas.js";
import { InputCapture } from "../viewer/input.js";
import { Decoder, HelpStatus, encodeKey, encodePointer } from "../viewer/protocol.js";
import { get } from "./api.js";
import { blank, el, flash, fmtTime } from "./dom.js";
import { t } from "./i18n.js";

const REFRESH_MS = 3000;
let timer = null;
let generation = 0;
let me = null;
let current = null;
let bound = false;

const $ = (id) => document.getElementById(id);

export function mount(who) {
  me = who;
  generation += 1;
  if (!bound) {
    bind();
    bound = true;
  }
  refresh(false);
  timer = setInterval(() => refresh(true), REFRESH_MS);
}

export function unmount() {
  clearInterval(timer);
  timer = null;
  generation += 1;
  leave();
}

function bind() {
  const dialog = $("helping");
  $("helping-leave").addEventListener("click", leave);
  dialog.addEventListener("close", leave); // Escape closes a modal dialog
}

async function refresh(poll) {
  const mine = generation;
  let data;
  try {
    data = await get("/api/v1/help", { poll });
  } catch (error) {
    if (mine === generation) flash(error);
    return;
  }
  if (mine !== generation) return;
  const rows = data.help.map(row);
  document.querySelector("#help-table tbody").replaceChildren(...rows);
  $("help-empty").hidden = rows.length > 0;
}

function row(h) {
  const actions = el("td", { class: "actions" });
  if (h.status === "asked") {
    actions.append(el("button", { type: "button", "data-action": "join", onclick: () => join(h) },
      t("help.join")));
  }
  const state = h.status === "asked" ? t("help.asked")
    : h.helper === me?.user ? t("help.you") : t("help.taken", h.helper ?? "");
  return el("tr", { "data-session": h.session, "data-user": h.user, "data-status": h.status },
    el("td", {}, h.user), el("td", {}, h.name), el("td", {}, h.school ?? "—"),
    el("td", {}, fmtTime(h.started_at)), el("td", {}, state), actions);
}

function join(h) {
  leave();
  const canvas = $("helping-canvas");
  const box = $("helping-box");
  blank(canvas);
  $("helping-title").textContent = t("help.title", h.name, h.user);
  const v = { h, ended: false, socket: null, resize: null, renderer: null, input: null };
  current = v;
  v.renderer = new Renderer(canvas, {
    onResize: () => fitCanvas(canvas, box),
    onError: (error) => finish(v, "error", t("watch.error", error?.message ?? String(error))),
  });
  v.resize = new ResizeObserver(() => fitCanvas(canvas, box));
  v.resize.observe(box);
  status(v, "connecting", t("watch.connecting"));
  $("helping").showModal();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(
    `${scheme}://${location.host}/api/v1/sessions/${encodeURIComponent(h.session)}/help`);
  socket.binaryType = "arraybuffer";
  v.socket = socket;
  const send = (bytes) => { if (socket.readyState === WebSocket.OPEN) socket.send(bytes); };
  // Sent whatever the state: the gateway, not this page, decides whether they reach the desktop.
  v.input = new InputCapture(canvas, {
    onKey: (keysym, down) => send(encodeKey(keysym, down)),
    onPointer: (x, y, buttons) => send(encodePointer(x, y, buttons)),
  });
  v.input.attach();
  const decoder = new Decoder();
  socket.addEventListener("message", (event) => {
    if (v.ended || !(event.data instanceof ArrayBuffer)) return;
    let messages;
    try {
      messages = decoder.feed(new Uint8Array(event.data));
    } catch (error) {
      finish(v, "error", t("watch.error", error.message));
      return;
    }
    for (const msg of messages) {
      if (msg.type === "help") helpState(v, msg.status);
      else if (msg.type === "end") finish(v, "ended", t("watch.ended", msg.text));
      else v.renderer.apply(msg);
    }
  });
  socket.addEventListener("close", (event) => {
    if (v.ended) return;
    finish(v, "lost", event.code === 4409 ? event.reason : t("help.over"));
  });
}

function helpState(v, s) {
  if (s === HelpStatus.CONTROL) status(v, "control", t("help.control"));
  else if (s === HelpStatus.WATCHING) status(v, "viewonly", t("help.viewonly"));
  else if (s === HelpStatus.NONE) finish(v, "over", t("help.over"));
}

function finish(v, state, text) {
  if (v.ended) return;
  v.ended = true;
  v.input?.detach();
  v.socket?.close(1000);
  status(v, state, text);
}

/** Leave the teacher's session and close the dialog. */
function leave() {
  const v = current;
  if (!v) return;
  current = null;
  v.ended = true;
  v.input?.detach();
  v.resize?.disconnect();
  v.socket?.close(1000);
  v.renderer?.hold();
  if ($("helping").open) $("helping").close();
  refresh(false);
}

function status(v, state, text) {
  if (v !== current) return;
  const line = $("helping-status");
  line.dataset.state = state;
  line.textContent = text;
}
