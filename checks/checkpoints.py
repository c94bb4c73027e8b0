"""Checks (filled in by their area)."""

CHECKS: dict = {}
