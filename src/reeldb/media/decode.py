"""Decode VIDEO and IMAGE values to uint8 RGB arrays, reading only the bytes needed.

A training step wants 16 frames out of a 500 MB clip. ``decode_video`` seeks to the
keyframe at or before the first wanted frame (from the keyframe index ``probe_video``
stored at insert), decodes forward from there, keeps every ``stride``-th frame and
stops at the last one wanted. Over a seekable file on a blob pack (``Blob.open()``)
that reads the container header and index and the bytes from that keyframe on, not the
clip. Frames are numbered by their timestamps against the keyframe index, not by
arrival, so B-frames and demuxers that seek imprecisely cannot shift the result.

Sizes are ``(height, width)``, as in PyTorch. Scaling is bilinear for videos (FFmpeg's
swscale, fused with the YUV -> RGB conversion) and for images (Pillow).

PyAV and Pillow are imported inside the functions: they are optional extras.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .. import errors
from .probe import _reason

__all__ = ["decode_image", "decode_video"]

VideoSource = BinaryIO | bytes | bytearray | memoryview | str | os.PathLike
ImageSource = BinaryIO | bytes | bytearray | memoryview

# 16-bit greyscale: Pillow's convert("RGB") clips these at 255, so they are scaled.
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N")

# Seeks tried before decoding from the first frame: the keyframe at or before ``start``
# and the one before it (MPEG-TS seeks by decode time and can land one keyframe late).
_SEEK_TRIES = 2


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise errors.FeatureNotSupported(
            "decoding VIDEO values needs PyAV: pip install 'reeldb[video]'"
        ) from exc
    return av


def _import_pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise errors.FeatureNotSupported(
            "decoding IMAGE values needs Pillow: pip install 'reeldb[image]'"
        ) from exc
    return Image


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (height, width), not {size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise ValueError(f"size must be two positive ints (height, width), not {size!r}")
    return height, width


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")


# ------------------------------------------------------------------------------ video


@dataclass(frozen=True)
class _Want:
    start: int
    frames: int | None
    stride: int
    size: tuple[int, int] | None  # (height, width)


def decode_video(
    file: VideoSource,
    *,
    start: int = 0,
    frames: int | None = None,
    stride: int = 1,
    size: tuple[int, int] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Frames ``start, start + stride, ...`` of a video as a uint8 array ``(T, H, W, 3)``, RGB.

    ``file`` is a seekable binary file object (``Blob.open()``, ``open(path, "rb")``),
    a path, or the encoded bytes. Frame numbers are display indices counted from 0.
    ``frames`` is how many to return (None: up to the end); a clip that ends sooner
    gives fewer, never padding, so ``len(result)`` is what exists. ``size`` is
    ``(height, width)`` to scale every frame to (None: as stored).

    ``meta`` is ``probe_video``'s output for this file (``Blob.meta`` holds it): with
    its keyframe index the decoder seeks to the keyframe at or before ``start``;
    without it, the video is decoded from its first frame. Either way it stops after
    the last frame wanted.

    Raises ValueError for bad arguments or a ``start`` past the last frame, and
    ``reeldb.DataError`` when the bytes do not decode as a video.
    """
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a frame index >= 0, not {start!r}")
    if frames is not None:
        _positive("frames", frames)
    _positive("stride", stride)
    want = _Want(start, frames, stride, _check_size(size))
    meta = meta or {}
    total = meta.get("frames")
    if total and start >= int(total):
        raise ValueError(f"start {start} is beyond the end of a {int(total)}-frame video")
    av = _import_av()

    # Keyframes as (display index, pts), ascending; pts -> index to number frames by.
    keys = [(int(k[0]), k[1]) for k in meta.get("keyframes") or () if k[1] is not None]
    by_pts = {int(pts): index for index, pts in keys}
    at = bisect.bisect_right([index for index, _ in keys], start) - 1
    seeks = [int(keys[j][1]) for j in range(at, max(at - _SEEK_TRIES, 0), -1)]

    container = _open_video(av, file, rewind=False)
    try:
        out = None
        for pts in seeks:
            try:
                container.seek(pts, stream=container.streams.video[0], backward=True,
                               any_frame=False)
            except av.FFmpegError:
                break  # a stream without an index (raw H.264, ...): decode from the start
            out = _collect(container, by_pts, pts, want)
            if out is not None:
                break
        if out is None:
            if seeks:  # every seek landed past ``start``: decode from the first frame
                container.close()
                container = _open_video(av, file, rewind=True)
            out = _collect(container, by_pts, None, want)
    except av.FFmpegError as exc:
        raise errors.DataError(f"VIDEO value cannot be decoded: {_reason(exc)}") from exc
    finally:
        container.close()
    if not out:
        raise ValueError(f"start {start} is beyond the end of the video")
    return np.stack(out)


def _open_video(av: Any, file: VideoSource, rewind: bool) -> Any:
    if isinstance(file, bytes | bytearray | memoryview):
        file = io.BytesIO(file)
    elif rewind and hasattr(file, "seek"):
        file.seek(0)
    try:
        container = av.open(file, mode="r")
    except av.FFmpegError as exc:
        raise errors.DataError(f"VIDEO value cannot be decoded: {_reason(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise errors.DataError("VIDEO value cannot be decoded: no video stream")
    return container


def _collect(container: Any, by_pts: dict[int, int], seek_pts: int | None,
             want: _Want) -> list[np.ndarray] | None:
    """Decode from where the container stands; None if a seek landed past ``want.start``.

    ``seek_pts`` is the keyframe just seeked to (None: at the first frame). A frame is
    numbered by the keyframe index when its pts is a keyframe's, else as the one after
    the previous frame: decoders emit frames in display order.
    """
    from av.video.reformatter import VideoReformatter

    stream = container.streams.video[0]
    height, width = want.size or (None, None)
    # One scaler for every frame: a frame's own reformat() sets up a new swscale
    # context each time, which costs several times the conversion itself.
    scaler = VideoReformatter()
    out: list[np.ndarray] = []
    index: int | None = None
    for packet in container.demux(stream):
        for frame in packet.decode():
            pts = frame.pts
            if index is None:  # where did we land?
                if seek_pts is None:
                    index = 0
                elif pts in by_pts:
                    index = by_pts[pts]
                    if index > want.start:
                        return None
                elif pts is not None and pts < seek_pts:
                    continue  # before the keyframe asked for: it follows
                else:
                    return None
            else:
                index = by_pts.get(pts, index + 1) if pts is not None else index + 1
            if index < want.start or (index - want.start) % want.stride:
                continue
            rgb = scaler.reformat(frame, width=width, height=height, format="rgb24")
            out.append(rgb.to_ndarray())
            if len(out) == want.frames:
                return out
    if index is None and seek_pts is not None:
        return None  # the seek landed at the end
    return out


# ------------------------------------------------------------------------------ image


def decode_image(data: ImageSource, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image as a uint8 array ``(H, W, 3)``, RGB; ``size`` is ``(height, width)``.

    ``data`` is the encoded bytes or a seekable binary file object. Every mode becomes
    RGB: greyscale ('L', '1') is repeated over the channels, palettes are expanded,
    alpha ('RGBA', 'LA') is dropped without blending, 16-bit greyscale is scaled to
    8 bits, CMYK and YCbCr are converted. EXIF orientation is not applied: the array
    is the image as stored, matching the probed width and height. A JPEG asked for at
    a smaller ``size`` is decoded at a reduced DCT scale first, which is much faster.

    Raises ``reeldb.DataError`` when the bytes are not a decodable image.
    """
    hw = _check_size(size)
    Image = _import_pil()
    fp = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        with Image.open(fp) as img:
            if hw is not None:
                img.draft(None, (hw[1], hw[0]))  # JPEG only; never below the size asked
            img.load()
            if img.mode in _WIDE_GREY:
                wide = np.asarray(img).astype(np.uint16)
                rgb = Image.fromarray((wide >> 8).astype(np.uint8), "L").convert("RGB")
            else:
                rgb = img.convert("RGB")
    except Exception as exc:  # Pillow raises many unrelated types for corrupt input
        raise errors.DataError(f"IMAGE value cannot be decoded: {_reason(exc)}") from exc
    if hw is not None and rgb.size != (hw[1], hw[0]):
        rgb = rgb.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.array(rgb, dtype=np.uint8)
