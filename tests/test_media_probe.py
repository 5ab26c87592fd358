"""IMAGE/VIDEO probing: real files pass with correct metadata, anything else is a 22P02."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib

import numpy as np
import pytest

from reeldb import errors
from reeldb.media import probe_image, probe_video

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")


def _codec() -> str:
    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:
        return "mpeg4"


def make_mp4(frames: int = 30, fps: int = 24, size: tuple[int, int] = (64, 48),
             gop: int = 10, codec: str | None = None, bframes: bool = False) -> bytes:
    codec = codec or _codec()
    options = {}
    if codec == "libx264":
        options = {"preset": "ultrafast"} if not bframes else {"preset": "medium", "bf": "3"}
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.gop_size = gop
        # Sliding noise when B-frames are wanted: x264 picks them only for real motion.
        texture = np.random.default_rng(0).integers(0, 256, (size[1], size[0] + frames, 3),
                                                    dtype=np.uint8)
        for k in range(frames):
            if bframes:
                img = np.ascontiguousarray(texture[:, k: k + size[0]])
            else:
                img = np.full((size[1], size[0], 3), (k * 7) % 256, dtype=np.uint8)
                img[:, : (k % size[0])] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def make_png(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color=0).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- images


def test_probe_png() -> None:
    assert probe_image(make_png((40, 30))) == {
        "format": "png", "width": 40, "height": 30, "mode": "RGB"
    }


def test_probe_png_modes_and_jpeg() -> None:
    assert probe_image(make_png((8, 9), "L"))["mode"] == "L"
    assert probe_image(make_png((8, 9), "RGBA"))["mode"] == "RGBA"
    buf = io.BytesIO()
    Image.new("RGB", (16, 12)).save(buf, format="JPEG")
    info = probe_image(buf.getvalue())
    assert (info["format"], info["width"], info["height"]) == ("jpeg", 16, 12)


def test_probe_image_accepts_bytearray_and_memoryview() -> None:
    data = make_png()
    assert probe_image(bytearray(data))["width"] == 40
    assert probe_image(memoryview(data))["height"] == 30


@pytest.mark.parametrize("data", [b"", b"garbage" * 20, b"\x89PNG\r\n\x1a\n" + b"\0" * 50])
def test_probe_image_rejects_non_images(data: bytes) -> None:
    with pytest.raises(errors.DataError) as info:
        probe_image(data)
    assert info.value.sqlstate == "22P02"
    assert "IMAGE value is not a decodable image" in str(info.value)


def test_probe_image_rejects_corrupt_png() -> None:
    data = bytearray(make_png((32, 32)))
    data[40] ^= 0xFF  # inside the IHDR/IDAT chunk: CRC no longer matches
    with pytest.raises(errors.DataError) as info:
        probe_image(bytes(data))
    assert info.value.sqlstate == "22P02"


def test_probe_image_rejects_truncated_jpeg() -> None:
    # verify() alone passes this: only decoding the pixels finds the missing data.
    pixels = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    with pytest.raises(errors.DataError, match="truncated"):
        probe_image(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_probe_image_rejects_png_with_corrupt_data_and_good_crc() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    at = data.index(b"IDAT")
    length = int.from_bytes(data[at - 4: at], "big")
    data[at + 4 + 100] ^= 0xFF  # inside the compressed pixels
    data[at + 4 + length: at + 8 + length] = zlib.crc32(data[at: at + 4 + length]).to_bytes(4, "big")
    with pytest.raises(errors.DataError) as info:
        probe_image(bytes(data))
    assert info.value.sqlstate == "22P02"


def test_probe_image_rejects_video() -> None:
    with pytest.raises(errors.DataError):
        probe_image(make_mp4(frames=5))


def test_probe_image_rejects_non_bytes() -> None:
    with pytest.raises(errors.DataError):
        probe_image("not bytes")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- videos


def test_probe_mp4() -> None:
    info = probe_video(make_mp4(frames=30, fps=24, size=(64, 48), gop=10))
    assert "mp4" in info["container"]
    assert info["codec"] in ("h264", "mpeg4")
    assert (info["width"], info["height"]) == (64, 48)
    assert info["fps"] == pytest.approx(24.0)
    assert info["frames"] == 30
    assert info["duration"] == pytest.approx(30 / 24, abs=0.05)
    keyframes = info["keyframes"]
    assert [k[0] for k in keyframes] == [0, 10, 20]
    pts = [k[1] for k in keyframes]
    offsets = [k[2] for k in keyframes]
    assert pts == sorted(pts) and pts[0] >= 0
    assert all(o > 0 for o in offsets) and offsets == sorted(offsets)


def _decoded_keyframes(data: bytes) -> list[int]:
    with av.open(io.BytesIO(data)) as container:
        return [i for i, f in enumerate(container.decode(video=0)) if f.key_frame]


def test_probe_mpeg4_codec() -> None:
    # mpeg4 may add keyframes at scene cuts: compare with what the decoder says.
    data = make_mp4(frames=12, codec="mpeg4", gop=6)
    info = probe_video(data)
    assert info["codec"] == "mpeg4"
    assert info["frames"] == 12
    assert [k[0] for k in info["keyframes"]] == _decoded_keyframes(data)


def test_keyframe_offsets_point_at_packets() -> None:
    """byte_offset is where the keyframe packet's data starts in the file."""
    data = make_mp4(frames=25, gop=8)
    info = probe_video(data)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        packets = {p.pos: bytes(p) for p in container.demux(stream) if p.size and p.is_keyframe}
    for _, _, pos in info["keyframes"]:
        assert data[pos: pos + len(packets[pos])] == packets[pos]


@pytest.mark.skipif(_codec() != "libx264", reason="needs libx264 for B-frames")
def test_probe_bframes_counts_in_display_order() -> None:
    data = make_mp4(frames=40, gop=16, bframes=True)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size]
    assert pts != sorted(pts), "expected B-frames (decode order != display order)"
    info = probe_video(data)
    assert info["frames"] == 40
    assert [k[0] for k in info["keyframes"]] == _decoded_keyframes(data)


@pytest.mark.parametrize("data", [b"", b"garbage" * 50, bytes(range(256)) * 8])
def test_probe_video_rejects_non_videos(data: bytes) -> None:
    with pytest.raises(errors.DataError) as info:
        probe_video(data)
    assert info.value.sqlstate == "22P02"
    assert "VIDEO value is not a video" in str(info.value)


def test_probe_video_rejects_image() -> None:
    with pytest.raises(errors.DataError) as info:
        probe_video(make_png())
    assert info.value.sqlstate == "22P02"


def test_probe_video_rejects_truncated_mp4() -> None:
    data = make_mp4(frames=30)
    with pytest.raises(errors.DataError):
        probe_video(data[: len(data) // 3])


def test_probe_video_rejects_truncated_faststart_mp4(tmp_path) -> None:
    # With the index first, a cut file still demuxes: only the frame count gives it away.
    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream(_codec(), rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        noise = np.random.default_rng(2).integers(0, 256, (48, 48, 64, 3), dtype=np.uint8)
        for img in noise:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data.index(b"moov") < data.index(b"mdat")
    assert probe_video(data)["frames"] == 48
    with pytest.raises(errors.DataError, match="truncated: .* of the 48 frames"):
        probe_video(data[: len(data) * 3 // 4])


def test_probe_video_rejects_undecodable_stream() -> None:
    data = bytearray(make_mp4(frames=20, gop=10))
    key = probe_video(bytes(data))["keyframes"][0][2]
    data[key: key + 400] = b"\x55" * 400  # the first keyframe's pixels: the container is intact
    with pytest.raises(errors.DataError, match="cannot decode its .* stream") as info:
        probe_video(bytes(data))
    assert info.value.sqlstate == "22P02"


def test_probe_video_rejects_audio_only() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16),
                                           format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(errors.DataError) as info:
        probe_video(buf.getvalue())
    assert "no video stream" in str(info.value)


def test_probe_video_without_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(errors.FeatureNotSupported) as info:
        probe_video(b"\0\0\0\x18ftypmp42")
    assert "reeldb[video]" in str(info.value)
    assert info.value.sqlstate == "0A000"


def test_importing_media_does_not_import_av_or_pil() -> None:
    code = (
        "import sys, reeldb, reeldb.media, reeldb.media.probe, reeldb.media.synth, "
        "reeldb.media.decode, reeldb.media.blob; "
        "print('av' in sys.modules, 'PIL' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- in SQL


def test_probed_fields_are_queryable_in_sql(db) -> None:
    clip = make_mp4(frames=30, fps=24, size=(64, 48), gop=10)
    image = make_png((40, 30), "RGBA")
    db.execute("CREATE TABLE t (i INT, clip VIDEO, img IMAGE)")
    db.execute("INSERT INTO t VALUES (1, %s, %s), (2, NULL, NULL)", [clip, image])
    row = db.execute(
        "SELECT video_frames(clip), video_fps(clip), video_width(clip), video_height(clip),"
        " video_duration(clip), video_codec(clip), image_width(img), image_height(img),"
        " image_format(img), blob_length(clip), media_meta(img) FROM t WHERE i = 1"
    ).fetchone()
    assert row[:4] == (30, pytest.approx(24.0), 64, 48)
    assert row[4] == pytest.approx(30 / 24, abs=0.05)
    assert row[5] == {"libx264": "h264", "mpeg4": "mpeg4"}[_codec()]
    assert row[6:10] == (40, 30, "png", len(clip))
    assert row[10] == {"format": "png", "width": 40, "height": 30, "mode": "RGBA"}
    assert db.execute("SELECT video_frames(clip), image_width(img) FROM t WHERE i = 2").fetchone() \
        == (None, None)
    assert db.execute("SELECT i FROM t WHERE video_duration(clip) > 1 AND image_height(img) = 30"
                      ).fetchall() == [(1,)]


def test_bad_media_insert_writes_nothing(db, refused) -> None:
    db.execute("CREATE TABLE t (i INT, clip VIDEO, img IMAGE)")
    clip, image = make_mp4(frames=10), make_png()
    db.execute("INSERT INTO t VALUES (1, %s, %s)", [clip, image])
    err = refused("22P02", "t", "INSERT INTO t VALUES (2, %s, %s), (3, %s, %s)",
                  [clip, image, clip[: len(clip) // 3], image])
    assert "VIDEO value is not a video" in str(err)
    err = refused("22P02", "t", "INSERT INTO t VALUES (4, %s, %s)", [clip, b"not an image"])
    assert "IMAGE value is not a decodable image" in str(err)
