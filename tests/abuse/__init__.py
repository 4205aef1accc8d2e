"""Abuse limits, origins and auth hardening against a real gateway (issue 10, part A)."""
