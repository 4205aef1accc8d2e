"""Operators' view of a running gateway: Prometheus metrics and the readiness check."""
