"""Every policy key as data: its rule (type, allowed values or range) and its one-line meaning.

Attacker-controlled here: nothing (policy files are the board's), but a typo must never pass:
unknown sections or keys and wrong types or ranges are refused, naming what is allowed.
policies/default.toml holds the default values; the loader checks it against this schema too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.policy.rules import (
    DAYS,
    MIB,
    OS_NAMES,
    WATERMARK_FIELDS,
    Invalid,
    Rule,
    boolean,
    choice,
    command,
    dates,
    duration,
    hosts,
    hours,
    integer,
    number,
    size,
    subset,
    template,
    url,
    validity,
)

__all__ = ["DAYS", "MATCH_KEYS", "OS_NAMES", "SCHEMA", "WATERMARK_FIELDS", "Invalid", "Key",
           "describe"]

MATCH_KEYS = ("schools", "roles", "users")


@dataclass(frozen=True, slots=True)
class Key:
    rule: Rule
    doc: str

    def check(self, value: Any) -> Any:
        return self.rule.parse(value)


SCHEMA: dict[str, dict[str, Key]] = {
    "redirection": {
        "clipboard": Key(choice("off", "to-remote", "to-local", "both"),
                         "clipboard direction between the home PC and the desktop"),
        "clipboard_max_bytes": Key(integer(0, MIB, " bytes"), "largest clipboard text let through"),
        "printing": Key(boolean(), "printing to the home PC"),
        "drives": Key(boolean(), "home PC drives in the desktop"),
        "devices": Key(boolean(), "USB and other device redirection"),
        "file_transfer": Key(boolean(), "file transfer in either direction"),
        "audio": Key(boolean(), "sound from the desktop"),
    },
    "posture": {
        "antivirus_required": Key(boolean(), "an antivirus product must be visible to the agent"),
        "max_definitions_age_days": Key(integer(0, 365), "oldest antivirus definitions accepted"),
        "realtime_required": Key(boolean(), "real-time protection must be on"),
        "allowed_os": Key(subset(*OS_NAMES), "operating systems the agent may run on"),
        "recheck_every": Key(duration(timedelta(seconds=1)),
                             "the agent re-sends its posture this often during a session"),
        "on_fail": Key(choice("warn", "end"),
                       "a failing or missing re-check only warns, or ends the session"),
        "fail_grace": Key(duration(), "time to fix a failing re-check before the session ends"),
    },
    "session": {
        "idle_timeout": Key(duration(timedelta(seconds=1)), "no input this long ends a session"),
        "max_duration": Key(duration(timedelta(seconds=1)), "no session lasts longer"),
        "reconnect_grace": Key(duration(), "a network blip shorter than this resumes a session"),
        "allowed_days": Key(subset(*DAYS), "days a session may start"),
        "allowed_hours": Key(hours(), "hours a session may start (gateway local time)"),
        "calendar_exceptions": Key(dates(), "school closure days: no session may start"),
        "max_concurrent": Key(integer(1, 10), "concurrent sessions per user"),
    },
    "auth": {
        "second_factor": Key(choice("password", "totp", "both"),
                             "second factor after the key and its PIN"),
    },
    "watermark": {
        "enabled": Key(boolean(), "draw the watermark into the frames at the gateway"),
        "template": Key(template(), "the watermark text"),
        "opacity": Key(number(0.02, 0.5), "how visible the watermark is"),
    },
    "display": {
        "quality": Key(choice("build-to-lossless", "lossy", "lossless"),
                       "photo-like parts of the screen: JPEG, then pixel-exact once still; "
                       "JPEG only; or never JPEG"),
        "max_frame_rate": Key(integer(0, 60, " frames a second (0: no limit)"),
                              "at most this many frames a second of big changes (a typed "
                              "glyph goes at once); 0 for no limit"),
    },
    "recording": {
        "enabled": Key(boolean(), "record sessions (a session that cannot be recorded ends)"),
        "retention_days": Key(integer(1, 3650), "recordings older than this are deleted"),
        "replay_approval": Key(boolean(), "replaying or exporting a recording needs a second "
                               "officer's approval"),
        "approval_valid_for": Key(duration(timedelta(minutes=1), timedelta(days=7)),
                                  "how long an approval to replay or export lasts"),
    },
    "workspace": {
        "session_command": Key(command(), "what a new Xvnc desktop runs"),
        "allowed_hosts": Key(hosts(), "school systems the desktop may reach"),
        "home_url": Key(url(), "the desktop browser's start page (the school-affairs system)"),
        "home_quota": Key(size(1024**4), "per-user persistent home on the server"),
        "stop_unattached_after": Key(duration(), "a desktop nobody is attached to is stopped"),
    },
    "keys": {"valid_until": Key(validity(), "validity of client certificates issued")},
}


def describe() -> list[tuple[str, str, str]]:
    """("section.key", expects, doc) for every key, in schema order (docs and `policy keys`)."""
    return [(f"{s}.{k}", key.rule.expects, key.doc) for s, keys in SCHEMA.items()
            for k, key in keys.items()]
