"""The desktop's browser under managed policy: start page, URL allow-list, nothing out.

Attacker-controlled here: nothing (home_url and allowed_hosts come from the board's policy, checked
by gateway.policy); the file is written root-owned 0644 and bound read-only over /etc/chromium
inside the desktop's sandbox, so the teacher can read but not change it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.workspace.egress import EgressRule

POLICY_FILE = "staffroom.json"
DOWNLOADS = "Downloads"


def url_patterns(rules: Iterable[EgressRule]) -> list[str]:
    """Chromium URLAllowlist entries for ``allowed_hosts`` (host:port, any scheme, any path)."""
    patterns = []
    for rule in rules:
        host = f"[{rule.host}]" if ":" in rule.host else rule.host
        patterns.append(f"{host}:{rule.port}")
    return patterns


def managed_policy(home_url: str, rules: Iterable[EgressRule], home: str) -> dict[str, Any]:
    """Chromium's managed policy (see chromeenterprise.google/policies) for one desktop."""
    allow = url_patterns(rules)
    start = home_url or "about:blank"
    policy: dict[str, Any] = {
        "URLBlocklist": ["*"],
        "URLAllowlist": [*allow, "about:blank"],
        "HomepageLocation": start,
        "HomepageIsNewTabPage": False,
        "ShowHomeButton": True,
        "RestoreOnStartup": 4,  # open the URLs below
        "RestoreOnStartupURLs": [start],
        "NewTabPageLocation": start,
        "DownloadDirectory": f"{home}/{DOWNLOADS}",
        "PromptForDownloadLocation": False,
        "AllowFileSelectionDialogs": True,  # uploads to school systems come from the home
        "PrintingEnabled": False,
        "DeveloperToolsAvailability": 2,  # never
        "ExtensionInstallBlocklist": ["*"],
        "ExtensionInstallAllowlist": [],
        "BrowserSignin": 0,
        "SyncDisabled": True,
        "PasswordManagerEnabled": False,
        "AutofillAddressEnabled": False,
        "AutofillCreditCardEnabled": False,
        "BrowserGuestModeEnabled": False,
        "BrowserAddPersonEnabled": False,
        "IncognitoModeAvailability": 1,  # disabled
        "DefaultBrowserSettingEnabled": False,
        "MetricsReportingEnabled": False,
        "SafeBrowsingProtectionLevel": 0,  # no lookups to Google from a closed network
        "SearchSuggestEnabled": False,
        "NetworkPredictionOptions": 2,
        "TranslateEnabled": False,
        "SpellCheckServiceEnabled": False,
        "CloudPrintProxyEnabled": False,
        "RemoteAccessHostFirewallTraversal": False,
        "BackgroundModeEnabled": False,
        "DownloadRestrictions": 0,
    }
    return policy


def write_policy_dir(base: Path, policy: Mapping[str, Any]) -> Path:
    """Blocking: BASE/policies/managed/staffroom.json (root-owned, world-readable); BASE."""
    managed = base / "policies" / "managed"
    managed.mkdir(mode=0o755, parents=True, exist_ok=True)
    for path in (base, base / "policies", managed):
        os.chmod(path, 0o755)
    target = managed / POLICY_FILE
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, json.dumps(policy, indent=1, sort_keys=True).encode())
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return base
