"""Pictures from the command line: ``--plot``, ``--animate``, ``--surface``, ``--plot-size``, ``gdlab gallery``.

Every command runs in-process through ``main(argv)``; every produced file is opened and checked: the
format its suffix claims (magic bytes), the size asked for, not blank, and showing what it should
(the run's colour along the trajectory the same command printed with ``--json``, one GIF frame per
``--frames``, ...). Bad input must give exit code 2, one line on stderr and no file at the target.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from PIL import Image

from gdlab.cli import plotting
from gdlab.cli.main import main
from gdlab.engine.result import RunResult
from gdlab.landscapes import make_landscape, parse_expression
from gdlab.plots.style import run_colour

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ROSENBROCK_RUN = ["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "lr=0.05", "--steps", "300"]
BOWL_COMPARE = ["compare", "--landscape", "elliptic", "--optimizer", "sgd:lr=0.01", "--optimizer",
                "adam:lr=0.3", "--start", "5,5", "--steps", "60"]


# -- helpers -------------------------------------------------------------------------------------
def invoke(capsys, argv: list[str]) -> tuple[int, str, str]:
    """Run ``gdlab ARGV`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys, argv: list[str]) -> tuple[str, str]:
    code, out, err = invoke(capsys, argv)
    assert code == 0, err
    return out, err


def fails(capsys, argv: list[str], *targets: Path, match: str = "") -> str:
    """A bad command: exit 2, one line on stderr (containing ``match``), no file at any target."""
    code, _, err = invoke(capsys, argv)
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert match in err, err
    for target in targets:
        assert not target.exists() or (target.is_dir() and not any(target.iterdir())), target
    return err


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def near_colour(pixels: np.ndarray, colour: str, tol: float = 0.12) -> np.ndarray:
    """Mask of the pixels within ``tol`` (per channel, 0..1) of ``colour``."""
    return np.max(np.abs(pixels[..., :3] / 255.0 - np.asarray(to_rgb(colour))), axis=-1) < tol


def assert_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A real PNG of ``size`` pixels that is not blank; returns its RGB pixels."""
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == size
    pixels = rgb(path)
    assert pixels.std() > 10, "blank picture"
    return pixels


def runs_from_json(data: dict) -> list[RunResult]:
    """The RunResults printed by ``run --json`` (one object) or ``compare --json`` (``runs``)."""
    items = data.get("runs", [data])
    out = []
    for item in items:
        label = "" if item["label"] == item["optimizer"] else item["label"]
        out.append(RunResult(item["optimizer"], item["hyperparams"], np.array(item["trajectory"], dtype=float),
                             np.array(item["loss"], dtype=float), np.array(item["grad_norm"], dtype=float),
                             np.array(item["lr"], dtype=float), item["status"], item["stopped_at"], item["reason"],
                             label=label))
    return out


def path_colour_hits(pixels: np.ndarray, objective, data: dict, size: tuple[int, int]) -> list[float]:
    """For each run: the share of sampled segment midpoints whose pixel carries the run's colour.

    The data → pixel transform is the one of the same figure (same builder, title and size) drawn
    again here, as tests/test_plots.py does.
    """
    runs = runs_from_json(data)
    fig = plotting.landscape_figure(objective, runs, size=size,
                                    title=plotting.landscape_title(data["objective"], data["start"], data["steps"]))
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    height = size[1]

    def pixel(point) -> tuple[int, int]:
        px, py = ax.transData.transform(point)
        return round(px), round(height - py)

    shares = []
    for index, run in enumerate(runs):
        hits = checked = 0
        for a, b in zip(run.trajectory[1:-2], run.trajectory[2:-1], strict=True):
            pa, pb = pixel(a), pixel(b)
            if np.hypot(pa[0] - pb[0], pa[1] - pb[1]) < 6:
                continue
            col, row = pixel((a + b) / 2)
            if not (2 <= col < size[0] - 2 and 2 <= row < height - 2):
                continue
            checked += 1
            window = pixels[row - 1: row + 2, col - 1: col + 2]
            hits += bool(near_colour(window, run_colour(index), 0.2).any())
        assert checked >= 3, f"run {index}: too few long segments to check"
        shares.append(hits / checked)
    return shares


# -- run / compare on landscapes -----------------------------------------------------------------
def test_run_plot_png_shows_the_trajectory_printed_by_json(capsys, tmp_path):
    target = tmp_path / "run.png"
    out, err = ok(capsys, ROSENBROCK_RUN + ["--plot", str(target), "--plot-size", "900x700", "--json"])
    assert out.count("\n") == 1, "stdout stays one JSON object"
    data = json.loads(out)
    assert err == f"wrote contour map with 1 path to {target}\n"
    pixels = assert_png(target, (900, 700))
    (share,) = path_colour_hits(pixels, make_landscape("rosenbrock"), data, (900, 700))
    assert share > 0.8
    # the same command without --plot prints the same JSON: the picture is only an extra file
    out2, err2 = ok(capsys, ROSENBROCK_RUN + ["--json"])
    assert json.loads(out2) == data and err2 == ""


def test_run_plot_default_size_and_message_after_the_table(capsys, tmp_path):
    target = tmp_path / "default.png"
    out, err = ok(capsys, ["run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.05",
                           "--plot", str(target)])
    assert err == ""
    assert out.splitlines()[-1] == f"wrote contour map with 1 path to {target}"
    assert out.splitlines()[0] == "landscape elliptic"
    pixels = assert_png(target, (1200, 900))
    assert near_colour(pixels, run_colour(0)).sum() > 300


def test_compare_plot_draws_every_path_in_its_colour(capsys, tmp_path):
    target = tmp_path / "cmp.png"
    out, err = ok(capsys, BOWL_COMPARE + ["--plot", str(target), "--plot-size", "800x600", "--json"])
    data = json.loads(out)
    assert "2 paths" in err
    pixels = assert_png(target, (800, 600))
    shares = path_colour_hits(pixels, make_landscape("elliptic"), data, (800, 600))
    assert all(s > 0.8 for s in shares), shares


@pytest.mark.parametrize("suffix", ["svg", "pdf"])
def test_vector_formats(capsys, tmp_path, suffix):
    target = tmp_path / f"cmp.{suffix}"
    ok(capsys, BOWL_COMPARE + ["--plot", str(target), "--plot-size", "600x450"])
    data = target.read_bytes()
    if suffix == "svg":
        head = data[:3000]
        assert b"<svg" in head and b'width="432pt"' in head and b'height="324pt"' in head  # 600x450 px at 100 dpi
        assert b"#d62728" in data and b"#1f77b4" in data  # both runs' colours are drawn
    else:
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
        assert b"/MediaBox [ 0 0 432 324 ]" in data


def test_surface_is_a_3d_picture_with_the_path(capsys, tmp_path):
    flat, surf = tmp_path / "flat.png", tmp_path / "surf.png"
    argv = ["run", "--landscape", "himmelblau", "--optimizer", "sgd", "--set", "lr=0.01", "--steps", "80"]
    ok(capsys, argv + ["--plot", str(flat), "--plot-size", "600x450"])
    out, _ = ok(capsys, argv + ["--plot", str(surf), "--plot-size", "600x450", "--surface"])
    assert "wrote 3-D surface with 1 path" in out
    flat_px, surf_px = assert_png(flat, (600, 450)), assert_png(surf, (600, 450))
    assert near_colour(surf_px, run_colour(0)).sum() > 50
    # the surface is coloured (viridis); the contour map is grey apart from the path and the stars
    def coloured(pixels: np.ndarray) -> int:
        saturated = pixels.max(axis=-1).astype(int) - pixels.min(axis=-1) > 40
        return int((saturated & ~near_colour(pixels, run_colour(0), 0.3) & ~near_colour(pixels, "gold", 0.3)).sum())

    assert coloured(surf_px) > 20_000 and coloured(flat_px) < 2_000, (coloured(surf_px), coloured(flat_px))


def test_one_dimensional_objective_is_drawn_as_a_curve(capsys, tmp_path):
    target = tmp_path / "curve.png"
    out, _ = ok(capsys, ["run", "--expr", "x^4 - 3*x^2 + 2", "--optimizer", "sgd", "--set", "lr=0.01",
                         "--start", "2", "--plot", str(target), "--plot-size", "600x400"])
    assert "wrote curve with 1 path" in out
    pixels = assert_png(target, (600, 400))
    assert near_colour(pixels, run_colour(0)).sum() > 50
    objective = parse_expression("x^4 - 3*x^2 + 2")
    fig = plotting.landscape_figure(objective, [], title="t", size=(600, 400))
    assert fig.axes[0].get_ylabel() == "f(x)"


def test_gif_has_the_frames_size_and_speed_asked_for(capsys, tmp_path):
    target = tmp_path / "roll.gif"
    out, _ = ok(capsys, BOWL_COMPARE + ["--animate", str(target), "--frames", "25", "--fps", "10",
                                        "--plot-size", "400x300"])
    assert out.splitlines()[-1] == f"wrote animation of 2 paths, 25 frames at 10 fps to {target}"
    assert target.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    with Image.open(target) as im:
        assert im.format == "GIF" and im.size == (400, 300)
        assert im.n_frames == 25
        assert im.info["duration"] == 100
        im.seek(0)
        first = np.asarray(im.convert("RGB"))
        im.seek(24)
        last = np.asarray(im.convert("RGB"))
    assert first.std() > 10 and np.abs(first.astype(int) - last).sum() > 0  # not blank, and the balls moved
    for index in range(2):
        assert near_colour(last, run_colour(index), 0.15).sum() > 20


def test_plot_and_animation_together_and_default_frames(capsys, tmp_path):
    still, moving = tmp_path / "a.png", tmp_path / "a.gif"
    out, _ = ok(capsys, ["run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.01",
                         "--steps", "150", "--plot", str(still), "--animate", str(moving), "--plot-size", "300x240"])
    assert out.splitlines()[-2:] == [f"wrote contour map with 1 path to {still}",
                                     f"wrote animation of 1 path, 100 frames at 20 fps to {moving}"]
    assert_png(still, (300, 240))
    with Image.open(moving) as im:
        assert im.n_frames == 100 and im.info["duration"] == 50 and im.size == (300, 240)


def test_short_runs_give_one_frame_per_step(capsys, tmp_path):
    target = tmp_path / "short.gif"
    out, _ = ok(capsys, ["run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.05", "--steps", "10",
                         "--animate", str(target), "--frames", "50", "--plot-size", "200x150"])
    assert out.splitlines()[-1] == f"wrote animation of 1 path, 11 frames at 20 fps to {target}"
    with Image.open(target) as im:
        assert im.n_frames == 11 and im.size == (200, 150)


def test_mp4_is_a_real_video(capsys, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the video extra: pip install 'gdlab[video]'")
    target = tmp_path / "roll.mp4"
    ok(capsys, BOWL_COMPARE + ["--animate", str(target), "--frames", "20", "--fps", "10", "--plot-size", "400x300"])
    assert target.read_bytes()[4:8] == b"ftyp"
    reader = imageio_ffmpeg.read_frames(str(target))
    meta = next(reader)
    reader.close()
    assert (meta["codec"], meta["size"], meta["fps"]) == ("h264", (400, 300), 10.0)
    assert imageio_ffmpeg.count_frames_and_secs(str(target))[0] == 20


# -- problems, schedules, sweeps -----------------------------------------------------------------
def test_compare_on_a_problem_plots_train_and_val_loss_per_epoch(capsys, tmp_path):
    target = tmp_path / "loss.png"
    out, err = ok(capsys, ["compare", "--problem", "linear_regression", "--optimizer", "sgd:lr=0.1",
                           "--optimizer", "adam:lr=0.05", "--epochs", "8", "--plot", str(target),
                           "--plot-size", "700x450", "--json"])
    json.loads(out)
    assert err == f"wrote loss per epoch of 2 optimizer(s) to {target}\n"
    pixels = assert_png(target, (700, 450))
    for index in range(2):
        assert near_colour(pixels, run_colour(index)).sum() > 100


def test_epoch_loss_figure_pairs_train_and_val_in_one_colour():
    fig = plotting.epoch_loss_figure({"a": ([1.0, 0.5, 0.25], [1.1, 0.6, 0.3]), "b": ([1.0, 0.9, np.nan], [1, 1, 1])},
                                     title="t")
    lines = fig.axes[0].get_lines()
    assert [to_rgb(line.get_color()) for line in lines] == [to_rgb(run_colour(0))] * 2 + [to_rgb(run_colour(1))] * 2
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-", "--"]
    assert list(lines[2].get_xdata()) == [0, 1]  # the non-finite epoch is left out
    assert fig.axes[0].get_yscale() == "log"


def test_train_plot_pdf(capsys, tmp_path):
    target = tmp_path / "train.pdf"
    out, _ = ok(capsys, ["train", "--problem", "logistic_regression", "--optimizer", "sgd", "--set", "lr=0.5",
                         "--epochs", "5", "--plot", str(target), "--plot-size", "500x300"])
    assert out.splitlines()[-1] == f"wrote loss per epoch (train and validation) to {target}"
    data = target.read_bytes()
    assert data.startswith(b"%PDF") and b"/MediaBox [ 0 0 360 216 ]" in data


def test_schedule_plot_draws_the_lr_curve(capsys, tmp_path):
    target = tmp_path / "lr.png"
    out, _ = ok(capsys, ["schedule", "step", "--set", "step_size=50", "--set", "gamma=0.1", "--steps", "150",
                         "--plot", str(target), "--plot-size", "600x400"])
    assert out.splitlines()[-1] == f"wrote learning-rate curve to {target}"
    pixels = assert_png(target, (600, 400))
    red = near_colour(pixels, run_colour(0))
    rows = np.nonzero(red.sum(axis=1) > 60)[0]  # the three flat steps are long horizontal red runs
    assert len(rows) >= 3 and np.ptp(rows) > 100


def test_sweep_lr_plot_and_the_critical_rate(capsys, tmp_path):
    target = tmp_path / "sweep.png"
    out, err = ok(capsys, ["sweep", "lr", "--landscape", "elliptic", "--optimizer", "sgd", "--lr-range",
                           "0.001:0.3:20", "--start", "5,5", "--steps", "50", "--plot", str(target),
                           "--plot-size", "700x450", "--json"])
    assert len(json.loads(out)["lrs"]) == 20 and err == f"wrote final loss vs learning rate to {target}\n"
    pixels = assert_png(target, (700, 450))
    assert near_colour(pixels, run_colour(0)).sum() > 100
    # GD's critical lr 2/λmax on x² + 10y² is 2/20 = 0.1: drawn as a vertical line
    assert plotting.critical_lr(make_landscape("elliptic"), np.array([5.0, 5.0])) == pytest.approx(0.1)
    concave = parse_expression("-x^2 - y^2")
    assert plotting.critical_lr(concave, np.array([1.0, 1.0])) is None  # undefined: no line
    sweep = type("S", (), {"lrs": np.array([0.01, 0.1]), "final_loss": np.array([1.0, 2.0]),
                           "status": np.array(["max_steps", "diverged"])})()
    fig = plotting.lr_sweep_figure("gd", sweep, concave, np.array([1.0, 1.0]), title="t")
    assert not [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    fig = plotting.lr_sweep_figure("gd", sweep, make_landscape("elliptic"), np.array([5.0, 5.0]), title="t")
    (dashed,) = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed.get_xdata()[0] == pytest.approx(0.1)


def test_sweep_basin_plot_colours_the_four_minima(capsys, tmp_path):
    target = tmp_path / "basin.png"
    out, _ = ok(capsys, ["sweep", "basin", "--landscape", "himmelblau", "--optimizer", "sgd", "--set", "lr=0.01",
                         "--resolution", "21", "--steps", "200", "--plot", str(target), "--plot-size", "600x500"])
    assert out.splitlines()[-1] == f"wrote basin map to {target}"
    pixels = assert_png(target, (600, 500))
    for index in range(4):  # each basin's colour covers a good part of the map (shaded by steps)
        assert near_colour(pixels, run_colour(index), 0.35).sum() > 2000, index


# -- bad input: exit 2, one line, no file --------------------------------------------------------
@pytest.mark.parametrize(("extra", "name", "match"), [
    (["--plot"], "x.bmp", "'.bmp'; use one of .png, .svg, .pdf"),
    (["--plot"], "x", "no suffix"),
    (["--animate"], "x.png", "use one of .gif, .mp4"),
    (["--plot"], "missing/x.png", "does not exist"),
])
def test_bad_targets_are_refused_before_the_run(capsys, tmp_path, monkeypatch, extra, name, match):
    import gdlab.engine.run as engine_run

    def no_run(*args, **kwargs):
        raise AssertionError("the run must not start")

    monkeypatch.setattr(engine_run, "run_single", no_run)
    target = tmp_path / name
    fails(capsys, ["run", "--landscape", "elliptic", "--optimizer", "sgd", *extra, str(target)], target, match=match)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way(capsys, tmp_path):
    folder = tmp_path / "taken.png"
    folder.mkdir()
    fails(capsys, BOWL_COMPARE + ["--plot", str(folder)], folder, match="it is a folder")
    afile = tmp_path / "file"
    afile.write_text("x")
    fails(capsys, BOWL_COMPARE + ["--plot", str(afile / "x.png")], afile / "x.png", match="is not a folder")


def test_nothing_to_draw(capsys, tmp_path):
    still, moving = tmp_path / "x.png", tmp_path / "x.gif"
    dead = ["run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=1e200", "--steps", "5"]
    fails(capsys, dead + ["--plot", str(still), "--json"], still, match="nothing to draw")
    fails(capsys, dead + ["--plot", str(still), "--animate", str(moving)], still, moving, match="nothing to draw")
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_ffmpeg(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # nor the video extra
    target = tmp_path / "x.mp4"
    fails(capsys, BOWL_COMPARE + ["--animate", str(target)], target, match="pip install 'gdlab[video]'")


def test_links_fifos_and_devices_are_refused_before_the_run(capsys, tmp_path, monkeypatch):
    import gdlab.engine.run as engine_run

    def no_run(*args, **kwargs):
        raise AssertionError("the run must not start")

    monkeypatch.setattr(engine_run, "run_single", no_run)
    real = tmp_path / "real.png"
    real.write_bytes(b"keep me")
    (tmp_path / "link.png").symlink_to(real)
    os.mkfifo(tmp_path / "pipe.gif")
    run = ["run", "--landscape", "elliptic", "--optimizer", "sgd"]
    fails(capsys, run + ["--plot", str(tmp_path / "link.png")], match="it is a symbolic link, not a regular file")
    fails(capsys, run + ["--animate", str(tmp_path / "pipe.gif")], match="it is a fifo, not a regular file")
    assert (tmp_path / "link.png").is_symlink() and real.read_bytes() == b"keep me"
    assert stat.S_ISFIFO((tmp_path / "pipe.gif").lstat().st_mode)


@pytest.mark.parametrize(("argv", "match"), [
    (["--animate", "X.gif", "--frames", "1"], "--frames must be between 2"),
    (["--animate", "X.gif", "--fps", "0"], "--fps must be between 1 and 60"),
    (["--frames", "10"], "--frames needs --animate"),
    (["--surface"], "--surface needs --plot"),
    (["--plot", "X.png", "--plot-size", "20x20"], "between 50 and 8000"),
    (["--plot", "X.png", "--plot-size", "big"], "expected WIDTHxHEIGHT"),
])
def test_bad_picture_options(capsys, tmp_path, argv, match):
    argv = [a.replace("X.", f"{tmp_path}/x.") for a in argv]
    fails(capsys, BOWL_COMPARE + argv, match=match)
    assert list(tmp_path.iterdir()) == []


def test_pictures_the_objective_cannot_have(capsys, tmp_path):
    gif, png = tmp_path / "x.gif", tmp_path / "x.png"
    well = ["run", "--landscape", "double_well", "--optimizer", "sgd", "--set", "lr=0.01"]
    fails(capsys, well + ["--animate", str(gif)], gif, match="--animate needs a 2-D objective")
    fails(capsys, well + ["--plot", str(png), "--surface"], png, match="--surface needs a 2-D objective")
    problem = ["compare", "--problem", "linear_regression", "--optimizer", "sgd:lr=0.1"]
    fails(capsys, problem + ["--animate", str(gif)], gif, match="--animate applies to landscapes")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_writing_leaves_no_file_at_all(capsys, tmp_path, monkeypatch):
    from gdlab.plots.output import PlotError

    animate_module = importlib.import_module("gdlab.plots.animate")  # the package exports a function of that name

    def broken(images, path, fps):
        Path(path).write_bytes(b"GIF89a partial")
        raise PlotError("disk full")

    monkeypatch.setattr(animate_module, "_write_gif", broken)
    still, moving = tmp_path / "x.png", tmp_path / "x.gif"
    fails(capsys, BOWL_COMPARE + ["--plot", str(still), "--animate", str(moving), "--frames", "5",
                                  "--plot-size", "200x150"], still, moving, match="disk full")
    assert list(tmp_path.iterdir()) == []  # neither the finished PNG nor the partial GIF nor a temporary


# -- the gallery command -------------------------------------------------------------------------
def test_gallery_command_writes_the_images_and_the_page(capsys, tmp_path, monkeypatch):
    from gdlab.plots import gallery

    small = {name: gallery.FIGURES[name] for name in ("schedules.png", "seed_warmup_cosine.png")}
    monkeypatch.setattr(gallery, "FIGURES", small)
    out, _ = ok(capsys, ["gallery", "--out", str(tmp_path / "docs" / "gallery"), "--no-animation"])
    assert out.splitlines()[-1] == f"wrote {tmp_path / 'docs' / 'gallery.md'} (2 pictures)"
    for name in small:
        assert_png(tmp_path / "docs" / "gallery" / name, (1000, 600))
    page = (tmp_path / "docs" / "gallery.md").read_text()
    assert "(gallery/schedules.png)" in page and "rolling.gif" not in page
    afile = tmp_path / "afile"
    afile.write_text("x")
    fails(capsys, ["gallery", "--out", str(afile)], match="is a file, not a folder")
