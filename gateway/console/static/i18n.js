// Japanese and English text of the console. The language comes from the browser
// (navigator.languages, which is what Accept-Language is made from) until the person picks one
// with the switch; the choice is remembered in localStorage.

const STORAGE_KEY = "staffroom.console.lang";

const TEXT = {
  en: {
    "app.title": "Staffroom console",
    "nav.sessions": "Live sessions", "nav.audit": "Audit log", "nav.keys": "Keys",
    "nav.accounts": "Accounts", "nav.recordings": "Recordings", "signout": "Sign out", "lang.other": "日本語",
    "signin.title": "Sign in", "signin.user": "User ID", "signin.password": "Password",
    "signin.totp": "Authenticator code", "signin.submit": "Sign in",
    "password.title": "Choose a new password",
    "password.why": "You signed in with a one-time password: choose your own.",
    "password.current": "Current (one-time) password", "password.new": "New password", "password.repeat": "Repeat it",
    "password.submit": "Change password", "password.mismatch": "The two passwords differ.",
    "password.changed": "Your password is changed.",
    "who": "{0} ({1})", "who.school": "{0} ({1}, {2})",
    "col.user": "User", "col.school": "School", "col.start": "Started",
    "col.duration": "Duration", "col.source": "Source address", "col.posture": "Posture",
    "col.bytes": "Bytes", "col.frames": "Frames", "col.actions": "Actions", "col.time": "Time",
    "col.outcome": "Outcome", "col.actor": "Actor", "col.subject": "Subject",
    "col.details": "Details", "col.status": "Status",
    "sessions.hint": "Refreshes every 5 seconds.", "sessions.none": "No live sessions.",
    "sessions.updated": "Updated {0}.", "sessions.terminate": "Terminate",
    "sessions.terminateTitle": "End {0}'s session?",
    "sessions.reason": "Reason (the teacher sees it)",
    "sessions.terminated": "{0}'s session was ended.",
    "audit.integrity": "Integrity", "audit.kind": "Event kind", "audit.since": "From",
    "audit.until": "Until", "audit.limit": "Newest", "audit.search": "Search",
    "audit.csv": "Export CSV", "audit.jsonl": "Export JSON Lines",
    "audit.count": "{0} records, newest first.",
    "audit.ok": "intact — {0} records; last signed checkpoint #{1} at {2}",
    "audit.okNoCheckpoint": "intact — {0} records; no signed checkpoint yet",
    "audit.broken": "BROKEN at record {0}: {1}",
    "keys.serial": "Serial", "keys.notAfter": "Valid until",
    "keys.crl": "Certificate revocation list (CRL)", "keys.valid": "valid",
    "keys.revoked": "revoked ({0}, {1})", "keys.revoke": "Revoke",
    "keys.revokeTitle": "Revoke certificate {0} of {1}?", "keys.reason": "Reason (RFC 5280)",
    "keys.revokedOk": "Certificate {0} is revoked; the CRL is re-signed.",
    "reason.keyCompromise": "Key compromise (token lost or stolen)",
    "reason.affiliationChanged": "Affiliation changed (moved school, left)",
    "reason.superseded": "Superseded (new key issued)",
    "reason.cessationOfOperation": "Cessation of operation (no longer needed)",
    "accounts.id": "ID", "accounts.name": "Name", "accounts.role": "Role",
    "accounts.active": "active", "accounts.disabled": "disabled",
    "accounts.locked": "locked until {0}", "accounts.noTotp": "no authenticator",
    "accounts.disable": "Disable", "accounts.reset": "Reset password",
    "accounts.disableTitle": "Disable {0}?",
    "accounts.disableText": "They can no longer sign in or connect.",
    "accounts.disabledOk": "{0} is disabled.",
    "accounts.resetTitle": "Give {0} a new one-time password?",
    "accounts.resetText": "Their current password stops working now.",
    "accounts.onceTitle": "One-time password for {0}",
    "accounts.onceText": "Shown once only: hand it over now. They must change it at first sign-in.",
    "import.title": "Import a roster",
    "import.hint": "CSV: id,name,school[,role]. Preview first; nothing changes until you confirm.",
    "import.preview": "Preview", "import.confirm": "Confirm import",
    "import.create": "Will be created ({0}):", "import.unchanged": "Already exist, unchanged ({0}):",
    "import.nothing": "Nothing to create.", "import.created": "Created ({0}) — one-time passwords, shown once:",
    "rec.end": "Ended", "rec.size": "Size", "rec.sealed": "Sealed", "rec.verified": "Verified",
    "rec.none": "No recordings.", "rec.yes": "yes", "rec.no": "no (cut off or running)",
    "rec.check": "Check", "rec.checking": "checking…", "rec.ok": "intact ({0} chunks)",
    "rec.bad": "FAILED: {0}", "rec.play": "Play", "rec.export": "Export",
    "player.title": "{0} — {1}", "player.close": "Close player", "player.play": "Play",
    "player.pause": "Pause", "player.speed": "Speed", "player.seek": "Position in the recording",
    "player.loading": "Loading…", "player.playing": "Playing at {0}×.", "player.paused": "Paused.",
    "player.ended": "End of the recording.",
    "player.error": "This recording cannot be played: {0}",
    "watch.button": "Watch", "watch.title": "Watching {0}", "watch.stop": "Stop watching",
    "watch.readonly": "Read-only: nothing you do here reaches the teacher's desktop.",
    "watch.connecting": "Connecting…", "watch.live": "Live ({0} × {1}).",
    "watch.waiting": "Connected: waiting for the teacher's screen.",
    "watch.ended": "The session ended: {0}", "watch.lost": "The connection to the gateway was lost.",
    "watch.error": "The stream could not be shown: {0}",
    "ok": "OK", "cancel": "Cancel", "done": "Done",
    "error.bad-credentials": "The user id, password or code is wrong.",
    "error.not-an-operator": "Teachers connect with the Staffroom agent on their PC; this console is for IT leads and security officers.",
    "error.totp-reused": "This code was already used: wait for the next code in your authenticator app.",
    "error.no-session": "You are not signed in, or your session has ended: sign in again.",
    "error.csrf": "This request did not come from the console page, so it was refused: reload the console and try again.",
    "error.network": "The gateway cannot be reached: check the connection and try again.",
    "error.bad-current-password": "Your current password is wrong, so nothing was changed.",
  },
  ja: {
    "app.title": "Staffroom 管理コンソール",
    "nav.sessions": "接続中のセッション", "nav.audit": "監査ログ", "nav.keys": "鍵",
    "nav.accounts": "アカウント", "nav.recordings": "録画", "signout": "サインアウト", "lang.other": "English",
    "signin.title": "サインイン", "signin.user": "ユーザー ID", "signin.password": "パスワード",
    "signin.totp": "認証アプリのコード", "signin.submit": "サインイン",
    "password.title": "新しいパスワードを設定してください",
    "password.why": "一時パスワードでサインインしました。ご自身のパスワードを設定してください。",
    "password.current": "現在の（一時）パスワード", "password.new": "新しいパスワード", "password.repeat": "もう一度入力",
    "password.submit": "パスワードを変更", "password.mismatch": "2つのパスワードが一致しません。",
    "password.changed": "パスワードを変更しました。",
    "who": "{0}（{1}）", "who.school": "{0}（{1}・{2}）",
    "col.user": "ユーザー", "col.school": "学校", "col.start": "開始",
    "col.duration": "経過時間", "col.source": "接続元アドレス", "col.posture": "端末の状態",
    "col.bytes": "バイト数", "col.frames": "フレーム数", "col.actions": "操作", "col.time": "日時",
    "col.outcome": "結果", "col.actor": "実行者", "col.subject": "対象",
    "col.details": "詳細", "col.status": "状態",
    "sessions.hint": "5 秒ごとに更新します。", "sessions.none": "接続中のセッションはありません。",
    "sessions.updated": "{0} 更新", "sessions.terminate": "強制終了",
    "sessions.terminateTitle": "{0} さんのセッションを終了しますか？",
    "sessions.reason": "理由（教員の画面に表示されます）",
    "sessions.terminated": "{0} さんのセッションを終了しました。",
    "audit.integrity": "改ざん検証", "audit.kind": "イベント種別", "audit.since": "開始日時",
    "audit.until": "終了日時", "audit.limit": "最新件数", "audit.search": "検索",
    "audit.csv": "CSV で出力", "audit.jsonl": "JSON Lines で出力",
    "audit.count": "{0} 件（新しい順）",
    "audit.ok": "正常 — {0} 件、最後の署名チェックポイント #{1}（{2}）",
    "audit.okNoCheckpoint": "正常 — {0} 件、署名チェックポイントはまだありません",
    "audit.broken": "異常：レコード {0} — {1}",
    "keys.serial": "シリアル番号", "keys.notAfter": "有効期限",
    "keys.crl": "証明書失効リスト（CRL）", "keys.valid": "有効",
    "keys.revoked": "失効（{0}、{1}）", "keys.revoke": "失効させる",
    "keys.revokeTitle": "{1} さんの証明書 {0} を失効させますか？", "keys.reason": "理由（RFC 5280）",
    "keys.revokedOk": "証明書 {0} を失効させ、CRL を再署名しました。",
    "reason.keyCompromise": "鍵の危殆化（トークンの紛失・盗難）",
    "reason.affiliationChanged": "所属の変更（異動・退職）",
    "reason.superseded": "更新（新しい鍵を発行済み）",
    "reason.cessationOfOperation": "利用終了",
    "accounts.id": "ID", "accounts.name": "氏名", "accounts.role": "役割",
    "accounts.active": "有効", "accounts.disabled": "無効",
    "accounts.locked": "{0} までロック中", "accounts.noTotp": "認証アプリ未登録",
    "accounts.disable": "無効にする", "accounts.reset": "パスワード再発行",
    "accounts.disableTitle": "{0} さんのアカウントを無効にしますか？",
    "accounts.disableText": "サインインも接続もできなくなります。",
    "accounts.disabledOk": "{0} さんのアカウントを無効にしました。",
    "accounts.resetTitle": "{0} さんに一時パスワードを発行しますか？",
    "accounts.resetText": "現在のパスワードはすぐに使えなくなります。",
    "accounts.onceTitle": "{0} さんの一時パスワード",
    "accounts.onceText": "この画面でしか表示されません。今すぐお伝えください。初回サインイン時に変更が必要です。",
    "import.title": "名簿の一括登録",
    "import.hint": "CSV：id,name,school[,role]。まずプレビューで確認し、確定するまで何も変わりません。",
    "import.preview": "プレビュー", "import.confirm": "登録を確定",
    "import.create": "新規作成（{0} 件）：", "import.unchanged": "登録済みのため変更なし（{0} 件）：",
    "import.nothing": "新しく作成するアカウントはありません。",
    "import.created": "作成しました（{0} 件）— 一時パスワードはこの画面でのみ表示されます：",
    "rec.end": "終了", "rec.size": "サイズ", "rec.sealed": "封印", "rec.verified": "検証",
    "rec.none": "録画はありません。", "rec.yes": "済", "rec.no": "未（中断または録画中）",
    "rec.check": "検証する", "rec.checking": "検証中…", "rec.ok": "改ざんなし（{0} チャンク）",
    "rec.bad": "異常：{0}", "rec.play": "再生", "rec.export": "書き出し",
    "player.title": "{0} — {1}", "player.close": "プレーヤーを閉じる", "player.play": "再生",
    "player.pause": "一時停止", "player.speed": "速度", "player.seek": "再生位置",
    "player.loading": "読み込み中…", "player.playing": "{0} 倍速で再生中", "player.paused": "一時停止中",
    "player.ended": "録画の最後です。",
    "player.error": "この録画は再生できません：{0}",
    "watch.button": "見守る", "watch.title": "{0} さんの画面を見守り中", "watch.stop": "見守りをやめる",
    "watch.readonly": "閲覧専用です。ここでの操作は教員の画面に一切届きません。",
    "watch.connecting": "接続中…", "watch.live": "ライブ（{0} × {1}）",
    "watch.waiting": "接続しました。教員の画面を待っています。",
    "watch.ended": "セッションが終了しました：{0}",
    "watch.lost": "ゲートウェイとの接続が切れました。",
    "watch.error": "画面を表示できませんでした：{0}",
    "ok": "OK", "cancel": "キャンセル", "done": "閉じる",
    "error.bad-credentials": "ユーザー ID、パスワード、またはコードが正しくありません。",
    "error.not-an-operator": "教員の方は PC の Staffroom エージェントから接続してください。このコンソールは情報担当・セキュリティ担当者用です。",
    "error.totp-reused": "このコードは使用済みです。認証アプリの次のコードをお待ちください。",
    "error.no-session": "サインインしていないか、セッションが終了しました。もう一度サインインしてください。",
    "error.csrf": "コンソール画面以外からの要求のため拒否しました。コンソールを再読み込みしてください。",
    "error.network": "ゲートウェイに接続できません。通信を確認してもう一度お試しください。",
    "error.locked": "失敗が続いたためアカウントがロックされています。15 分待つか、情報担当者に解除を依頼してください。",
    "error.too-many-attempts": "このネットワークからのログイン試行が多すぎます。しばらく待ってからもう一度お試しください。",
    "error.bad-current-password": "現在のパスワードが正しくないため、変更しませんでした。",
    "error.busy": "ゲートウェイがほかのログインを確認中です。数秒後にもう一度お試しください。",
  },
};

function detect() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "ja" || saved === "en") return saved;
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of prefs) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "ja" || base === "en") return base;
  }
  return "en";
}

let current = detect();

export const lang = () => current;

/** The text for `key` in the current language, with {0}, {1}, … replaced by `args`. */
export function t(key, ...args) {
  const text = TEXT[current][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ""));
}

export const has = (key) => key in TEXT[current] || key in TEXT.en;

/** Fill every [data-i18n] element under `root` (textContent only: never markup). */
export function apply(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = t("app.title");
}

export function setLang(next) {
  current = next === "ja" ? "ja" : "en";
  localStorage.setItem(STORAGE_KEY, current);
  apply();
}
