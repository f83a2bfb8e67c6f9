"""The ball rolling: GIF (Pillow) or MP4 (ffmpeg) of optimizers moving over the contour map.

The contour map is drawn once; each frame only moves the balls and their fading trails, so a
100-frame animation renders in seconds. Long runs are subsampled to ``frames`` frames.

MP4 needs an ffmpeg program: the system's (on ``PATH``), else the one the ``imageio-ffmpeg``
package ships (``pip install 'gdlab[video]'``), see :func:`ffmpeg_executable`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from PIL import Image

from gdlab.plots.output import ANIMATION_FORMATS, PlotError, output_format, write_atomically
from gdlab.plots.paths import contour_figure
from gdlab.plots.style import finite_prefix, run_colour, run_label

MAX_FRAMES = 2000

#: What to do when no ffmpeg is found (completes "cannot write X: ").
FFMPEG_MISSING = (".mp4 needs ffmpeg, which was not found: install gdlab's video extra "
                  "(pip install 'gdlab[video]') or your system's ffmpeg package, or write .gif instead")


def ffmpeg_executable() -> str | None:
    """The ffmpeg that writes MP4: the system's (on ``PATH``), else the binary of the ``imageio-ffmpeg``
    package (the ``video`` extra), else ``None``."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is there but its binary is not (an unsupported platform)
        return None


def frame_steps(total_steps: int, frames: int) -> np.ndarray:
    """The step shown in each frame: every step if there are few, else evenly subsampled."""
    if frames < 2 or frames > MAX_FRAMES:
        raise PlotError(f"frames must be between 2 and {MAX_FRAMES}, got {frames}")
    if total_steps + 1 <= frames:
        return np.arange(total_steps + 1)
    return np.unique(np.round(np.linspace(0, total_steps, frames)).astype(int))


def render_frames(
    landscape: Any,
    runs: Sequence[Any],
    *,
    frames: int = 100,
    trail: int = 20,
    size: tuple[int, int] = (800, 600),
    dpi: int = 100,
) -> list[np.ndarray]:
    """RGB frames (uint8 arrays of ``size``) of the balls rolling along the runs' paths."""
    if landscape.dim != 2:
        raise PlotError(f"animations need a 2-D landscape; {landscape.name!r} has {landscape.dim} dimension(s)")
    paths = [np.asarray(run.trajectory)[: finite_prefix(run)] for run in runs]
    if not any(len(p) > 1 for p in paths):
        raise PlotError("nothing to animate: every run stopped (or diverged) at step 0")
    longest = max(len(p) for p in paths) - 1
    shown_steps = frame_steps(longest, frames)

    fig = contour_figure(landscape, [], size=size, dpi=dpi, grid=200, title=landscape.name)
    ax = fig.axes[0]
    canvas = FigureCanvasAgg(fig)
    balls, trails = [], []
    for i, run in enumerate(runs):
        colour = run_colour(i)
        trail_lines = LineCollection([], linewidths=2.5, zorder=6)
        ax.add_collection(trail_lines)
        trails.append(trail_lines)
        (ball,) = ax.plot([], [], "o", color=colour, ms=11, mec="black", zorder=7, label=run_label(run))
        balls.append(ball)
    ax.legend(loc="upper right", fontsize="small", framealpha=0.85)
    counter = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=12,
                      bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})

    # Draw the static map once, then per frame restore it and draw only the moving artists.
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    moving = [*trails, *balls, counter]
    images = []
    for step in shown_steps:
        for i, path in enumerate(paths):
            if len(path) == 0:
                continue
            k = min(step, len(path) - 1)
            balls[i].set_data([path[k, 0]], [path[k, 1]])
            start = max(0, k - trail)
            segments = np.stack([path[start:k], path[start + 1 : k + 1]], axis=1) if k > start else np.empty((0, 2, 2))
            rgba = np.tile(to_rgba(run_colour(i)), (len(segments), 1))
            rgba[:, 3] = np.linspace(0.1, 1.0, len(segments))
            trails[i].set_segments(segments)
            trails[i].set_color(rgba)
        counter.set_text(f"step {step}")
        canvas.restore_region(background)
        for artist in moving:
            ax.draw_artist(artist)
        images.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return images


def animate(
    landscape: Any,
    runs: Sequence[Any],
    path: str | os.PathLike[str],
    *,
    frames: int = 100,
    fps: int = 20,
    trail: int = 20,
    size: tuple[int, int] = (800, 600),
    dpi: int = 100,
) -> Path:
    """Write a GIF or MP4 (from the suffix) of the runs rolling over the landscape."""
    fmt = output_format(path, ANIMATION_FORMATS)
    if not 1 <= fps <= 60:
        raise PlotError(f"fps must be between 1 and 60, got {fps}")
    ffmpeg = ffmpeg_executable() if fmt == "mp4" else None
    if fmt == "mp4" and ffmpeg is None:
        raise PlotError(f"cannot write {os.fspath(path)!r}: {FFMPEG_MISSING}")
    images = render_frames(landscape, runs, frames=frames, trail=trail, size=size, dpi=dpi)
    if fmt == "gif":
        return write_atomically(path, lambda tmp: _write_gif(images, tmp, fps))
    return write_atomically(path, lambda tmp: _write_mp4(images, tmp, fps, ffmpeg))


def _write_gif(images: list[np.ndarray], path: Path, fps: int) -> None:
    # One palette for every frame (taken from the last, which shows every ball and trail) keeps
    # colours stable and lets the GIF store only what changed between frames.
    palette = Image.fromarray(images[-1]).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    first, *rest = (Image.fromarray(im).quantize(palette=palette, dither=Image.Dither.NONE) for im in images)
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0,
               optimize=False)


def _write_mp4(images: list[np.ndarray], path: Path, fps: int, ffmpeg: str) -> None:
    height, width = images[0].shape[:2]
    even_w, even_h = width - width % 2, height - height % 2  # yuv420p needs even sides
    command = [
        ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-vf", f"crop={even_w}:{even_h}:0:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", str(path),
    ]
    data = b"".join(np.ascontiguousarray(im).tobytes() for im in images)
    result = subprocess.run(command, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise PlotError(f"ffmpeg failed: {result.stderr.decode(errors='replace').strip()[:300]}")
