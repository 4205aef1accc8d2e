// Watch a live session, read-only: a WebSocket to GET /api/v1/sessions/{id}/watch (the cookie
// and a same-origin Origin authorize it). The gateway sends display frames — Hello and a whole
// frame, then the live frames as the teacher sees them, End when the session ends — and this
// page sends nothing back: no Resume, no Acks, no keys, no pointer. The socket is never written
// to, so a watcher cannot type or click into the teacher's desktop whatever the page does.
// Attacker-controlled: nothing new (the gateway's stream, bounds-checked by protocol.js).

import { fitCanvas, Renderer } from "../viewer/canvas.js";
import { Decoder } from "../viewer/protocol.js";
import { blank } from "./dom.js";
import { t } from "./i18n.js";

let current = null;

const $ = (id) => document.getElementById(id);

/** Open the Watch dialog on `session` ({id, user}); a previous watch is stopped first. */
export function watch(session) {
  teardown();
  const dialog = $("watch");
  const canvas = $("watch-canvas");
  const box = $("watch-box");
  $("watch-title").textContent = t("watch.title", session.user);
  blank(canvas); // never another teacher's last picture while this one connects
  const w = { session, ended: false, socket: null, resize: null, renderer: null };
  current = w;
  const renderer = w.renderer = new Renderer(canvas, {
    onResize: (width, height) => {
      fitCanvas(canvas, box);
      if (!w.ended) status(w, "live", t("watch.live", width, height));
    },
    onError: (error) => fail(w, error),
  });
  w.resize = new ResizeObserver(() => fitCanvas(canvas, box));
  w.resize.observe(box);
  status(w, "connecting", t("watch.connecting"));
  if (!dialog.open) dialog.showModal();
  connect(w, renderer);
}

/** Stop watching and close the dialog (also what Escape and "Stop watching" do). */
export function stop() {
  teardown();
  const dialog = $("watch");
  if (dialog.open) dialog.close(); // its "close" event comes back here and finds nothing
}

function teardown() {
  const w = current;
  if (!w) return;
  current = null;
  w.ended = true;
  w.resize?.disconnect();
  w.socket?.close(1000);
  w.renderer?.hold(); // what it still has queued never reaches the canvas of the next watch
}

/** Wire the dialog's buttons once; called by the sessions page. */
export function bind() {
  const dialog = $("watch");
  if (dialog.dataset.bound) return;
  dialog.dataset.bound = "1";
  $("watch-stop").addEventListener("click", stop);
  dialog.addEventListener("close", stop); // Escape closes a modal dialog
  // Nothing on the canvas does anything: no input handlers are attached, and the context menu
  // (save image as…) is not offered for a teacher's screen.
  $("watch-canvas").addEventListener("contextmenu", (event) => event.preventDefault());
}

function connect(w, renderer) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/api/v1/sessions/${encodeURIComponent(w.session.id)}/watch`;
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  w.socket = socket;
  const decoder = new Decoder();
  socket.addEventListener("open", () => {
    // Frames come as the teacher's screen changes and their viewer takes them; until the
    // first one, say that the gateway answered.
    if (!w.ended && renderer.width === 0) status(w, "waiting", t("watch.waiting"));
  });
  socket.addEventListener("message", (event) => {
    if (w.ended || w.endText !== undefined || !(event.data instanceof ArrayBuffer)) return; // text frames mean nothing
    let messages;
    try {
      messages = decoder.feed(new Uint8Array(event.data));
    } catch (error) {
      fail(w, error);
      return;
    }
    for (const msg of messages) {
      if (msg.type === "end") {
        w.endText = msg.text; // shown once everything before it is on the canvas
        renderer.idle().then(() => finish(w, msg.text));
        return;
      }
      renderer.apply(msg);
    }
  });
  socket.addEventListener("close", () => {
    if (!w.ended && w.endText === undefined) {
      w.ended = true;
      status(w, "lost", t("watch.lost"));
    }
  });
}

function finish(w, text) {
  if (w !== current || w.ended) return;
  w.ended = true;
  w.socket?.close(1000);
  status(w, "ended", t("watch.ended", text)); // the gateway's sentence, as text
}

function fail(w, error) {
  if (w.ended) return;
  w.ended = true;
  w.socket?.close(1000);
  status(w, "error", t("watch.error", error?.message ?? String(error)));
}

function status(w, state, text) {
  if (w !== current) return;
  const line = $("watch-status");
  line.dataset.state = state;
  line.textContent = text;
}
