"""Shared picture options of the commands: ``--plot``, ``--animate``, ``--surface``, ``--plot-size``.

One implementation serves ``run``, ``compare``, ``train``, ``schedule`` and ``sweep``:

- ``--plot FILE`` (``.png``, ``.svg``, ``.pdf``): a still picture of the result (what it shows
  depends on the command; see each ``*_figure`` helper below);
- ``--animate FILE`` (``.gif``, ``.mp4``; ``run`` and ``compare`` on a 2-D objective) with
  ``--frames N`` (default 100) and ``--fps F`` (default 20);
- ``--surface`` (``run`` and ``compare``): ``--plot`` draws the 3-D surface instead of the contour map;
- ``--plot-size WxH``: pixel size of the picture(s) (default: the figure kind's own size).

Everything that can be checked without the computation (suffix, folder, ffmpeg, frames, fps, size,
the objective's dimension) is checked by :func:`plot_request` / :meth:`PlotRequest.check_objective`
*before* the run, so a long run is never wasted on a typo. Files are written atomically and all
together: when one of them fails, none is left behind (not even a half-written one). After the
command's normal output, one line per file says where it went (to stderr with ``--json``, so stdout
stays one JSON object).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab.cli import options as o
from gdlab.core import atomic

if TYPE_CHECKING:  # matplotlib is imported only when a picture is asked for (it costs ~1 s of start-up)
    from matplotlib.figure import Figure

#: Defaults of ``--frames`` and ``--fps``.
DEFAULT_FRAMES = 100
DEFAULT_FPS = 20
#: Default pixel size of animations (stills use each figure kind's own default).
ANIMATION_SIZE = (800, 600)
#: Default pixel size of landscape pictures (contour map, curve, surface).
LANDSCAPE_SIZE = (1200, 900)
#: Default pixel size of curve pictures (loss, schedule, sweep).
CURVE_SIZE = (1000, 600)


def add_plot_arguments(p: argparse.ArgumentParser, *, animation: bool = False, surface: bool = False) -> None:
    """Add ``--plot`` and ``--plot-size`` (and ``--animate/--frames/--fps``, ``--surface`` when asked)."""
    g = p.add_argument_group("pictures")
    g.add_argument("--plot", metavar="FILE", help="also draw the result into FILE (.png, .svg or .pdf)")
    g.add_argument("--plot-size", metavar="WxH", help="picture size in pixels, e.g. 1200x900")
    if surface:
        g.add_argument("--surface", action="store_true",
                       help="with --plot: draw the 3-D surface instead of the contour map")
    if animation:
        g.add_argument("--animate", metavar="FILE",
                       help="also write the ball rolling as FILE (.gif, or .mp4 with ffmpeg: "
                            "pip install 'gdlab[video]')")
        g.add_argument("--frames", type=int, help=f"frames of --animate (default {DEFAULT_FRAMES})")
        g.add_argument("--fps", type=int, help=f"frames per second of --animate, 1..60 (default {DEFAULT_FPS})")


@dataclass
class PlotRequest:
    """The pictures one command invocation was asked for, validated before any computation."""

    plot: Path | None = None
    animation: Path | None = None
    surface: bool = False
    size: tuple[int, int] | None = None
    frames: int = DEFAULT_FRAMES
    fps: int = DEFAULT_FPS
    to_stderr: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def wanted(self) -> bool:
        """Whether any picture was asked for."""
        return self.plot is not None or self.animation is not None

    # -- checks that need the objective (still before the run) -------------------------------
    def check_objective(self, objective: Any) -> None:
        """Refuse pictures the objective cannot have: animations and surfaces need 2-D, plots ≤ 2-D."""
        dim = int(getattr(objective, "dim", 0) or 0)
        if self.plot is not None and dim not in (1, 2):
            raise o.usage(f"--plot draws 1-D or 2-D objectives; this one has {dim} dimension(s)")
        if self.surface and dim != 2:
            raise o.usage(f"--surface needs a 2-D objective; this one has {dim} dimension(s) (drop --surface "
                          "for the curve)")
        if self.animation is not None and dim != 2:
            raise o.usage(f"--animate needs a 2-D objective; this one has {dim} dimension(s) (use --plot for "
                          "the curve)")

    def refuse_animation(self, why: str) -> None:
        """Refuse ``--animate`` and ``--surface`` where they do not apply (``why`` completes the message)."""
        if self.animation is not None:
            raise o.usage(f"--animate {why}")
        if self.surface:
            raise o.usage(f"--surface {why}")

    # -- writing -------------------------------------------------------------------------------
    def landscape(self, objective: Any, runs: Sequence[Any], title: str) -> None:
        """``--plot``: contour map (1-D: the curve; ``--surface``: 3-D) with the runs' paths;
        ``--animate``: the balls rolling over the contour map."""
        if not self.wanted:
            return
        from gdlab.plots.output import PlotError, save_figure
        from gdlab.plots.style import finite_prefix

        if runs and all(r.status == "diverged" and finite_prefix(r) <= 1 for r in runs):
            raise PlotError("nothing to draw: every run diverged on its first step (try a smaller learning rate)")
        jobs: list[tuple[Path, Callable[[Path], None], str]] = []
        if self.plot is not None:
            plot = self.plot
            kind = "3-D surface" if self.surface else "contour map" if objective.dim == 2 else "curve"

            def still(tmp: Path) -> None:
                fig = landscape_figure(objective, runs, title=title, size=self.size, surface=self.surface)
                save_figure(fig, tmp)

            jobs.append((plot, still, f"{kind} with {_paths(len(runs))}"))
        if self.animation is not None:
            from gdlab.plots.animate import animate, frame_steps

            anim = self.animation
            longest = max((finite_prefix(r) for r in runs), default=0) - 1
            if longest < 1:  # checked before anything is written
                raise PlotError("nothing to animate: every run stopped (or diverged) at step 0")
            shown = len(frame_steps(longest, self.frames))  # fewer than --frames when the runs are shorter

            def moving(tmp: Path) -> None:
                animate(objective, runs, tmp, frames=self.frames, fps=self.fps, size=self.size or ANIMATION_SIZE)

            jobs.append((anim, moving, f"animation of {_paths(len(runs))}, {shown} frames at {self.fps} fps"))
        self._deliver(jobs)

    def figure(self, build: Callable[[tuple[int, int] | None], Figure], what: str) -> None:
        """``--plot``: ``build(size)`` (``size`` None: the figure's default) saved to the file."""
        if self.plot is None:
            return
        from gdlab.plots.output import save_figure

        self._deliver([(self.plot, lambda tmp: save_figure(build(self.size), tmp), what)])

    def _deliver(self, jobs: Sequence[tuple[Path, Callable[[Path], None], str]]) -> None:
        # Every file goes to a temporary name beside its target; the targets are replaced only
        # when every file was written, so a failure leaves no file (new or partial) behind.
        from gdlab.plots.output import atomic_path

        with contextlib.ExitStack() as stack:
            for target, write, _ in jobs:
                write(stack.enter_context(atomic_path(target)))
        self.notes += [f"wrote {what} to {os.fspath(target)}" for target, _, what in jobs]

    def report(self) -> None:
        """Print one line per written file (stderr with ``--json``, else stdout)."""
        stream = sys.stderr if self.to_stderr else sys.stdout
        for note in self.notes:
            print(note, file=stream)
        self.notes.clear()


def plot_request(args: argparse.Namespace) -> PlotRequest:
    """Read and check the picture options of ``args`` (any command); nothing is computed or written."""
    plot = getattr(args, "plot", None)
    animation = getattr(args, "animate", None)
    surface = bool(getattr(args, "surface", False))
    frames, fps = getattr(args, "frames", None), getattr(args, "fps", None)
    size_text = getattr(args, "plot_size", None)
    if surface and plot is None:
        raise o.usage("--surface needs --plot FILE")
    if animation is None and (frames is not None or fps is not None):
        raise o.usage(f"{'--frames' if frames is not None else '--fps'} needs --animate FILE")
    if size_text is not None and plot is None and animation is None:
        raise o.usage("--plot-size needs --plot FILE" + (" or --animate FILE" if hasattr(args, "animate") else ""))
    req = PlotRequest(surface=surface, to_stderr=bool(getattr(args, "json", False)))
    if not (plot is not None or animation is not None):
        return req
    from gdlab.plots.output import ANIMATION_FORMATS, STILL_FORMATS, PlotError, output_format

    if size_text is not None:
        req.size = parse_size(size_text)
    if plot is not None:
        output_format(plot, STILL_FORMATS)
        req.plot = check_target(plot)
    if animation is not None:
        from gdlab.plots.animate import FFMPEG_MISSING, MAX_FRAMES, ffmpeg_executable

        fmt = output_format(animation, ANIMATION_FORMATS)
        req.animation = check_target(animation)
        req.frames = DEFAULT_FRAMES if frames is None else frames
        req.fps = DEFAULT_FPS if fps is None else fps
        if not 2 <= req.frames <= MAX_FRAMES:
            raise PlotError(f"--frames must be between 2 and {MAX_FRAMES}, got {req.frames}")
        if not 1 <= req.fps <= 60:
            raise PlotError(f"--fps must be between 1 and 60, got {req.fps}")
        if fmt == "mp4" and ffmpeg_executable() is None:
            raise PlotError(f"cannot write {animation!r}: {FFMPEG_MISSING}")
    if req.plot is not None and req.animation is not None and req.plot.resolve() == req.animation.resolve():
        raise PlotError("--plot and --animate name the same file")
    return req


def parse_size(text: str) -> tuple[int, int]:
    """``"1200x900"`` (or ``1200,900``) → ``(1200, 900)``, each side 50..8000 pixels."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×,X]\s*(\d+)\s*", text)
    if not match:
        raise o.usage(f"--plot-size: expected WIDTHxHEIGHT in pixels like 1200x900, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (50 <= width <= 8000 and 50 <= height <= 8000):
        raise o.usage(f"--plot-size: each side must be between 50 and 8000 pixels, got {width}x{height}")
    return width, height


def check_target(path: str) -> Path:
    """Refuse a target that cannot be written: missing folder, a file as folder, something other than
    a regular file in the way (a folder, a symbolic link, a device node, a fifo)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise o.usage(f"cannot write {path!r}: folder {os.fspath(folder)!r} does not exist")
    if not folder.is_dir():
        raise o.usage(f"cannot write {path!r}: {os.fspath(folder)!r} is not a folder")
    try:
        atomic.check_target(target)
    except atomic.WriteError as exc:
        raise o.usage(str(exc)) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise o.usage(f"cannot write {path!r}: no permission to write in {os.fspath(folder)!r}")
    return target


def _paths(n: int) -> str:
    return f"{n} path" + ("" if n == 1 else "s")


# ------------------------------------------------------------------------------------------------
# what each command draws
# ------------------------------------------------------------------------------------------------
def landscape_figure(objective: Any, runs: Sequence[Any], *, title: str, size: tuple[int, int] | None = None,
                     surface: bool = False) -> Figure:
    """``run``/``compare`` on a landscape: contour map with the paths (1-D: curve; ``surface``: 3-D)."""
    from gdlab.plots.paths import contour_figure, surface_figure

    if surface:
        return surface_figure(objective, runs, size=size or LANDSCAPE_SIZE, title=title)
    return contour_figure(objective, runs, size=size or LANDSCAPE_SIZE, title=title)


def optimizer_label(name: str, params: Mapping[str, Any]) -> str:
    """``"sgd (lr=0.01, momentum=0.9)"``: the optimizer with lr and the parameters away from their defaults."""
    from types import SimpleNamespace

    from gdlab.plots.style import run_label

    return run_label(SimpleNamespace(label="", optimizer=name, hyperparams=dict(params)))


def landscape_title(info: Mapping[str, Any], start: Any, steps: int) -> str:
    """Title of ``run``/``compare`` pictures: the objective, the number of steps and the start."""
    return f"{o.objective_title(dict(info))}: {steps} steps from {o.fmt_point(start, 4)}"


def epoch_loss_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
                      size: tuple[int, int] | None = None) -> Figure:
    """``train`` and ``compare --problem``: training (solid) and validation (dashed) loss per epoch.

    ``curves`` maps a run's label to ``(train_loss, val_loss)`` per epoch (entry 0 = before
    training); both curves of a run share its colour. Log scale when every loss is positive.
    """
    from gdlab.plots.curves import series_figure
    from gdlab.plots.style import run_colour

    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    styles: list[tuple[str, str]] = []
    for index, (label, pair) in enumerate(curves.items()):
        for part, values, dash in (("train", pair[0], "-"), ("val", pair[1], "--")):
            y = np.asarray(values, dtype=np.float64).ravel()
            x = np.arange(len(y), dtype=np.float64)
            ok = np.isfinite(y)
            if ok.any():
                series[f"{label}: {part}" if len(curves) > 1 else part] = (x[ok], y[ok])
                styles.append((run_colour(index), dash))
    if not series:
        raise o.usage("nothing to draw: no finite loss was recorded")
    finite = np.concatenate([y for _, y in series.values()])
    fig = series_figure(series, x_label="epoch", y_label="loss", title=title, log=bool(np.all(finite > 0)),
                        size=size or CURVE_SIZE)
    ax = fig.axes[0]
    for line, (colour, dash) in zip(ax.get_lines(), styles, strict=True):
        line.set_color(colour)
        line.set_linestyle(dash)
        if len(line.get_xdata()) < 12:
            line.set_marker("o")
            line.set_markersize(4)
    ax.legend(fontsize="small")
    return fig


def schedule_plot(label: str, lrs: Sequence[float], *, title: str, size: tuple[int, int] | None = None) -> Figure:
    """``schedule``: the learning rate at every step."""
    from gdlab.plots.curves import schedule_figure

    return schedule_figure({label: lrs}, title=title, size=size or CURVE_SIZE)


def lr_sweep_figure(label: str, sweep: Any, objective: Any, start: Any, *, title: str,
                    size: tuple[int, int] | None = None) -> Figure:
    """``sweep lr``: final loss against lr, with GD's critical rate 2/λmax at ``start`` when it is defined."""
    from gdlab.plots.curves import sweep_figure

    loss = np.asarray(sweep.final_loss, dtype=np.float64)
    diverged = np.asarray(sweep.status) == "diverged"
    return sweep_figure({label: (sweep.lrs, loss, diverged)}, critical_lr=critical_lr(objective, start),
                        title=title, size=size or CURVE_SIZE)


def critical_lr(objective: Any, start: Any) -> float | None:
    """GD's critical learning rate 2/λmax of the Hessian at ``start``; None when undefined (λmax ≤ 0)."""
    from gdlab.engine.analysis import analyze_point

    try:
        value = analyze_point(objective, start).critical_lr
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def basin_plot(bmap: Any, *, title: str, size: tuple[int, int] | None = None) -> Figure:
    """``sweep basin``: every start coloured by the minimum it reached (black: diverged)."""
    from gdlab.plots.basin import basin_figure

    minima = [m["location"] for m in bmap.minima]
    return basin_figure(bmap.xs, bmap.ys, bmap.basin, bmap.steps_taken, minima, max_steps=bmap.steps,
                        title=title, size=size or (1000, 800))


__all__ = [
    "PlotRequest",
    "add_plot_arguments",
    "basin_plot",
    "check_target",
    "critical_lr",
    "epoch_loss_figure",
    "landscape_figure",
    "landscape_title",
    "lr_sweep_figure",
    "optimizer_label",
    "parse_size",
    "plot_request",
    "schedule_plot",
]
