"""Immutable files of a reeldb database: Parquet fragments, matrices, blob packs,
deletion vectors and table manifests. Depends only on ``storage``."""
