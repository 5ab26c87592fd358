"""reeldb sql layer (see DESIGN.md)."""
