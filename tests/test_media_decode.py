"""Decoding stored media: frame-accurate ranged video reads, images, zero-copy tensors.

Clips are real encoder output (``synth.render_clip_counting`` paints frame k's number
into frame k), stored through the database and decoded from its blob packs.
"""

from __future__ import annotations

import io
import mmap
import sys

import numpy as np
import pytest

import reeldb
from reeldb import errors
from reeldb.format import checksum
from reeldb.media import decode_image, decode_video, probe_video, synth

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")

FRAMES = 60
GOP = 12
AVIO_BUFFER = 32768  # PyAV's default I/O buffer: each read FFmpeg makes asks for this much

# (container, B-frames): MP4 and Matroska seek by index, MPEG-TS by timestamps it
# finds in the stream, so it lands one keyframe late with B-frames; AVI has no B-frames.
VARIANTS = [("mp4", 0), ("mp4", 3), ("matroska", 3), ("mpegts", 3), ("avi", 0)]


def numbers(frames: np.ndarray) -> list[int]:
    return [synth.read_frame_number(f) for f in frames]


def want(start: int, frames: int | None, stride: int, total: int = FRAMES) -> list[int]:
    return list(range(start, total, stride))[:frames]


class RangeCounter:
    """Counts the bytes the store serves by byte range (what a ranged decode costs)."""

    def __init__(self, store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        self._get_range = store.get_range
        monkeypatch.setattr(store, "get_range", self.get_range)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = self._get_range(key, offset, length)
        if key.startswith("blobs/"):
            self.bytes += len(data)
        return data


# ------------------------------------------------------------------------------ clips


@pytest.fixture(scope="module")
def clips() -> dict[tuple[str, int], bytes]:
    return {(c, b): synth.render_clip_counting(frames=FRAMES, gop=GOP, bframes=b, container=c)
            for c, b in VARIANTS}


@pytest.fixture(scope="module")
def stored(tmp_path_factory, clips) -> dict[tuple[str, int], reeldb.Blob]:
    """Every variant in a VIDEO column, as the Blob a SELECT returns."""
    db = reeldb.connect(tmp_path_factory.mktemp("clips") / "db")
    db.execute("CREATE TABLE clips (id INT, container TEXT, bframes INT, clip VIDEO)")
    db.executemany("INSERT INTO clips VALUES (%s, %s, %s, %s)",
                   [(i, c, b, clips[c, b]) for i, (c, b) in enumerate(VARIANTS)])
    rows = db.execute("SELECT container, bframes, clip FROM clips").fetchall()
    yield {(c, b): blob for c, b, blob in rows}
    db.close()


def test_frames_10_to_25_stride_3(stored) -> None:
    blob = stored["mp4", 0]
    frames = blob.decode(start=10, frames=6, stride=3)
    assert frames.dtype == np.uint8 and frames.shape == (6, 96, 128, 3)
    assert numbers(frames) == [10, 13, 16, 19, 22, 25]


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"{c}-bf{b}" for c, b in VARIANTS])
@pytest.mark.parametrize(("start", "frames", "stride"), [
    (10, 6, 3), (0, 1, 1), (0, 16, 1), (11, 2, 1), (12, 5, 1), (13, 4, 5), (23, 3, 1),
    (24, 1, 1), (47, None, 1), (30, None, 7), (59, 1, 1), (5, 100, 2), (0, None, 13),
])
def test_windows_are_frame_accurate(stored, variant, start: int, frames: int | None,
                                    stride: int) -> None:
    got = stored[variant].decode(start=start, frames=frames, stride=stride)
    assert numbers(got) == want(start, frames, stride)


def test_clip_shorter_than_asked_returns_what_exists(stored) -> None:
    blob = stored["mp4", 3]
    assert numbers(blob.decode(start=55, frames=16)) == [55, 56, 57, 58, 59]
    assert numbers(blob.decode(start=50, frames=4, stride=4)) == [50, 54, 58]
    assert len(blob.decode()) == FRAMES


def test_start_beyond_the_end_is_value_error(stored, clips) -> None:
    with pytest.raises(ValueError, match="beyond the end of a 60-frame video"):
        stored["mp4", 0].decode(start=FRAMES)
    with pytest.raises(ValueError, match="beyond the end"):  # no meta: found by decoding
        decode_video(clips["mp4", 0], start=FRAMES)


def test_size_is_height_width(stored) -> None:
    frames = stored["matroska", 3].decode(start=3, frames=2, size=(48, 200))
    assert frames.shape == (2, 48, 200, 3)
    assert numbers(frames) == [3, 4]  # the bar code survives bilinear scaling


@pytest.mark.parametrize("variant", VARIANTS, ids=[f"{c}-bf{b}" for c, b in VARIANTS])
def test_decode_video_without_meta_and_from_any_source(clips, tmp_path, variant) -> None:
    data = clips[variant]
    path = tmp_path / "clip"
    path.write_bytes(data)
    for source in (data, io.BytesIO(data), str(path), path):
        assert numbers(decode_video(source, start=10, frames=6, stride=3)) == [10, 13, 16, 19, 22, 25]
    with open(path, "rb") as f:
        got = decode_video(f, start=40, frames=3, meta=probe_video(data))
    assert numbers(got) == [40, 41, 42]


def test_same_pixels_as_plain_pyav(clips) -> None:
    data = clips["mp4", 3]
    with av.open(io.BytesIO(data)) as container:
        reference = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    np.testing.assert_array_equal(decode_video(data, start=17, frames=9, stride=2,
                                               meta=probe_video(data)), reference[17:35:2])


@pytest.mark.parametrize("kwargs", [
    {"start": -1}, {"start": 1.0}, {"frames": 0}, {"frames": -2}, {"stride": 0},
    {"stride": True}, {"size": (0, 8)}, {"size": (8,)}, {"size": (8.0, 8)}, {"size": "ab"},
])
def test_bad_arguments(stored, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        stored["mp4", 0].decode(**kwargs)


def test_undecodable_bytes_are_data_error() -> None:
    with pytest.raises(reeldb.DataError, match="VIDEO value cannot be decoded"):
        decode_video(b"not a video at all" * 100)
    with pytest.raises(reeldb.DataError, match="IMAGE value cannot be decoded"):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)


# ---------------------------------------------------------------------- ranged reads


@pytest.fixture(scope="module")
def long_clip() -> bytes:
    """20 s of noise, 64x64, a keyframe a second: ~6 KB a frame, so a GOP is several
    I/O buffers and the clip is many GOPs."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.gop_size = 24
        for _ in range(480):
            frame = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _packets(data: bytes) -> list[tuple[int, int]]:
    """(pos, size) of each packet in file order (no B-frames: display order too)."""
    with av.open(io.BytesIO(data)) as container:
        return [(p.pos, p.size) for p in container.demux(video=0) if p.size]


def test_middle_decode_reads_from_the_keyframe_not_the_start(db, long_clip, monkeypatch) -> None:
    db.execute("CREATE TABLE t (clip VIDEO)")
    db.execute("INSERT INTO t VALUES (%s)", [long_clip])
    blob = db.execute("SELECT clip FROM t").fetchone()[0]
    counter = RangeCounter(db.catalog.store, monkeypatch)
    packets = _packets(long_clip)
    assert len(packets) == 480 and blob.meta["keyframes"][6][0] == 144

    def allowed(first_key: int, last: int) -> int:
        """Container header and index, the packets from the keyframe to the last frame
        wanted, and one I/O buffer of overshoot for each of at most four separate reads
        (file start, index, the first packet for stream info, the seek target), each
        rounded out to the value's checksum blocks (a block is fetched whole to verify it)."""
        outside = packets[0][0] + len(long_clip) - sum(packets[-1])
        span = sum(packets[last]) - packets[first_key][0]
        return outside + span + 4 * (AVIO_BUFFER + 2 * checksum.blob_block(len(long_clip)))

    frames = blob.decode(start=150, frames=16)
    assert frames.shape == (16, 64, 64, 3)
    assert blob.last_bytes_read == counter.bytes  # the store agrees with the accounting
    assert blob.last_bytes_read <= allowed(144, 165)
    assert allowed(144, 165) < len(long_clip) / 4  # so the bound above means something
    assert blob.last_bytes_read < packets[165][0] / 3  # reading from the start would pass here

    counter.bytes = 0
    blob.decode(start=0, frames=16)  # stops after frame 15, not at the end of the clip
    assert blob.last_bytes_read == counter.bytes <= allowed(0, 15)

    blob.decode()
    assert blob.last_bytes_read >= sum(size for _, size in packets)


def test_blob_reader_counts_what_it_reads(stored) -> None:
    blob = stored["mp4", 0]
    with blob.open() as reader:
        frames = decode_video(reader, start=30, frames=2, meta=blob.meta)
        assert numbers(frames) == [30, 31]
        assert 0 < reader.bytes_read <= len(blob)
    blob.decode(start=30, frames=2)
    assert blob.last_bytes_read == reader.bytes_read


# ------------------------------------------------------------------------------ images


def _encode_image(arr: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)


def test_image_decodes_to_its_pixels(db, rgb) -> None:
    db.execute("CREATE TABLE t (i INT, img IMAGE)")
    db.execute("INSERT INTO t VALUES (1, %s)", [_encode_image(rgb)])
    blob = db.execute("SELECT img FROM t").fetchone()[0]
    got = blob.decode()
    assert got.dtype == np.uint8 and got.shape == (30, 40, 3)
    np.testing.assert_array_equal(got, rgb)
    assert blob.last_bytes_read == len(blob)


def test_image_modes_become_rgb(db, rgb) -> None:
    grey = rgb[..., 0]
    rgba = np.dstack([rgb, np.full(grey.shape, 7, np.uint8)])
    wide = grey.astype(np.uint16) * 256 + 200  # 16-bit grey whose top byte is ``grey``
    palette = Image.fromarray(rgb).quantize(16)
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    db.execute("CREATE TABLE t (i INT, img IMAGE)")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s), (3, %s), (4, %s)",
               [_encode_image(grey, "L"), _encode_image(rgba, "RGBA"),
                _encode_image(wide), buf.getvalue()])
    got = dict(db.execute("SELECT i, img FROM t").fetchall())
    assert got[3].meta["mode"].startswith("I;16")
    np.testing.assert_array_equal(got[1].decode(), np.dstack([grey] * 3))
    np.testing.assert_array_equal(got[2].decode(), rgb)  # alpha dropped, colour kept
    np.testing.assert_array_equal(got[3].decode(), np.dstack([grey] * 3))  # 16 -> 8 bits
    np.testing.assert_array_equal(got[4].decode(), np.asarray(palette.convert("RGB")))


def test_image_size_is_height_width(db, rgb) -> None:
    big = np.kron(rgb, np.ones((8, 8, 1), np.uint8))  # 240x320 of 8x8 blocks
    db.execute("CREATE TABLE t (i INT, img IMAGE)")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s)",
               [_encode_image(big), _encode_image(big, fmt="JPEG")])
    png, jpeg = (r[0] for r in db.execute("SELECT img FROM t ORDER BY i").fetchall())
    small = png.decode(size=(30, 40))
    assert small.shape == (30, 40, 3)
    bilinear = Image.fromarray(big).resize((40, 30), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(small, np.asarray(bilinear))
    assert png.decode(size=(50, 20)).shape == (50, 20, 3)
    fast = jpeg.decode(size=(60, 80))  # decoded at a reduced DCT scale
    assert fast.shape == (60, 80, 3)
    full = jpeg.decode()
    assert full.shape == (240, 320, 3)
    coarse = full.reshape(60, 4, 80, 4, 3).mean(axis=(1, 3))
    assert np.abs(fast.astype(float) - coarse).mean() < 12  # the same picture, smaller


def test_image_rejects_video_arguments(db, png_bytes: bytes) -> None:
    db.execute("CREATE TABLE t (img IMAGE, raw BYTEA)")
    db.execute("INSERT INTO t VALUES (%s, %s)", [png_bytes, b"x" * 10_000])
    img, raw = db.execute("SELECT img, raw FROM t").fetchone()
    with pytest.raises(TypeError, match="VIDEO"):
        img.decode(start=3)
    with pytest.raises(TypeError, match="no decoder"):
        raw.decode()
    np.testing.assert_array_equal(img.numpy(), np.frombuffer(png_bytes, np.uint8))


# ----------------------------------------------------------------------------- tensors


def _mapping(arr: np.ndarray) -> object:
    """The object at the bottom of an array's chain of views."""
    base = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def test_tensor_is_a_read_only_view_of_the_pack(db) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(64, 32)).astype(np.float32)
    b = rng.normal(size=(3, 40, 40)).astype(np.float32)
    db.execute("CREATE TABLE t (i INT, x TENSOR(float32))")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s)", [a, b])
    got = dict(db.execute("SELECT i, x FROM t").fetchall())
    np.testing.assert_array_equal(got[1], a)
    np.testing.assert_array_equal(got[2], b)
    for arr in got.values():
        assert not arr.flags.writeable and not arr.flags.owndata
        assert isinstance(_mapping(arr), mmap.mmap)
    assert _mapping(got[1]) is _mapping(got[2])  # one mapping per pack, not per cell
    with pytest.raises(ValueError):
        got[1][0, 0] = 1.0


def test_tensor_unaligned_in_pack_is_copied_aligned(db) -> None:
    a = np.arange(1000, dtype=np.float64)
    buf = io.BytesIO()
    np.save(buf, a)
    npy = buf.getvalue()
    db.execute("CREATE TABLE t (b BYTEA)")
    db.execute("INSERT INTO t VALUES (%s)", [b"z" + npy])  # the .npy one byte into the value
    cell = db.execute("SELECT b FROM t").arrow().column("b")[0].as_py()
    # a reference made by hand to part of a value: no checksum of those bytes to check
    ref = dict(cell, kind="tensor", offset=cell["offset"] + 1, length=len(npy), sums=None)
    data_offset = ref["offset"] + len(npy) - a.nbytes  # where the floats sit in the pack
    assert data_offset % 8 != 0
    got = reeldb.Blob(db.catalog.store, ref).numpy()
    np.testing.assert_array_equal(got, a)
    assert got.flags.aligned and not got.flags.writeable


def test_tensor_blob_from_arrow_decodes(db) -> None:
    small = np.arange(6, dtype=np.int16).reshape(2, 3)  # inline: stored in the row itself
    big = np.ones((4, 300, 2), dtype=np.float16)
    db.execute("CREATE TABLE t (i INT, x TENSOR(float16))")
    db.execute("INSERT INTO t VALUES (1, %s), (2, %s)", [small, big])
    cells = db.execute("SELECT x FROM t ORDER BY i").arrow().column("x").to_pylist()
    blobs = [reeldb.Blob(db.catalog.store, cell) for cell in cells]
    assert blobs[0].kind == "tensor" and cells[0]["data"] is not None
    np.testing.assert_array_equal(blobs[0].decode(), small.astype(np.float16))
    np.testing.assert_array_equal(blobs[1].decode(), big)
    assert blobs[1].decode().shape == (4, 300, 2)
    with pytest.raises(TypeError):
        blobs[1].decode(size=(2, 2))


def test_tensor_pack_missing_is_storage_error(db, tmp_path) -> None:
    db.execute("CREATE TABLE t (x TENSOR(float32))")
    db.execute("INSERT INTO t VALUES (%s)", [np.zeros(5000, np.float32)])
    cell = db.execute("SELECT x FROM t").arrow().column("x")[0].as_py()
    (tmp_path / "db" / "blobs" / f"{cell['pack']}.pack").unlink()
    with pytest.raises(errors.StorageError, match="cannot map"):
        db.execute("SELECT x FROM t").fetchall()


def test_bytea_numpy_is_its_bytes(db) -> None:
    payload = bytes(range(256)) * 40
    db.execute("CREATE TABLE t (b BYTEA)")
    db.execute("INSERT INTO t VALUES (%s)", [payload])
    arr = db.execute("SELECT b FROM t").fetchone()[0].numpy()
    assert arr.dtype == np.uint8 and arr.tobytes() == payload and not arr.flags.writeable


# ------------------------------------------------------------------------ extras absent


def test_missing_extras_name_the_pip_command(monkeypatch, clips) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(errors.FeatureNotSupported, match=r"reeldb\[video\]"):
        decode_video(clips["mp4", 0])
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(errors.FeatureNotSupported, match=r"reeldb\[image\]"):
        decode_image(b"\x89PNG")
