"""Media values: probing IMAGE/VIDEO cells at insert time, decoding them to arrays, and
synthetic clips for demos.

Nothing here imports PyAV or Pillow at module import time: ``import reeldb`` must stay
fast and must work without the optional ``video``/``image`` extras.
"""

from __future__ import annotations

from .decode import decode_image, decode_video
from .probe import probe_image, probe_video

__all__ = ["decode_image", "decode_video", "probe_image", "probe_video"]
