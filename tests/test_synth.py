"""Synthetic media helpers: real decodable clips, frame-numbered clips, a sane embedder."""

from __future__ import annotations

import io

import numpy as np
import pytest

from reeldb.media import probe_image, probe_video, synth

av = pytest.importorskip("av")
pytest.importorskip("PIL")


def decode(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_render_clip_is_a_valid_mp4() -> None:
    data = synth.render_clip("A golden retriever running on a beach at sunset", frames=24, fps=24)
    frames = decode(data)
    assert len(frames) == 24
    assert frames[0].shape == (96, 128, 3)
    info = probe_video(data)
    assert info["frames"] == 24 and info["fps"] == pytest.approx(24.0)
    assert (info["width"], info["height"]) == (128, 96)
    assert info["keyframes"][0][0] == 0


def test_render_clip_sizes_and_motion() -> None:
    frames = decode(synth.render_clip("a red fox jumping", frames=48, fps=12, size=(64, 32)))
    assert len(frames) == 48 and frames[0].shape == (32, 64, 3)
    # Things move: first and last frames differ noticeably.
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 2


def test_render_clip_colours_follow_prompt() -> None:
    blue = decode(synth.render_clip("a blue whale in the blue ocean", frames=4))[0].mean(axis=(0, 1))
    gold = decode(synth.render_clip("a golden wheat field at sunset", frames=4))[0].mean(axis=(0, 1))
    assert blue[2] > blue[0]  # more blue than red
    assert gold[0] > gold[2]


def test_render_clip_deterministic_per_seed() -> None:
    a = decode(synth.render_clip("a robot dancing", frames=6, seed=1))
    b = decode(synth.render_clip("a robot dancing", frames=6, seed=1))
    c = decode(synth.render_clip("a robot dancing", frames=6, seed=2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_render_clip_gop() -> None:
    info = probe_video(synth.render_clip("a cat", frames=30, gop=10))
    assert [k[0] for k in info["keyframes"]] == [0, 10, 20]


def test_render_clip_rejects_odd_size() -> None:
    with pytest.raises(ValueError):
        synth.render_clip("x", size=(65, 48))


def test_counting_clip_frames_decode_to_their_numbers() -> None:
    data = synth.render_clip_counting(frames=60, fps=24)
    frames = decode(data)
    assert [synth.read_frame_number(f) for f in frames] == list(range(60))
    assert len(probe_video(data)["keyframes"]) == 5  # gop 12


def test_counting_clip_large_numbers_and_layouts() -> None:
    # Seek to late frames to check high bits survive compression, in several array layouts.
    data = synth.render_clip_counting(frames=300, fps=30, size=(64, 32), gop=50)
    frames = decode(data)
    assert [synth.read_frame_number(f) for f in frames] == list(range(300))
    f = frames[257]
    assert synth.read_frame_number(np.moveaxis(f, -1, 0)) == 257  # CHW
    assert synth.read_frame_number(f.astype(np.float32) / 255.0) == 257  # floats in [0, 1]
    assert synth.read_frame_number(f.mean(axis=-1)) == 257  # grey


@pytest.mark.parametrize("container", ["mp4", "matroska", "mpegts"])
def test_counting_clip_bframes_and_containers(container: str) -> None:
    data = synth.render_clip_counting(frames=30, gop=10, bframes=3, container=container)
    with av.open(io.BytesIO(data)) as c:
        assert container in c.format.name
        packets = [p for p in c.demux(video=0) if p.size]
    pts = [p.pts for p in packets]
    assert pts != sorted(pts), "expected B-frames (decode order != display order)"
    assert [synth.read_frame_number(f) for f in decode(data)] == list(range(30))
    assert sum(p.is_keyframe for p in packets) == 3


def test_counting_clip_without_bframes_is_in_display_order() -> None:
    data = synth.render_clip_counting(frames=20, gop=10)
    with av.open(io.BytesIO(data)) as c:
        pts = [p.pts for p in c.demux(video=0) if p.size]
    assert pts == sorted(pts)


def test_render_image_is_png() -> None:
    data = synth.render_image("a golden retriever", size=(48, 32))
    assert data.startswith(b"\x89PNG")
    assert probe_image(data) == {"format": "png", "width": 48, "height": 32, "mode": "RGB"}


def test_embed_text_deterministic_unit_norm() -> None:
    a = synth.embed_text("A golden retriever running on a beach at sunset")
    b = synth.embed_text("A golden retriever running on a beach at sunset")
    assert a.dtype == np.float32 and a.shape == (4096,)
    assert np.array_equal(a, b)
    assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-5)
    assert synth.embed_text("x", dim=64).shape == (64,)
    assert float(np.linalg.norm(synth.embed_text(""))) == pytest.approx(1.0, abs=1e-5)


def test_embed_text_similar_texts_are_closer() -> None:
    q = synth.embed_text("A golden retriever running on a beach at sunset")
    near = synth.embed_text("a golden retriever playing on the beach at sunset")
    far = synth.embed_text("An astronaut floating through a neon city at night")
    assert float(q @ near) > 0.5
    assert float(q @ near) > float(q @ far) + 0.3


def test_make_prompts() -> None:
    a = synth.make_prompts(50, seed=3)
    assert a == synth.make_prompts(50, seed=3)
    assert a != synth.make_prompts(50, seed=4)
    assert len(a) == 50 and len(set(a)) > 40
    assert all(p[0].isupper() for p in a)
    assert synth.PROMPTS[0] == "A golden retriever running on a beach at sunset"
