"""reeldb catalog layer (see DESIGN.md)."""
