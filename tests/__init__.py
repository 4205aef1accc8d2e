"""Staffroom tests."""
