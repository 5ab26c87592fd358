"""Synthetic but real media for demos, tests and benchmarks: no model, no download.

``render_clip`` makes a genuine H.264 (or MPEG-4) MP4 whose content depends on the
prompt, so a demo database holds real videos that decode, seek and stream like model
outputs; ``embed_text`` is a deterministic feature-hashing embedder standing in for
T5, so similar prompts really are closer; ``render_clip_counting`` writes its frame
number into every frame so decode tests can check frame accuracy after compression.

PyAV and Pillow are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from collections.abc import Iterator

import numpy as np

__all__ = [
    "PROMPTS",
    "embed_text",
    "make_prompts",
    "read_frame_number",
    "render_clip",
    "render_clip_counting",
    "render_image",
]

# --------------------------------------------------------------------------- prompts

_SUBJECTS = (
    "a golden retriever", "a red fox", "an astronaut", "a white horse", "a vintage car",
    "a paper boat", "a hummingbird", "a blue whale", "a cyclist", "a dancer in a silver dress",
    "a steam locomotive", "a black cat", "a hot air balloon", "a robot", "a koi fish",
    "a skateboarder", "an old fisherman", "a green dragon", "a surfer", "a purple jellyfish",
)
_ACTIONS = (
    "running", "jumping", "flying", "drifting slowly", "spinning", "walking",
    "swimming", "racing", "dancing", "gliding", "climbing", "floating",
)
_SCENES = (
    "on a beach at sunset", "through a neon city at night", "across a snowy forest",
    "over a misty mountain lake", "in a golden wheat field", "under a stormy sky",
    "inside a glass greenhouse", "along a desert highway at dawn", "in a coral reef",
    "through autumn leaves", "on the surface of the moon", "in a rainy tokyo alley",
    "across a frozen ocean", "in a sunlit meadow", "over a volcanic island",
)
_STYLES = (
    "", "", "", ", cinematic lighting", ", slow motion", ", aerial drone shot",
    ", 35mm film grain", ", wide angle", ", shallow depth of field", ", anime style",
)

PROMPTS: tuple[str, ...] = (
    "A golden retriever running on a beach at sunset",
    "A red fox jumping through a snowy forest",
    "An astronaut floating on the surface of the moon",
    "A hot air balloon drifting slowly over a misty mountain lake",
    "A skateboarder racing through a neon city at night",
    "A purple jellyfish gliding in a coral reef, slow motion",
    "A steam locomotive racing along a desert highway at dawn, aerial drone shot",
    "A black cat walking in a rainy tokyo alley, cinematic lighting",
)


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` varied video prompts (subject + action + scene + style), reproducible by seed.

    Shared words across prompts ("beach", "sunset", "golden") give the embedder and the
    renderer real structure to pick up, so similarity queries return sensible rows.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_ACTIONS)} "
            f"{rng.choice(_SCENES)}{rng.choice(_STYLES)}"
        )
        out.append(text[0].upper() + text[1:])
    return out


def iter_prompts(seed: int = 0) -> Iterator[str]:
    """An endless stream of prompts, for benches that do not know ``n`` up front."""
    rng = random.Random(seed)
    while True:
        yield from make_prompts(256, rng.randrange(2**31))


# ------------------------------------------------------------------------- embedding

_TOKEN = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    ["a", "an", "the", "of", "on", "in", "at", "to", "and", "or", "with", "through", "over", "under", "across", "along", "into", "inside", "is", "are", "by", "for", "from"]
)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def embed_text(text: str, dim: int = 4096) -> np.ndarray:
    """A deterministic unit-norm float32 embedding of ``text`` by signed feature hashing.

    Unigrams and bigrams (stopwords dropped) are hashed with blake2b into ``dim``
    buckets with a ±1 sign, then L2-normalised: stable across processes and machines
    (unlike ``hash()``), instant, and texts sharing words have higher cosine similarity —
    enough to exercise vector search without downloading T5.
    """
    if dim <= 0:
        raise ValueError("dim must be positive")
    tokens = [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]
    features = [(t, 1.0) for t in tokens]
    features += [(f"{a} {b}", 0.5) for a, b in zip(tokens, tokens[1:])]
    if not features:
        features = [("<empty>", 1.0)]
    vec = np.zeros(dim, dtype=np.float64)
    for feature, weight in features:
        h = _hash64(feature)
        vec[h % dim] += weight if (h >> 63) & 1 else -weight
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:  # every feature cancelled out: fall back to a fixed direction
        vec[_hash64(text) % dim] = 1.0
        norm = 1.0
    return (vec / norm).astype(np.float32)


# ---------------------------------------------------------------------------- colours

_COLOURS: dict[str, tuple[int, int, int]] = {
    "golden": (235, 180, 40), "gold": (235, 180, 40), "yellow": (245, 220, 50),
    "sunset": (250, 110, 60), "dawn": (250, 170, 140), "red": (210, 40, 40),
    "fox": (220, 100, 30), "orange": (245, 140, 30), "blue": (40, 90, 220),
    "ocean": (20, 80, 160), "whale": (60, 90, 140), "sea": (30, 110, 170),
    "green": (40, 170, 70), "forest": (30, 110, 50), "meadow": (110, 190, 80),
    "purple": (140, 60, 200), "neon": (255, 40, 200), "night": (20, 20, 50),
    "black": (25, 25, 25), "white": (235, 235, 235), "snowy": (225, 235, 245),
    "snow": (225, 235, 245), "silver": (190, 195, 205), "moon": (170, 170, 180),
    "beach": (230, 210, 160), "desert": (220, 180, 120), "sand": (225, 200, 150),
    "stormy": (70, 75, 90), "misty": (180, 190, 200), "volcanic": (150, 40, 20),
    "autumn": (200, 110, 40), "coral": (250, 120, 110), "rainy": (90, 100, 120),
    "frozen": (190, 220, 240), "sky": (120, 180, 240), "wheat": (220, 190, 110),
}


def _word_colour(word: str) -> tuple[int, int, int]:
    if word in _COLOURS:
        return _COLOURS[word]
    h = _hash64("colour:" + word)
    return (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)


def _palette(prompt: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Background colour (scene words) and shape colours (every content word) of a prompt."""
    words = [t for t in _TOKEN.findall(prompt.lower()) if t not in _STOPWORDS] or ["empty"]
    named = [w for w in words if w in _COLOURS]
    bg = np.array(_word_colour(named[-1] if named else words[-1]), dtype=np.float32) * 0.6
    shapes = [np.array(_word_colour(w), dtype=np.float32) for w in (named + words)[:4]]
    return bg, shapes


# -------------------------------------------------------------------------- encoding


def _pick_codec() -> str:
    """libx264 when this PyAV build has it (small, fast), else FFmpeg's built-in mpeg4."""
    global _CODEC
    if _CODEC is None:
        import av

        try:
            av.codec.Codec("libx264", "w")
            _CODEC = "libx264"
        except Exception:
            _CODEC = "mpeg4"
    return _CODEC


_CODEC: str | None = None


def _encode(frames: Iterator[np.ndarray], fps: int, size: tuple[int, int],
            gop: int | None, quality: str, bframes: int = 0, container: str = "mp4") -> bytes:
    import av

    width, height = size
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError("size must be positive and even (yuv420p)")
    codec = _pick_codec()
    if codec == "libx264":
        options = {"preset": "ultrafast", "crf": "18" if quality == "high" else "26"}
    else:
        options = {"qscale": "2" if quality == "high" else "5"}
    if bframes:
        options["bf"] = str(bframes)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.codec_context.qscale = 2 if quality == "high" else 5  # type: ignore[attr-defined]
        if gop:
            stream.codec_context.gop_size = gop
        stream.thread_count = 1  # tiny frames: threads cost more than they save
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


# ------------------------------------------------------------------------------ clips


def render_clip(prompt: str, frames: int = 48, fps: int = 24,
                size: tuple[int, int] = (128, 96), seed: int = 0,
                gop: int | None = None) -> bytes:
    """A real MP4 of moving shapes coloured by the prompt's words, for demo tables.

    Same prompt and seed give the same bytes' content; different prompts look different,
    so the clips are a stand-in for model outputs that still decode, seek and stream.
    ``gop`` sets the keyframe interval (default: the encoder's, one keyframe per clip).
    """
    if frames <= 0:
        raise ValueError("frames must be positive")
    width, height = size
    bg, colours = _palette(prompt)
    rng = np.random.default_rng(_hash64(f"{prompt}|{seed}") % 2**63)
    ys = np.arange(height, dtype=np.float32)
    xs = np.arange(width, dtype=np.float32)
    # A vertical gradient background, darker at the bottom.
    shade = 1.15 - 0.5 * (ys / max(height - 1, 1))
    base = np.empty((height, width, 3), dtype=np.uint8)
    base[:] = np.clip(bg[None, :] * shade[:, None], 0, 255).astype(np.uint8)[:, None, :]
    n = len(colours)
    paint = [np.clip(c, 0, 255).astype(np.uint8) for c in colours]
    start = rng.uniform(0, 1, size=(n, 2)) * (width, height)
    velocity = rng.uniform(-1.5, 1.5, size=(n, 2)) * (width, height) / max(frames, 1)
    radius = rng.uniform(0.08, 0.22, size=n) * min(width, height)
    is_rect = rng.random(n) < 0.4

    def gen() -> Iterator[np.ndarray]:
        for t in range(frames):
            img = base.copy()
            for i in range(n):
                cx, cy = start[i] + velocity[i] * t
                cx, cy = cx % width, cy % height
                r = radius[i] * (1.0 + 0.2 * np.sin(0.3 * t + i))
                ry = 0.7 * r if is_rect[i] else r
                # Draw only inside the shape's bounding box: most of the cost otherwise.
                x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, width)
                y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, height)
                if x0 >= x1 or y0 >= y1:
                    continue
                dx = xs[None, x0:x1] - cx
                dy = ys[y0:y1, None] - cy
                if is_rect[i]:
                    mask = (np.abs(dx) < r) & (np.abs(dy) < ry)
                else:
                    mask = dx * dx + dy * dy < r * r
                img[y0:y1, x0:x1][mask] = paint[i]
            yield img

    return _encode(gen(), fps, size, gop, "normal")


_BITS = 16  # frame numbers up to 65535


def render_clip_counting(frames: int = 48, fps: int = 24,
                         size: tuple[int, int] = (128, 96), gop: int | None = 12,
                         bframes: int = 0, container: str = "mp4") -> bytes:
    """A clip whose frame k shows k as a 16-bit bar code; read it back with ``read_frame_number``.

    Wide black/white bars survive lossy compression, so a decoder test can tell exactly
    which frame it got after a seek. ``gop`` (default 12) makes several keyframes so
    seeks land between them; ``bframes`` > 0 allows that many B-frames in a row, so
    decode order differs from display order as in real encoder output. ``container``
    is an FFmpeg muxer name ("mp4", "matroska", "mpegts", ...): each seeks differently.
    """
    if not 0 < frames <= 2**_BITS:
        raise ValueError(f"frames must be in 1..{2**_BITS}")
    width, height = size
    if width < 2 * _BITS:
        raise ValueError(f"width must be at least {2 * _BITS} pixels for the bar code")
    edges = np.linspace(0, width, _BITS + 1).astype(int)

    def gen() -> Iterator[np.ndarray]:
        for k in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            for bit in range(_BITS):  # most significant bit on the left
                if (k >> (_BITS - 1 - bit)) & 1:
                    img[:, edges[bit]:edges[bit + 1]] = 255
            yield img

    return _encode(gen(), fps, size, gop, "high", bframes, container)


def read_frame_number(frame: np.ndarray) -> int:
    """The frame number a ``render_clip_counting`` frame encodes.

    Accepts HxWx3 / HxW / 3xHxW arrays, uint8 or floats in [0, 1] (what a dataloader
    yields), so tests can check frames wherever they come from.
    """
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first -> channels-last
    arr = arr.astype(np.float32)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2:
        raise ValueError(f"expected one frame, got shape {np.shape(frame)}")
    if arr.size and float(arr.max()) <= 1.0:
        arr = arr * 255.0
    height, width = arr.shape
    edges = np.linspace(0, width, _BITS + 1).astype(int)
    rows = arr[height // 4: height - height // 4 or height]
    value = 0
    for bit in range(_BITS):
        lo, hi = edges[bit], edges[bit + 1]
        pad = max((hi - lo) // 4, 0)  # read the bar's centre, away from ringing at edges
        cell = rows[:, lo + pad: hi - pad] if hi - pad > lo + pad else rows[:, lo:hi]
        value = (value << 1) | int(float(cell.mean()) > 127.5)
    return value


# ------------------------------------------------------------------------------ images


def render_image(prompt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG conditioning image (gradient plus a disc in the prompt's colours)."""
    from PIL import Image

    width, height = size
    bg, colours = _palette(prompt)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx + yy) / max(width + height - 2, 1)
    img = bg[None, None, :] * (1.2 - 0.6 * t)[:, :, None]
    h = _hash64("image:" + prompt)
    cx, cy = (h % 1000) / 1000 * width, ((h >> 10) % 1000) / 1000 * height
    r = (0.15 + ((h >> 20) % 100) / 500) * min(width, height)
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = colours[0]
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()
