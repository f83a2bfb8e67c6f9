"""Pictures are checked by opening the produced files: format, size, content, colours, frames."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from PIL import Image

from gdlab.core.objective import Quadratic, Rosenbrock
from gdlab.core.optimizers import make_optimizer
from gdlab.engine.result import RunResult
from gdlab.plots import (
    DIVERGED,
    NOT_CONVERGED,
    PlotError,
    animate,
    basin_figure,
    contour_figure,
    distance_figure,
    loss_figure,
    save_figure,
    schedule_figure,
    surface_figure,
    sweep_figure,
)
from gdlab.plots.levels import contour_levels
from gdlab.plots.style import run_colour


class Bowl(Quadratic):
    """The seeds' elliptic bowl x² + 10y² as a landscape-like object."""

    name, dim, domain = "elliptic", 2, ((-6.0, 6.0), (-6.0, 6.0))
    global_minima: ClassVar = [SimpleNamespace(location=(0.0, 0.0), value=0.0, kind="global")]

    def __init__(self) -> None:
        super().__init__(np.diag([2.0, 20.0]))


class Valley(Rosenbrock):
    name, dim, domain = "rosenbrock", 2, ((-2.0, 2.0), (-1.0, 3.0))
    global_minima: ClassVar = [SimpleNamespace(location=(1.0, 1.0), value=0.0, kind="global")]


def make_run(landscape, name, steps=60, start=(5.0, 5.0), **hyper) -> RunResult:
    opt = make_optimizer(name, **hyper)
    p = np.array(start, dtype=np.float64)
    state = opt.init(p)
    path = [p]
    for _ in range(steps):
        p, state, _ = opt.step(landscape, p, state)
        path.append(p)
    path = np.array(path)
    return RunResult(name, opt.get_params(), path, landscape.value(path),
                     np.linalg.norm(landscape.grad(path), axis=-1), np.full(steps, hyper.get("lr", 0.0)),
                     "max_steps", steps, "reached the step limit")


@pytest.fixture(scope="module")
def bowl_runs():
    bowl = Bowl()
    return bowl, [make_run(bowl, "sgd", lr=0.01), make_run(bowl, "adam", lr=0.3)]


def pixel_of(fig, ax, x, y):
    """Pixel (column, row) of data point (x, y) in the rendered figure."""
    px, py = ax.transData.transform((x, y))
    height = fig.get_size_inches()[1] * fig.dpi
    return round(px), round(height - py)


def colour_distance(rgb, colour) -> float:
    return float(np.max(np.abs(np.asarray(rgb[:3]) / 255.0 - np.asarray(to_rgb(colour)))))


def test_contour_png_has_requested_size_and_run_colours_along_paths(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    fig = contour_figure(bowl, runs, size=(900, 700))
    out = save_figure(fig, tmp_path / "bowl.png")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (900, 700)
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10  # not blank
    ax = fig.axes[0]
    for index, run in enumerate(runs):
        # Sample midpoints of segments long enough to be several pixels, away from markers.
        hits, checked = 0, 0
        for a, b in zip(run.trajectory[2:-2], run.trajectory[3:-1], strict=True):
            mid = (a + b) / 2
            col, row = pixel_of(fig, ax, *mid)
            if np.hypot(*(np.subtract(pixel_of(fig, ax, *a), pixel_of(fig, ax, *b)))) < 6:
                continue
            checked += 1
            window = pixels[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
            hits += min(colour_distance(p, run_colour(index)) for p in window) < 0.2
        assert checked >= 3
        assert hits / checked > 0.8, f"run {index}: {hits}/{checked} sampled path pixels carry its colour"


def test_minimum_marker_is_drawn_in_gold(tmp_path, bowl_runs):
    bowl, _ = bowl_runs
    fig = contour_figure(bowl, [], size=(600, 600))
    out = save_figure(fig, tmp_path / "m.png")
    pixels = np.asarray(Image.open(out).convert("RGB"))
    col, row = pixel_of(fig, fig.axes[0], 0.0, 0.0)
    window = pixels[row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3)
    assert min(colour_distance(p, "gold") for p in window) < 0.15


@pytest.mark.parametrize("suffix", ["svg", "pdf"])
def test_vector_formats(tmp_path, bowl_runs, suffix):
    bowl, runs = bowl_runs
    out = save_figure(contour_figure(bowl, runs, size=(600, 450)), tmp_path / f"f.{suffix}")
    head = out.read_bytes()[:200]
    if suffix == "svg":
        assert b"<svg" in out.read_bytes()[:2000]
        assert b'width="432pt"' in out.read_bytes()[:2000]  # 600 px at 100 dpi = 6 in = 432 pt
    else:
        assert head.startswith(b"%PDF")


def test_log_levels_for_steep_valleys_and_linear_for_bowls():
    x, y = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))
    levels, is_log = contour_levels(100 * (y - x**2) ** 2 + (1 - x) ** 2, 30)
    assert is_log
    assert np.sum(levels < 1.0) >= 5  # the valley floor (f < 1) gets contours
    x, y = np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-5, 5, 200))
    assert not contour_levels(x**2 + y**2, 30)[1]


def test_surface_figure_is_3d_png(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    fig = surface_figure(bowl, runs, size=(800, 600))
    assert fig.axes[0].name == "3d"
    out = save_figure(fig, tmp_path / "s.png")
    with Image.open(out) as im:
        assert im.size == (800, 600)
        assert np.asarray(im.convert("L")).std() > 10


def test_loss_and_distance_curves_are_log_scaled(tmp_path, bowl_runs):
    _, runs = bowl_runs
    fig = loss_figure(runs, size=(700, 400))
    assert fig.axes[0].get_yscale() == "log"
    lines = fig.axes[0].get_lines()
    assert [to_rgb(line.get_color()) for line in lines[:2]] == [to_rgb(run_colour(0)), to_rgb(run_colour(1))]
    np.testing.assert_allclose(lines[0].get_ydata(), runs[0].loss)
    fig = distance_figure(runs, [(0.0, 0.0)], size=(700, 400))
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), np.linalg.norm(runs[1].trajectory, axis=1))
    with Image.open(save_figure(fig, tmp_path / "d.png")) as im:
        assert im.size == (700, 400)


def test_schedule_and_sweep_figures(tmp_path):
    fig = schedule_figure({"cosine": np.cos(np.linspace(0, np.pi, 50)) + 1.0, "const": np.ones(50)})
    assert len(fig.axes[0].get_lines()) == 2
    lrs = np.geomspace(1e-3, 1.0, 8)
    loss = np.geomspace(1.0, 1e-6, 8)
    diverged = lrs > 0.2
    fig = sweep_figure({"gd": (lrs, loss, diverged)}, critical_lr=0.1)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    vertical = [line for line in ax.get_lines() if np.ptp(line.get_xdata()) == 0 and len(line.get_xdata()) == 2]
    assert vertical and vertical[0].get_xdata()[0] == pytest.approx(0.1)
    crosses = [line for line in ax.get_lines() if line.get_marker() == "X"]
    np.testing.assert_allclose(crosses[0].get_xdata(), lrs[diverged])
    save_figure(fig, tmp_path / "sweep.png")


def test_basin_figure_colours_each_start_by_its_minimum(tmp_path):
    xs, ys = np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)
    outcome = np.array([[0, 0, 1, 1], [0, DIVERGED, 1, 1], [NOT_CONVERGED, 0, 1, 1]])
    steps = np.full(outcome.shape, 10)
    fig = basin_figure(xs, ys, outcome, steps, [(-0.5, 0.0), (0.5, 0.0)], max_steps=100, size=(600, 500))
    FigureCanvasAgg(fig).draw()
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(image[0, 0], np.asarray(to_rgb(run_colour(0))) * 0.94)
    np.testing.assert_allclose(image[1, 1], [0, 0, 0])
    np.testing.assert_allclose(image[2, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="outcome has shape"):
        basin_figure(xs, ys, outcome.T, steps.T, [], max_steps=10)


def test_one_dimensional_landscape_is_a_curve(tmp_path):
    class DoubleWell:
        name, dim, domain = "double_well", 1, ((-2.5, 2.5),)
        global_minima: ClassVar = [
            SimpleNamespace(location=(s * np.sqrt(1.5),), value=-0.25, kind="global") for s in (-1, 1)
        ]

        def value(self, x):
            return x[..., 0] ** 4 - 3 * x[..., 0] ** 2 + 2

    run = RunResult("sgd", {"lr": 0.01}, np.linspace(2, 1.3, 20)[:, None], np.zeros(20), np.zeros(20), np.zeros(19),
                    "converged", 19, "gradient norm below tol")
    fig = contour_figure(DoubleWell(), [run], size=(600, 400))
    assert fig.axes[0].get_xlabel() == "x" and fig.axes[0].get_ylabel() == "f(x)"
    save_figure(fig, tmp_path / "w.png")


def test_gif_has_one_frame_per_step_and_the_balls_move(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    out = animate(bowl, runs, tmp_path / "roll.gif", frames=30, fps=10, size=(500, 400))
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.size == (500, 400)
        assert im.n_frames == 30
        assert im.info["duration"] == 100
        im.seek(0)
        first = np.asarray(im.convert("RGB")).astype(int)
        im.seek(29)
        last = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(first - last).sum() > 0


def test_long_runs_are_subsampled(tmp_path):
    valley = Valley()
    run = make_run(valley, "adam", steps=400, start=(-1.5, 2.0), lr=0.05)
    out = animate(valley, [run], tmp_path / "long.gif", frames=40, size=(400, 300))
    with Image.open(out) as im:
        assert im.n_frames == 40


def video_facts(path: Path) -> tuple[str, tuple[int, int], float, int]:
    """(codec, size, fps, frames) of a video, decoded by the ffmpeg of the video extra."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the video extra: pip install 'gdlab[video]'")
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    reader.close()
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return meta["codec"], meta["size"], meta["fps"], frames


def test_mp4_is_a_real_video(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    out = animate(bowl, runs, tmp_path / "roll.mp4", frames=20, fps=10, size=(400, 300))
    assert out.read_bytes()[4:8] == b"ftyp"
    assert video_facts(out) == ("h264", (400, 300), 10.0, 20)


def test_mp4_uses_the_packaged_ffmpeg_without_a_system_one(tmp_path, bowl_runs, monkeypatch):
    """No ffmpeg on PATH: the binary of the imageio-ffmpeg package (the video extra) writes the MP4."""
    pytest.importorskip("imageio_ffmpeg", reason="the video extra: pip install 'gdlab[video]'")
    bowl, runs = bowl_runs
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = animate(bowl, runs, tmp_path / "roll.mp4", frames=6, fps=5, size=(200, 150))
    assert video_facts(out) == ("h264", (200, 150), 5.0, 6)


def test_mp4_without_any_ffmpeg_says_what_to_install(tmp_path, bowl_runs, monkeypatch):
    bowl, runs = bowl_runs
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # the video extra is not installed
    with pytest.raises(PlotError, match=r"needs ffmpeg.*pip install 'gdlab\[video\]'"):
        animate(bowl, runs, tmp_path / "x.mp4", frames=5)
    assert not (tmp_path / "x.mp4").exists()


# -- bad input: a clear error and no file left behind ----------------------------------------
def test_unknown_suffix(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    with pytest.raises(PlotError, match=r"'\.bmp'; use one of \.png, \.svg, \.pdf"):
        save_figure(contour_figure(bowl, runs), tmp_path / "x.bmp")
    with pytest.raises(PlotError, match=r"use one of \.gif, \.mp4"):
        animate(bowl, runs, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_path(tmp_path, bowl_runs):
    bowl, runs = bowl_runs
    with pytest.raises(PlotError, match="does not exist"):
        save_figure(contour_figure(bowl, runs), tmp_path / "missing" / "x.png")
    occupied = tmp_path / "taken.png"  # a folder where the file should go: unwritable even for root
    occupied.mkdir()
    with pytest.raises(PlotError, match="cannot write"):
        save_figure(contour_figure(bowl, runs), occupied)
    assert list(tmp_path.iterdir()) == [occupied] and list(occupied.iterdir()) == []
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not _can_write(locked):
            with pytest.raises(PlotError, match="cannot write"):
                save_figure(contour_figure(bowl, runs), locked / "x.png")
            assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_targets_that_are_not_regular_files_are_refused(tmp_path, bowl_runs):
    """A symbolic link, a fifo or a device node at the target is left as it is, never replaced."""
    bowl, runs = bowl_runs
    fig = contour_figure(bowl, runs, size=(200, 150))
    real = tmp_path / "real.png"
    real.write_bytes(b"keep me")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    cases = [(link, "a symbolic link"), (fifo, "a fifo"), (folder, "a folder")]
    device = tmp_path / "null.png"
    with contextlib.suppress(PermissionError):  # a device node like /dev/null (making one needs root)
        os.mknod(device, stat.S_IFCHR | 0o666, os.stat(os.devnull).st_rdev)
        cases.append((device, "a character device"))
    for target, kind in cases:
        with pytest.raises(PlotError, match=f"cannot write '{target}': it is {kind}, not a regular file"):
            save_figure(fig, target)
    assert link.is_symlink() and real.read_bytes() == b"keep me" and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert not device.exists() or stat.S_ISCHR(device.lstat().st_mode)
    left = sorted(p.name for p in tmp_path.iterdir() if p != device)
    assert left == ["folder.png", "link.png", "pipe.png", "real.png"]


def test_write_errors_name_the_target_not_the_temporary_file(tmp_path, bowl_runs, monkeypatch):
    bowl, runs = bowl_runs
    fig = contour_figure(bowl, runs, size=(200, 150))

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fig, "savefig", full_disk)
    target = tmp_path / "x.png"
    with pytest.raises(PlotError) as err:
        save_figure(fig, target)
    assert str(err.value) == f"cannot write '{target}': No space left on device"
    assert list(tmp_path.iterdir()) == []


def _can_write(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


def test_nothing_to_animate(tmp_path):
    bowl = Bowl()
    dead = RunResult("sgd", {"lr": 10.0}, np.array([[5.0, 5.0]]), np.array([275.0]), np.array([100.0]),
                     np.zeros(0), "diverged", 0, "loss not finite")
    with pytest.raises(PlotError, match="nothing to animate"):
        animate(bowl, [dead], tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_partial_file(tmp_path, bowl_runs, monkeypatch):
    bowl, runs = bowl_runs
    fig = contour_figure(bowl, runs)

    def explode(*args, **kwargs):
        Path(args[0]).write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fig, "savefig", explode)
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_seed_figures_of_the_gallery(tmp_path):
    from gdlab.plots import gallery

    fig = gallery.seed_learning_rate_triptych()
    assert [ax.get_title() for ax in fig.axes] == [
        "too small: lr=0.005", "about right: lr=0.05", "too large: lr=0.101",
    ]
    # The too-large run oscillates away (|y| grows), the about-right one ends at the minimum.
    right = fig.axes[1].get_lines()[0].get_xydata()
    large = fig.axes[2].get_lines()[0].get_xydata()
    assert np.linalg.norm(right[-1]) < 1e-2
    assert abs(large[-1, 1]) > abs(large[1, 1])
    fig = gallery.seed_warmup_cosine()
    warm = fig.axes[0].get_lines()[0].get_ydata()
    assert warm[0] == 0.0 and warm[100] == pytest.approx(1e-3) and warm[50] == pytest.approx(5e-4)
    page = gallery._markdown(tmp_path / "gallery", tmp_path / "gallery.md", animation=True)
    for name in gallery.FIGURES:
        assert f"(gallery/{name})" in page
    assert "(gallery/rolling.gif)" in page
