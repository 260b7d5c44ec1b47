"""What a long course operation (a batch, a recheck) reports its progress to; the command line draws a bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, text: str) -> None: ...

    def advance(self) -> None: ...


class NoProgress:
    """Progress reported to nobody (the API without a bar, the tests)."""

    def start(self, total: int, text: str) -> None:
        pass

    def advance(self) -> None:
        pass
