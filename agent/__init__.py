"""Staffroom agent: runs on the teacher's PC (posture, token, login, tunnel, loopback viewer).

It imports nothing from ``gateway`` but ``gateway.wire`` (checked by import-linter in CI).
"""
