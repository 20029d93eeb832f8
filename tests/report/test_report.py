"""The report: tables, figures and the ``python -m lightreg.report`` command on hand-built run directories."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from matplotlib.image import AxesImage
from rich.console import Console

from lightreg.errors import UserError
from lightreg.report import compare_runs, label_runs, load_run, plots, table, write_report
from lightreg.weight_stats import SCHEMA_VERSION, feature_selection, magnitude_histogram, measure, totals

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FC1 = torch.tensor(
    [[1.0, 0.5, 0.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-0.001, 3.0, 0.0, 0.5]]
)  # 6 zeros, unit 1 dead, c dropped
OUT = torch.tensor([[0.0, 2.0, -1.0]])


def write_run(
    path: Path,
    weights: dict[str, torch.Tensor],
    lam: float,
    fractions: list[float],
    names: list[str] | None = None,
    input_shape: list[int] | None = None,
) -> Path:
    """A run directory as a finished run leaves it, with figures computed from ``weights``; ``fractions`` is the
    total zero fraction at each epoch (the history)."""
    path.mkdir(parents=True)
    stats, _ = measure(weights, atol=1e-3)
    first = next(iter(weights))
    features = feature_selection(first, weights[first], names).as_dict() | {"input_shape": input_shape or []}
    history = [
        {
            "epoch": e,
            "step": 10 * (e + 1),
            "total": {"zero_fraction": f, "near_zero_fraction": min(1.0, f + 0.1)},
            "layers": {s.name: {"zero_fraction": f, "near_zero_fraction": f} for s in stats},
            "metrics": {
                "train/loss": 1.0 / (e + 1),
                "val/loss": 1.2 / (e + 1),
                "train/penalty": 0.1,
                "train/objective": 1.0 / (e + 1) + 0.1,
                "val/acc": 0.5 + 0.1 * e,
            },
        }
        for e, f in enumerate(fractions)
    ]
    sparsity = {
        "version": SCHEMA_VERSION,
        "atol": 1e-3,
        "epochs": len(fractions),
        "global_step": 10 * len(fractions),
        "penalties": [{"name": "l1", "penalty": "L1()", "strength": lam, "mode": "prox", "params": list(weights)}],
        "total": totals(stats) | {"features_selected": len(features["selected"])},
        "layers": [s.as_dict() for s in stats],
        "features": features,
        "histograms": {n: magnitude_histogram(w, 8).as_dict() for n, w in weights.items()},
        "history": history,
    }
    (path / "sparsity.json").write_text(json.dumps(sparsity))
    (path / "metrics.json").write_text(json.dumps({"val/loss": 0.3 + lam, "val/acc": 0.9 - lam, "status": "completed"}))
    (path / ".hydra").mkdir()
    (path / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump(["+penalty=l1", f"lambda={lam}", f"hydra.run.dir={path}"])
    )
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(
        tmp_path / "run",
        {"net.fc1.weight": FC1, "net.out.weight": OUT},
        0.01,
        [0.0, 0.25, 0.6],
        names=["a", "b", "c", "d"],
    )


def rendered(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


# -- tables ----------------------------------------------------------------------------------------------------------
def test_run_table_shows_layers_totals_and_features(run_dir: Path) -> None:
    text = rendered(table.run_report(load_run(run_dir)))
    fc1 = next(line for line in text.splitlines() if "net.fc1.weight" in line and "3x4" in line)
    assert fc1.split()[2:7] == ["6", "50.0", "58.3", "1/3", "1/4"]  # |-0.001| <= atol
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[1:5] == ["15", "8", "46.7", "53.3"]  # 7 zeros of 15
    assert "Selected inputs (3 of 4, columns of net.fc1.weight): a, b, d" in text
    assert "Dropped inputs (1): c" in text
    assert "l1: L1() lambda=0.01 mode=prox on net.fc1.weight, net.out.weight" in text
    assert "val/acc 0.8900" in text


def test_compare_table_one_row_per_run_labelled_by_the_differing_override(tmp_path: Path) -> None:
    dirs = [
        write_run(tmp_path / str(i), {"w": FC1}, lam, [0.5], names=list("abcd")) for i, lam in enumerate((0.01, 0.1))
    ]
    runs = [load_run(d) for d in dirs]
    label_runs(runs)
    assert [r.label for r in runs] == ["lambda=0.01", "lambda=0.1"]
    text = rendered(table.compare_table(runs))
    row = next(line for line in text.splitlines() if "lambda=0.1 " in line)
    assert "l1 0.1 prox" in row and "3/4" in row and "a, b, d" in row and "0.8000" in row


@pytest.mark.parametrize(
    "selected, expected",
    [(3, "x0, x1, x2"), (20, "all"), (17, "all but x17, x18, x19"), (10, "10 (listed in sparsity.json)")],
)
def test_selection_summary_stays_short(selected: int, expected: str) -> None:
    names = [f"x{j}" for j in range(20)]
    features = {"selected_names": names[:selected], "dropped_names": names[selected:]}
    assert table.selection_summary(features) == expected


def test_runs_with_equal_overrides_are_told_apart(tmp_path: Path) -> None:
    runs = [load_run(write_run(tmp_path / d, {"w": FC1}, 0.01, [0.5])) for d in ("x", "y")]
    label_runs(runs)
    assert [r.label for r in runs] == ["x", "y"]


# -- figures ---------------------------------------------------------------------------------------------------------
def test_feature_importance_bars_are_the_selected_column_norms(run_dir: Path) -> None:
    fig = plots.feature_importance(load_run(run_dir))
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([np.hypot(1.0, 0.001), np.hypot(0.5, 3.0), np.hypot(2.0, 0.5)])
    (dropped,) = ax.collections
    assert dropped.get_offsets().tolist() == [[2.0, 0.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    assert "3 of 4 inputs selected" in ax.get_title()


def test_feature_importance_of_an_image_input_is_a_heat_map(tmp_path: Path) -> None:
    w = torch.zeros(2, 16)
    w[0, 5] = 1.0
    run = load_run(write_run(tmp_path / "img", {"w": w}, 0.01, [0.9], input_shape=[1, 4, 4]))
    (image,) = [a for a in plots.feature_importance(run).axes[0].get_children() if isinstance(a, AxesImage)]
    data = image.get_array()
    assert data.shape == (4, 4) and data.mask.sum() == 15 and data[1, 1] == 1.0


def test_weight_histograms_one_panel_per_tensor_with_zero_counts(run_dir: Path) -> None:
    fig = plots.weight_histograms(load_run(run_dir))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["net.fc1.weight", "net.out.weight"]
    assert any(t.get_text() == "exact zeros: 6 (50.0%)" for t in visible[0].texts)
    assert visible[0].get_xscale() == "log"
    assert visible[0].patches[0].get_path().vertices[:, 1].max() == pytest.approx(3)  # 1, .5, .5 share a bin


def test_weight_histograms_show_at_most_twelve_tensors(tmp_path: Path) -> None:
    weights = {f"l{i}": torch.randn(3, 3) for i in range(20)}
    fig = plots.weight_histograms(load_run(write_run(tmp_path / "deep", weights, 0.01, [0.0])))
    visible = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 12 and visible[0] == "l0" and visible[-1] == "l19"
    assert "12 of 20" in fig.get_suptitle()


def test_sparsity_over_epochs_lines(run_dir: Path) -> None:
    ax = plots.sparsity_over_epochs(load_run(run_dir)).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"net.fc1.weight", "net.out.weight", "total (= 0)", "total (|w| <= 0.001)"}
    assert lines["total (= 0)"].get_ydata().tolist() == pytest.approx([0.0, 25.0, 60.0])
    assert lines["total (= 0)"].get_xdata().tolist() == [0, 1, 2]


def test_losses_show_the_penalty_beside_the_losses(run_dir: Path) -> None:
    fig = plots.losses(load_run(run_dir))
    left, right = fig.axes[:2]
    assert {line.get_label() for line in left.get_lines()} == {
        "train/loss",
        "val/loss",
        "train/objective",
        "train/penalty",
    }
    assert [line.get_label() for line in right.get_lines()] == ["val/acc"]
    val = next(line for line in left.get_lines() if line.get_label() == "val/loss")
    assert val.get_ydata().tolist() == pytest.approx([1.2, 0.6, 0.4])


def test_compare_figures(tmp_path: Path) -> None:
    sparse = FC1.clone()
    sparse[:, 0] = 0.0
    runs = [
        load_run(write_run(tmp_path / str(i), {"w": w}, lam, [f], names=list("abcd")))
        for i, (w, lam, f) in enumerate([(FC1, 0.01, 0.5), (sparse, 0.1, 0.67)])
    ]
    label_runs(runs)
    heat = plots.compare_features(runs).axes[0]
    (image,) = [a for a in heat.get_children() if isinstance(a, AxesImage)]
    assert image.get_array().mask.tolist() == [[False, False, True, False], [True, False, True, False]]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["lambda=0.01", "lambda=0.1"]
    curves = plots.compare_sparsity(runs).axes[0].get_lines()
    assert [c.get_label() for c in curves] == ["lambda=0.01", "lambda=0.1"]
    tradeoff = plots.compare_tradeoff(runs).axes
    assert [ax.get_ylabel() for ax in tradeoff] == ["val/acc", "val/loss"]


def test_compare_features_refuses_different_inputs(tmp_path: Path) -> None:
    runs = [
        load_run(write_run(tmp_path / "a", {"w": FC1}, 0.01, [0.5])),
        load_run(write_run(tmp_path / "b", {"w": torch.ones(2, 3)}, 0.01, [0.0])),
    ]
    assert "different inputs" in plots.compare_features(runs).axes[0].texts[0].get_text()


# -- files and commands ----------------------------------------------------------------------------------------------
def test_write_report_saves_the_four_plots(run_dir: Path) -> None:
    paths = write_report(run_dir, console=Console(file=io.StringIO()))
    assert sorted(p.name for p in paths) == sorted(f"{name}.png" for name in plots.RUN_FIGURES)
    assert all(p.parent == run_dir / "plots" and p.read_bytes()[:8] == PNG_MAGIC for p in paths)


@pytest.mark.parametrize(
    "what, phrase", [("missing", "not a directory"), ("empty", "no sparsity.json"), ("old", "format version")]
)
def test_load_run_errors_say_what_to_do(what: str, phrase: str, tmp_path: Path) -> None:
    path = tmp_path / what
    if what != "missing":
        path.mkdir()
    if what == "old":
        (path / "sparsity.json").write_text(json.dumps({"version": 0}))
    with pytest.raises(UserError, match=phrase):
        load_run(path)


def _report_cli(*args: str, module: bool = True) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-m", "lightreg.report"]
        if module
        else [str(Path(sys.executable).parent / "lightreg"), "report"]
    )
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # a subprocess: Python, torch and Lightning start cold
def test_cli_rebuilds_and_compares(tmp_path: Path) -> None:
    first = write_run(tmp_path / "0", {"w": FC1}, 0.01, [0.2, 0.5], names=list("abcd"))
    second = write_run(tmp_path / "1", {"w": FC1 * 0}, 1.0, [0.5, 1.0], names=list("abcd"))
    proc = _report_cli(str(first), "--compare", str(second), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted([*(f"{n}.png" for n in plots.RUN_FIGURES), *(f"{n}.png" for n in plots.COMPARE_FIGURES)])
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in (tmp_path / "out").iterdir())
    assert "lambda=1.0" in proc.stdout and "Dropped inputs (1): c" in proc.stdout


@pytest.mark.slow  # a subprocess: Python, torch and Lightning start cold
def test_console_script_and_bad_run_dir(tmp_path: Path) -> None:
    proc = _report_cli(str(tmp_path / "nowhere"), module=False)
    assert proc.returncode == 2 and "lightreg: error:" in proc.stderr and "nowhere" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_runs_default_folder(tmp_path: Path) -> None:
    dirs = [write_run(tmp_path / str(i), {"w": FC1}, lam, [0.5]) for i, lam in enumerate((0.01, 0.1))]
    paths = compare_runs(dirs, console=Console(file=io.StringIO()))
    assert {p.parent for p in paths} == {dirs[0] / "compare"}


# -- what each plot promises -------------------------------------------------------------------------------------------
def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


def _overlap(texts) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts whose drawn boxes intersect."""
    shown = [t for t in texts if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent() for t in shown]
    return [
        (shown[i].get_text(), shown[j].get_text())
        for i in range(len(shown))
        for j in range(i + 1, len(shown))
        if boxes[i].overlaps(boxes[j])
    ]


def test_compare_features_marks_each_dropped_input_with_an_x(tmp_path: Path) -> None:
    sparse = FC1.clone()
    sparse[:, 0] = 0.0
    runs = [
        load_run(write_run(tmp_path / str(i), {"w": w}, lam, [0.5], names=list("abcd")))
        for i, (w, lam) in enumerate([(FC1, 0.01), (sparse, 0.1)])
    ]
    ax = plots.compare_features(runs).axes[0]
    (crosses,) = ax.collections
    assert crosses.get_label().startswith("dropped")
    assert sorted(map(tuple, crosses.get_offsets().tolist())) == [(0.0, 1.0), (2.0, 0.0), (2.0, 1.0)]  # (input, run)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dropped (column exactly zero)"]


def test_compare_tradeoff_names_runs_in_a_legend_not_overlapping_labels(tmp_path: Path) -> None:
    runs = [
        load_run(write_run(tmp_path / str(i), {"w": FC1}, lam, [0.5])) for i, lam in enumerate((0.01, 0.011, 0.012))
    ]
    label_runs(runs)  # same sparsity, nearly the same metrics: labels beside the points would sit on each other
    fig = _drawn(plots.compare_tradeoff(runs))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [r.label for r in runs]
    for ax in fig.axes:
        assert len(ax.collections) == len(runs) and not ax.texts
        assert not _overlap(ax.get_xticklabels()) and not _overlap(ax.get_yticklabels())


def test_losses_of_a_one_epoch_run_have_a_whole_epoch_axis(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "one", {"w": FC1}, 0.01, [0.5]))
    for ax in _drawn(plots.losses(run)).axes:
        low, high = ax.get_xlim()
        assert high - low >= 2
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e6])  # atol inside, above and below every |w|
def test_weight_histograms_draw_the_atol_line_and_readable_ticks(tmp_path: Path, scale: float) -> None:
    weights = {f"layer{i}.weight": torch.randn(30, 40) * scale * 10.0 ** (i - 2) for i in range(6)}
    weights["layer0.weight"][:5] = 0.0
    fig = _drawn(plots.weight_histograms(load_run(write_run(tmp_path / "h", weights, 0.01, [0.1]))))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 6
    for ax in panels:
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert [line.get_xdata()[0] for line in dashed] == [pytest.approx(1e-3)]
        low, high = ax.get_xlim()
        assert low < 1e-3 < high
        assert not _overlap(ax.get_xticklabels()), [t.get_text() for t in ax.get_xticklabels()]


@pytest.mark.parametrize("names", [list("abcd"), [f"a_rather_long_feature_name_{j}" for j in range(4)]])
def test_tables_stay_within_80_columns(tmp_path: Path, names: list[str]) -> None:
    dirs = [
        write_run(tmp_path / str(i), {"net.fc1.weight": FC1, "net.out.weight": OUT}, lam, [0.5], names=names)
        for i, lam in enumerate((0.01, 0.1))
    ]
    runs = [load_run(d) for d in dirs]
    label_runs(runs)
    expected = {  # figures are never folded: each row keeps its numbers on one line
        "net.fc1.weight": ["net.fc1.weight", "3x4", "6", "50.0", "58.3", "1/3", "1/4"],
        "lambda=0.1": ["lambda=0.1", "l1", "0.1", "prox", "0.8000", "0.4000", "46.7", "8", "3/4"],
    }
    for renderable, first in ((table.run_report(runs[0]), "net.fc1.weight"), (table.compare_table(runs), "lambda=0.1")):
        console = Console(record=True, width=80)
        console.print(renderable)
        rows = console.export_text().splitlines()
        assert max(len(line.rstrip()) for line in rows) <= 80
        assert any(line.split()[:9] == expected[first][:9] for line in rows), "\n".join(rows)


def test_weight_histograms_title_fits_with_one_panel(tmp_path: Path) -> None:
    fig = _drawn(plots.weight_histograms(load_run(write_run(tmp_path / "one", {"w": FC1}, 0.01, [0.5]))))
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1
