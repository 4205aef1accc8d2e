// Call-centre help in the teacher's page: "Ask for help", then who is watching, whether they may
// type and point, and the buttons to allow control, take it back, or end the help at any time.
// Attacker-controlled: the HelpState from the gateway (status bounded by protocol.js; the
// operator's name is shown with textContent only). The gateway enforces every step: this page
// only asks (Help messages), it grants nothing by itself.

import { HelloFlags, HelpAction, HelpStatus, encodeHelp } from "./protocol.js";

const TEXT = {
  [HelpStatus.ASKED]: () => "ヘルプデスクに依頼しました。担当者を待っています… "
    + "Help requested: waiting for the call centre…",
  [HelpStatus.WATCHING]: (who) => `${who} が画面を見ています（操作はできません） `
    + `${who} is viewing your screen (view only).`,
  [HelpStatus.CONTROL]: (who) => `${who} があなたのデスクトップを操作しています `
    + `${who} is controlling your desktop.`,
};

/** Wire the help bar; returns hooks for the page's Hello and HelpState messages. */
export function installHelp({ send, $ }) {
  let status = HelpStatus.NONE;
  let offered = false;
  const ask = $("help-ask");
  const bar = $("help");
  const act = (action) => send(encodeHelp(action));
  ask.addEventListener("click", () => act(HelpAction.ASK));
  $("help-allow").addEventListener("click", () => act(HelpAction.ALLOW_CONTROL));
  $("help-viewonly").addEventListener("click", () => act(HelpAction.VIEW_ONLY));
  $("help-end").addEventListener("click", () => act(HelpAction.END));

  function render(helper = "") {
    ask.hidden = !offered || status !== HelpStatus.NONE;
    bar.hidden = status === HelpStatus.NONE;
    bar.dataset.status = String(status);
    $("help-text").textContent = TEXT[status]?.(helper) ?? "";
    $("help-allow").hidden = status !== HelpStatus.WATCHING;
    $("help-viewonly").hidden = status !== HelpStatus.CONTROL;
    $("help-end").textContent = status === HelpStatus.ASKED ? "取り消す Cancel"
      : "ヘルプを終了 End help";
  }
  render();
  return {
    onHello(flags) { offered = Boolean(flags & HelloFlags.HELP); render(); },
    onState(msg) { status = msg.status; render(msg.helper); },
    ended() { offered = false; status = HelpStatus.NONE; render(); },
  };
}
