"""Staffroom agent: runs on the teacher's PC (posture, token, login, tunnel, loopback viewer).

It imports nothing from ``gateway`` but ``gateway.wire`` (checked by import-linter in CI).
"""

__version__ = "0.1.0"  # the project's version (pyproject.toml); a test keeps them equal
