"""Greedy episodes recorded as an animated GIF or an MP4 video, the running return drawn on each frame.

GIF needs only Pillow; MP4 needs the optional `video` extra (imageio + imageio-ffmpeg,
which bundles an ffmpeg binary) and is imported only when asked for.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from asyncdqn.envs import env_seeds, make_env
from asyncdqn.errors import ConfigError, EnvError
from asyncdqn.evaluate import QFunction
from asyncdqn.rundir.fileio import atomic_write_bytes

MIN_SIDE = 160  # frames smaller than this (pixels, shorter side) are scaled up by an integer factor


def _headless() -> None:
    """Box2D/classic-control render through pygame/SDL: no display, no audio, no banner."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.gettempdir()


def play_frames(
    q: QFunction, env_id: str, episodes: int, seed: int, max_steps: int,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[list[Image.Image], list[float]]:
    """Frames of `episodes` greedy episodes, each annotated with episode number and return so far.

    The frames are the game's own rendering (Atari: the full-colour screen, not the 84x84
    gray input), one per agent step; returns are raw game scores."""
    _headless()
    try:
        env = make_env(env_id, render_mode="rgb_array", env_kwargs=env_kwargs)
    except EnvError as exc:
        raise EnvError(f"{env_id} cannot render frames: {exc}") from None
    frames: list[Image.Image] = []
    returns: list[float] = []
    try:
        for ep, s in enumerate(env_seeds(seed, 2_000_000, episodes)):
            obs, _ = env.reset(seed=s)
            total = 0.0
            for _ in range(max_steps):
                frames.append(_annotate(env.render(), f"episode {ep + 1}  return {total:.1f}"))
                x = np.asarray(obs)
                action = int(q((x if x.dtype == np.uint8 else x.astype(np.float32))[None])[0].argmax())
                obs, r, term, trunc, _ = env.step(action)
                total += float(r)
                if term or trunc:
                    break
            frames.append(_annotate(env.render(), f"episode {ep + 1}  return {total:.1f}  (end)"))
            returns.append(total)
    finally:
        env.close()
    return frames, returns


def _annotate(frame: object, text: str) -> Image.Image:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise EnvError("the environment did not return an RGB frame (render_mode='rgb_array' unsupported?)")
    if frame.dtype != np.uint8:  # e.g. MinAtar: floats in [0, 1]
        frame = np.clip(np.asarray(frame, dtype=np.float64) * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255)
    img = Image.fromarray(frame.astype(np.uint8))
    if min(img.size) < MIN_SIDE:  # tiny boards (MinAtar's 10x10) scaled up, pixels kept sharp
        factor = -(-MIN_SIDE // min(img.size))
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 8 + 7 * len(text), 18), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return img


def render_gif(
    q: QFunction, env_id: str, out: str | Path, episodes: int = 1, seed: int = 0,
    fps: int = 30, max_steps: int = 1000, env_kwargs: dict[str, Any] | None = None,
) -> tuple[Path, list[float]]:
    """Write an animated GIF of greedy episodes atomically; returns (path, episode returns)."""
    frames, returns = play_frames(q, env_id, episodes, seed, max_steps, env_kwargs)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=max(1, round(1000 / fps)), loop=0)
    return atomic_write_bytes(out, buf.getvalue()), returns


VIDEO_SUFFIXES = (".mp4",)


def _encode_mp4(frames: list[Image.Image], fps: int) -> bytes:
    """H.264 MP4 bytes of the frames (encoded through a temporary file: ffmpeg needs a path)."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary)
    except ImportError as exc:
        raise ConfigError(f"out: writing .mp4 needs the optional 'video' extra "
                          f"(pip install 'asyncdqn[video]'), or use a .gif: {exc}") from None
    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        # macro_block_size 2: keep the frame size (H.264 only needs even sizes; odd ones are padded)
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                macro_block_size=2, ffmpeg_log_level="error") as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame.convert("RGB")))  # type: ignore[attr-defined]
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)


def render_video(
    q: QFunction, env_id: str, out: str | Path, episodes: int = 1, seed: int = 0,
    fps: int = 30, max_steps: int = 1000, env_kwargs: dict[str, Any] | None = None,
) -> tuple[Path, list[float]]:
    """An MP4 if `out` ends in .mp4, else an animated GIF; written atomically. Returns (path, returns)."""
    if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        return render_gif(q, env_id, out, episodes=episodes, seed=seed, fps=fps, max_steps=max_steps,
                          env_kwargs=env_kwargs)
    frames, returns = play_frames(q, env_id, episodes, seed, max_steps, env_kwargs)
    return atomic_write_bytes(out, _encode_mp4(frames, fps)), returns
