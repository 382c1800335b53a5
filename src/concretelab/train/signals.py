"""Stopping a run on SIGINT/SIGTERM: the first signal asks for a clean stop (and abandons an abortable phase, a
validation, at once); the second stops at once wherever the program is (``ForcedStop``)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["ForcedStop", "PhaseAborted", "StopSignals"]


class ForcedStop(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: the run stops at once; the last complete checkpoint stays on disk."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")
        self.signum = signum


class PhaseAborted(Exception):
    """Raised inside an abortable phase (validation) by the first stop signal."""


class StopSignals:
    """SIGINT/SIGTERM while training: the first records a stop (and aborts an abortable phase at once), the
    second raises ``ForcedStop`` wherever the program is."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._abortable = False

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handler(self, signum: int, frame: object) -> None:
        if self.signal is not None:
            raise ForcedStop(signum)
        self.signal = signum
        if self._abortable:
            raise PhaseAborted

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def abortable(self) -> Iterator[None]:
        """A phase the first signal abandons at once (by raising ``PhaseAborted``)."""
        if self.requested:
            raise PhaseAborted
        self._abortable = True
        try:
            yield
        finally:
            self._abortable = False
