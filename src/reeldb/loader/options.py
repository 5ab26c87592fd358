"""A dataloader's batching options: shared by the builder that sets them and the PyTorch
loader that follows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Options:
    """How the rows become batches (everything but which rows and columns)."""

    batch_size: int = 1
    seed: int | None = None  # None: table order
    buffer: int | None = None
    drop_last: bool = False
    workers: int = 0
    start_method: str | None = None
    prefetch: int = 2
    pin_memory: bool = False
    progress: bool = False
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None
