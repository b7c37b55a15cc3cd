"""render: MP4 (video extra) and GIF of greedy episodes, the running return drawn on each frame."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from asyncdqn.errors import ConfigError
from asyncdqn.model import NumpyMLP, build_model
from asyncdqn.report.render import _encode_mp4, play_frames, render_video

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")


def cartpole_q() -> NumpyMLP:
    return NumpyMLP.copy_of(build_model(4, 2, (8,), seed=3))


def test_mp4_and_gif_have_one_frame_per_step_plus_the_end(tmp_path):
    q = cartpole_q()
    mp4, returns = render_video(q, "CartPole-v1", tmp_path / "game.mp4", episodes=2, seed=5, fps=20, max_steps=30)
    gif, returns_gif = render_video(q, "CartPole-v1", tmp_path / "game.gif", episodes=2, seed=5, fps=20, max_steps=30)
    assert returns == returns_gif and len(returns) == 2
    # CartPole: reward 1 per step, so an episode's length is its return; frames = steps + 1 per episode
    expected = int(sum(r + 1 for r in returns))
    assert mp4.read_bytes()[4:8] == b"ftyp"
    reader = imageio.get_reader(str(mp4), format="FFMPEG")
    try:
        frames = [f for f in reader]
        assert reader.get_meta_data()["fps"] == pytest.approx(20.0)
    finally:
        reader.close()
    assert len(frames) == expected
    assert frames[0].shape == (400, 600, 3)  # CartPole's frame size is kept (no resize to 16-multiples)
    with Image.open(gif) as im:
        assert im.n_frames == expected


def test_running_return_is_drawn():
    frames, returns = play_frames(cartpole_q(), "CartPole-v1", 1, 5, 10)
    first, last = (np.asarray(f.convert("RGB")) for f in (frames[0], frames[-1]))
    box = (slice(0, 18), slice(0, 150))
    # a black label box with white text in the top-left corner, whose text changes as the return grows
    assert (first[box] == 0).mean() > 0.5 and (first[box] > 128).any()
    assert not np.array_equal(first[box], last[box])
    assert returns[0] >= 1


def test_mp4_without_the_extra_is_a_config_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("imageio"):
            raise ImportError("No module named 'imageio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match="video"):
        _encode_mp4([Image.new("RGB", (4, 4))], 10)
