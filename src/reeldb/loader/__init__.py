"""The dataloader: ``db.dataloader("t").filter(...).columns([...]).batch_size(n).to_torch()``.

- ``builder``: the chainable ``DataLoader`` builder, pinned to a commit when made;
- ``plan``: filters evaluated once into row positions, and how each column is read;
- ``order``: shuffles per (seed, epoch) and the split into ranks and workers (no torch);
- ``read``: batches as numpy arrays straight from matrix files, Parquet and blob packs;
- ``torch_loader``: ``TorchLoader``, the PyTorch IterableDataset (imports torch).

docs/loader.md is the user's guide.
"""

from __future__ import annotations

from typing import Any

from .builder import DataLoader

__all__ = ["DataLoader", "TorchLoader"]


def __getattr__(name: str) -> Any:
    if name == "TorchLoader":  # importing torch costs seconds: only when asked
        from .torch_loader import TorchLoader

        return TorchLoader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
