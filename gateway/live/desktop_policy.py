"""A teacher's policy as her desktop's settings: the gateway's side of gateway.workspace.settings.

Each new desktop is started with its own user's resolved policy (school, role and user files
apply, as `staffroom policy explain` shows); the policies are read again at each lookup, so a
reload (SIGHUP) applies to the next desktop that starts and to the idle stop of running ones.
"""

from __future__ import annotations

from gateway.context import GatewayContext
from gateway.policy.effective import Policy
from gateway.policy.load import PolicyError
from gateway.workspace.base import InvalidAssignment
from gateway.workspace.settings import DesktopSettings, SettingsLookup


def desktop_settings(policy: Policy) -> DesktopSettings:
    workspace, redirection = policy.workspace, policy.redirection
    return DesktopSettings.of(
        workspace.session_command, home_url=workspace.home_url,
        allowed_hosts=workspace.allowed_hosts, home_quota_bytes=workspace.home_quota,
        printing=redirection.printing, clipboard=redirection.clipboard != "off",
        stop_unattached_after=workspace.stop_unattached_after.total_seconds())


def settings_lookup(context: GatewayContext) -> SettingsLookup:
    """The lookup the workspace manager calls for a user's desktop settings."""

    def settings_for(user_id: str) -> DesktopSettings:
        user = context.store.get_user(user_id)
        role, school = (user.role, user.school) if user else ("teacher", None)
        try:
            return desktop_settings(context.policies.resolve(user_id, role, school).policy)
        except PolicyError as e:
            raise InvalidAssignment(f"The policy for {user_id} does not apply ({e}): ask the "
                                    "administrator to fix the policy files.") from None

    return settings_for
