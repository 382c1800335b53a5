"""Atomic file writes for the trainer: re-exported from ``concretelab.files``, the one implementation."""

from __future__ import annotations

from concretelab.files import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
