// Small DOM helpers. Text from the gateway (names, addresses, audit details) only ever goes
// into textContent or attribute values, never into markup.

import { has, lang, t } from "./i18n.js";

/** el("td", { class: "num", onclick: fn }, "text", childNode, …) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A sentence for an API error: ours in the current language when we know the code. */
export function errorText(error) {
  if (error?.code && has(`error.${error.code}`)) return t(`error.${error.code}`);
  return error?.message || String(error);
}

let messageTimer = null;

/** Show a banner: an Error (kind "error") or a sentence ("ok"). */
export function flash(what, kind = "error") {
  const box = document.getElementById("message");
  box.textContent = what instanceof Error ? errorText(what) : String(what);
  box.dataset.kind = what instanceof Error ? "error" : kind;
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

export function clearFlash() {
  document.getElementById("message").hidden = true;
}

const locale = () => (lang() === "ja" ? "ja-JP" : "en-GB");

export function fmtTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  return date.toLocaleString(locale(), { dateStyle: "short", timeStyle: "medium" });
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

export function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/**
 * A modal question. `fields`: [{ name, label, input }] whose values are returned as an object;
 * `body`: extra nodes. Resolves to null when cancelled.
 */
export function ask({ title, text, body = [], fields = [], confirm, danger = false, cancel = true }) {
  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "ask" });
    const form = el("form", {}, el("h2", {}, title), text ? el("p", {}, text) : null, ...body);
    for (const field of fields) {
      form.append(el("label", {}, el("span", {}, field.label), field.input));
    }
    const ok = el("button", { type: "submit", class: danger ? "danger" : null }, confirm ?? t("ok"));
    const no = cancel ? el("button", { type: "button" }, t("cancel")) : null;
    form.append(el("div", { class: "buttons" }, no, ok));
    dialog.append(form);
    document.body.append(dialog);
    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    no?.addEventListener("click", () => done(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      if (cancel) done(null);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      done(Object.fromEntries(fields.map((f) => [f.name, f.input.value])));
    });
    dialog.showModal();
    (fields[0]?.input ?? ok).focus();
  });
}

/** Empty a canvas (no previous picture may show while the next one loads). */
export function blank(canvas) {
  canvas.width = 0;
  canvas.height = 0;
  canvas.style.width = "";
  canvas.style.height = "";
}
