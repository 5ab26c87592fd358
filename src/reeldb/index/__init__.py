"""reeldb index layer (see DESIGN.md)."""
