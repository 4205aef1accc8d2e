"""Staffroom."""
