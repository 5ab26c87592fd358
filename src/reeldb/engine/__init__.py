"""reeldb engine layer (see DESIGN.md)."""
