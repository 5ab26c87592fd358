"""reeldb's version: a leaf module, so any layer may report it without importing the package."""

__version__ = "0.1.0"
