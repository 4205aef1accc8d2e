"""Staffroom gateway: the server side (tunnel, login, policy, workspaces, display, audit, CA)."""
