// Keys: GET /api/v1/keys, revoke with an RFC 5280 reason (POST /api/v1/keys/revoke; the
// gateway re-signs the CRL at once), and the CRL link. Officers see this page read-only.

import { get, post, withQuery } from "./api.js";
import { ask, el, flash, fmtTime } from "./dom.js";
import { t } from "./i18n.js";

const REASONS = ["keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"];
let me = null;
let bound = false;

export function mount(who) {
  me = who;
  const form = document.getElementById("keys-filter");
  if (!bound) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    bound = true;
  }
  load();
}

export function unmount() {}

async function load() {
  const user = new FormData(document.getElementById("keys-filter")).get("user")?.trim();
  let data;
  try {
    data = await get(withQuery("/api/v1/keys", { user }));
  } catch (error) {
    flash(error);
    return;
  }
  document.querySelector("#keys-table tbody").replaceChildren(...data.keys.map(row));
}

function row(k) {
  const status = k.status === "revoked"
    ? t("keys.revoked", k.revoke_reason, fmtTime(k.revoked_at)) : t("keys.valid");
  const actions = el("td", { class: "actions" });
  if (me.views.keys === "manage" && k.status !== "revoked") {
    actions.append(el("button", { type: "button", class: "danger", "data-action": "revoke",
      onclick: () => revoke(k) }, t("keys.revoke")));
  }
  return el("tr", { "data-serial": k.serial, "data-status": k.status },
    el("td", { class: "mono" }, k.serial), el("td", {}, k.user), el("td", {}, k.school ?? ""),
    el("td", {}, fmtTime(k.not_after)), el("td", {}, status), actions);
}

async function revoke(k) {
  const select = el("select", { name: "reason", required: true },
    ...REASONS.map((r) => el("option", { value: r }, t(`reason.${r}`))));
  const answer = await ask({
    title: t("keys.revokeTitle", k.serial, k.user), confirm: t("keys.revoke"), danger: true,
    fields: [{ name: "reason", label: t("keys.reason"), input: select }],
  });
  if (!answer) return;
  try {
    await post("/api/v1/keys/revoke", { serial: k.serial, reason: answer.reason });
    flash(t("keys.revokedOk", k.serial), "ok");
  } catch (error) {
    flash(error);
  }
  load();
}
