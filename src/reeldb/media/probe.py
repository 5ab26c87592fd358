"""Validate and describe IMAGE and VIDEO values when they are inserted.

A cell is probed once, on the way in, so a bad upload fails the INSERT (SQLSTATE
22P02, like any malformed literal) instead of a training job hours later, and the
metadata (size, fps, frame count, keyframe index) is stored next to the bytes where
queries and the dataloader can use it without decoding anything.

PyAV and Pillow are imported inside the functions: they are optional extras and slow
to import.
"""

from __future__ import annotations

import io
from typing import Any

from .. import errors

_INVALID = "22P02"  # invalid_text_representation: what Postgres says for a malformed value

# Demuxers that open a single still image as a one-frame "video": refused for VIDEO.
_IMAGE_DEMUXERS = ("image2", "image2pipe")


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise errors.DataError(
        f"media value must be bytes, not {type(data).__name__}", sqlstate=_INVALID
    )


def probe_image(data: bytes) -> dict[str, Any]:
    """Check that ``data`` is a decodable image and return its format, size and mode.

    Pillow's ``verify()`` checks the structure and checksums, then the pixels are
    decoded: ``verify()`` alone passes a truncated JPEG and a PNG whose compressed
    data is corrupt, which would fail only when a training job reads them. A JPEG is
    decoded at its smallest DCT scale, which still reads every byte of it.
    """
    data = _as_bytes(data)
    if not data:
        raise errors.DataError("IMAGE value is not a decodable image: empty value", sqlstate=_INVALID)
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise errors.FeatureNotSupported(
            "IMAGE columns need Pillow: pip install 'reeldb[image]'"
        ) from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            info = {
                "format": (img.format or "unknown").lower(),
                "width": int(img.width),
                "height": int(img.height),
                "mode": str(img.mode),
            }
            img.verify()
        with Image.open(io.BytesIO(data)) as img:  # verify() leaves the image unusable
            img.draft(None, (1, 1))  # JPEG only
            img.load()
    except Exception as exc:  # Pillow raises many unrelated types for corrupt input
        reason = str(exc) or type(exc).__name__
        raise errors.DataError(
            f"IMAGE value is not a decodable image: {reason}", sqlstate=_INVALID
        ) from exc
    return info


def probe_video(data: bytes) -> dict[str, Any]:
    """Check that ``data`` is a video and return its container, codec, geometry and timing.

    Frames are counted by demuxing packets and only the first frame is decoded, so a
    probe costs a read of the container, not a decode of the clip. Decoding that frame
    refuses streams this FFmpeg cannot decode; counting refuses a file with fewer
    frames than its container declares (a truncated upload).

    ``keyframes`` lists ``[frame_index, pts, byte_offset]`` for every keyframe packet,
    in presentation order: the frame index is the keyframe's position in display
    order, ``pts`` is in ``time_base`` units and ``byte_offset`` is the packet's
    position in the file. ``decode_video`` seeks by it, so a ranged read starts at the
    keyframe before the frames wanted instead of the start of the clip.
    """
    data = _as_bytes(data)
    if not data:
        raise errors.DataError("VIDEO value is not a video: empty value", sqlstate=_INVALID)
    try:
        import av
    except ImportError as exc:
        raise errors.FeatureNotSupported(
            "VIDEO columns need PyAV: pip install 'reeldb[video]'"
        ) from exc

    def bad(reason: str) -> errors.DataError:
        return errors.DataError(f"VIDEO value is not a video: {reason}", sqlstate=_INVALID)

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception as exc:
        raise bad(_reason(exc)) from exc
    try:
        fmt = container.format.name
        if fmt in _IMAGE_DEMUXERS or fmt.endswith("_pipe"):
            raise bad(f"{fmt} is a still image format")
        if not container.streams.video:
            raise bad(f"{fmt} container has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        codec = ctx.name
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate

        declared = int(stream.frames or 0)  # 0 where the container does not say
        # read now: PyAV >= 18.1.1 refuses a stream's fields once its container is closed
        stream_duration = stream.duration
        # (pts, keyframe, pos) for every packet; sorted by pts below because with
        # B-frames decode order differs from display order.
        packets: list[tuple[int, bool, int]] = []
        last_end: int | None = None
        decoded = False
        try:
            for packet in container.demux(stream):
                if not decoded:  # the flush packet at the end drains a decoder with delay
                    try:
                        decoded = bool(packet.decode())
                    except av.FFmpegError as exc:
                        raise bad(f"cannot decode its {codec} stream: {_reason(exc)}") from exc
                if packet.size == 0:  # the flush packet the demuxer yields at the end
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    pts = packets[-1][0] + 1 if packets else 0
                pts = int(pts)
                pos = int(packet.pos) if packet.pos is not None and packet.pos >= 0 else -1
                packets.append((pts, bool(packet.is_keyframe), pos))
                end = pts + int(packet.duration or 0)
                last_end = end if last_end is None else max(last_end, end)
        except errors.DataError:
            raise
        except Exception as exc:
            raise bad(f"corrupt {fmt} stream: {_reason(exc)}") from exc
    finally:
        container.close()

    if not packets:
        raise bad(f"{fmt} container has no video frames")
    if len(packets) < declared:
        raise bad(f"truncated: {len(packets)} of the {declared} frames its container declares are present")
    if not decoded:
        raise bad(f"its {codec} stream has no decodable frame")
    if width <= 0 or height <= 0:
        raise bad(f"{codec} stream has no frame size")

    packets.sort(key=lambda p: p[0])
    keyframes = [[i, pts, pos] for i, (pts, key, pos) in enumerate(packets) if key]
    frames = len(packets)
    fps = float(rate) if rate else 0.0

    duration = 0.0
    if stream_duration and time_base:
        duration = float(stream_duration * time_base)
    elif last_end is not None and time_base:
        duration = float((last_end - packets[0][0]) * time_base)
    if duration <= 0.0 and fps > 0.0:
        duration = frames / fps
    if fps <= 0.0 and duration > 0.0:
        fps = frames / duration

    return {
        "container": fmt,
        "codec": codec,
        "width": width,
        "height": height,
        "fps": fps,
        "frames": frames,
        "duration": duration,
        "time_base": [time_base.numerator, time_base.denominator] if time_base else [1, 1],
        "keyframes": keyframes,
    }


def _reason(exc: BaseException) -> str:
    """A short human reason from an FFmpeg or Pillow error, without PyAV's '<none>' filename."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror:
        return strerror
    return str(exc) or type(exc).__name__
