// Fullscreen with keyboard lock, so keys the browser keeps in a window (Esc, Alt+Tab, Ctrl+W/T/N,
// the Windows key) reach the remote desktop. Attacker-controlled: nothing (a local button).
// Where navigator.keyboard is missing (Firefox, Safari) fullscreen still works, without the lock.

/** Wire `button` to toggle fullscreen; on entry lock the keyboard and focus `canvas`. */
export function installFullscreen(button, canvas) {
  button.addEventListener("click", async () => {
    try {
      if (document.fullscreenElement) {
        await document.exitFullscreen();
        return;
      }
      await document.documentElement.requestFullscreen({ navigationUI: "hide" });
      // Only honoured in fullscreen the page requested; Esc must then be held to leave it.
      await navigator.keyboard?.lock?.();
    } catch {
      // Refused (no user gesture, policy, or an unsupported browser): stay as we are.
    } finally {
      canvas.focus();
    }
  });
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement) navigator.keyboard?.unlock?.();
  });
}
