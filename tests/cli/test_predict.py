"""``lightreg predict RUN_DIR DATA -o OUT``: a trained run predicts new raw rows (columns matched by name, extra columns
passed through) as well as validation measured it, from its checkpoints and its compact.pt; user errors are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lightreg
from lightreg.cli.commands import main
from lightreg.models import LogisticRegression
from trained_runs import raw_rows, read_table, train_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Breast cancer with string labels, an id column and a held-out file; compact=true."""
    return train_csv(tmp_path_factory.mktemp("cancer"), "breast_cancer", "diagnosis", "compact=true")


def _predict(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _accuracy(path: Path) -> float:
    rows = read_table(path)
    return float(np.mean([row["prediction"] == row["diagnosis"] for row in rows]))


def test_predict_csv_as_validation_measured(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, metrics = cancer
    holdout = run.parent / "holdout.csv"
    out = tmp_path / "predicted.csv"
    code, said, _ = _predict(capsys, run, holdout, "-o", out, "--checkpoint", "last")
    assert code == 0 and said.strip() == f"wrote {len(read_table(holdout))} rows to {out}"
    rows, given = read_table(out), read_table(holdout)
    assert list(rows[0]) == [*given[0], "prediction", "proba:benign", "proba:malignant"]
    assert [r["id"] for r in rows] == [g["id"] for g in given] and rows[0]["diagnosis"] == given[0]["diagnosis"]
    n = len(rows)
    assert _accuracy(out) == pytest.approx(metrics["val/acc"], abs=1.5 / n)  # the last checkpoint's own figure
    for row in rows:
        p = float(row["proba:malignant"])
        assert row["prediction"] == ("malignant" if p > 0.5 else "benign") or p == pytest.approx(0.5, abs=1e-6)
    code, _, _ = _predict(capsys, run, holdout, "-o", tmp_path / "best.csv")  # default: best.ckpt
    # compact.pt is made from best.ckpt: compact/val_acc_before is the best model's accuracy on these rows
    assert code == 0 and _accuracy(tmp_path / "best.csv") == pytest.approx(
        metrics["compact/val_acc_before"], abs=1.5 / n
    )
    code, _, _ = _predict(capsys, run, holdout, "-o", tmp_path / "compact.csv", "--checkpoint", "compact")
    assert code == 0 and _accuracy(tmp_path / "compact.csv") == pytest.approx(
        metrics["compact/val_acc_after"], abs=1.5 / n
    )
    assert abs(metrics["compact/val_acc_after"] - metrics["compact/val_acc_before"]) <= 0.02


def test_the_checkpoint_and_compact_pt_predict_raw_rows(cancer: tuple[Path, dict]) -> None:
    run, metrics = cancer
    rows = read_table(run.parent / "holdout.csv")
    truth = [r["diagnosis"] for r in rows]
    model = LogisticRegression.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    labels = model.predict_labels(raw_rows(rows, model.feature_names))
    assert np.mean(np.asarray(labels) == truth) == pytest.approx(metrics["val/acc"], abs=1.5 / len(rows))
    small = lightreg.compact.load(run / "compact.pt")
    assert not small.training and small.classes == ["benign", "malignant"]
    assert set(small.feature_names) <= set(model.feature_names)
    output = small(torch.from_numpy(raw_rows(rows, small.feature_names)))
    assert np.mean(np.asarray(small.labels(output)) == truth) == pytest.approx(
        metrics["compact/val_acc_after"],
        abs=1e-6,  # a float32 metric; one row is 1/114
    )


def test_a_missing_column_is_one_line(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, _ = cancer
    lines = (run.parent / "holdout.csv").read_text().splitlines()
    header = lines[0].split(",")
    gone = [j for j, name in enumerate(header) if name.startswith("mean")]  # 10 columns
    cut = "\n".join(",".join(c for j, c in enumerate(line.split(",")) if j not in gone) for line in lines)
    (tmp_path / "cut.csv").write_text(cut + "\n")
    code, _, err = _predict(capsys, run, tmp_path / "cut.csv", "-o", tmp_path / "out.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("lightreg: error:") and "lacks 10 of the model's 30" in err and "mean radius" in err
    assert "mean fractal dimension" not in err and "... (5 more)" in err
    assert not (tmp_path / "out.csv").exists()


def test_a_bad_cell_and_an_unknown_checkpoint_are_one_line(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, _ = cancer
    lines = (run.parent / "holdout.csv").read_text().splitlines()
    header = lines[0].split(",")
    j = header.index("mean area")
    cells = lines[3].split(",")
    cells[j] = "big"
    lines[3] = ",".join(cells)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    code, _, err = _predict(capsys, run, tmp_path / "bad.csv", "-o", tmp_path / "out.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "line 4, column 'mean area': 'big'" in err
    code, _, err = _predict(capsys, run, run.parent / "holdout.csv", "-o", tmp_path / "o.csv", "--checkpoint", "bset")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'bset'" in err and "best, last, one_se" in err
    code, _, err = _predict(capsys, run, run.parent / "holdout.csv", "-o", tmp_path / "o.csv", "--checkpoint", "one_se")
    assert code == 2 and "no checkpoint checkpoints/one_se.ckpt; it has: best, last" in err


def test_regression_predicts_in_target_units(tmp_path: Path, capsys) -> None:
    run, metrics = train_csv(tmp_path, "diabetes", "progression", "data.standardize_target=true", "lambda=0.01",
                             "trainer.max_epochs=20")  # fmt: skip
    code, _, _ = _predict(capsys, run, tmp_path / "holdout.csv", "-o", tmp_path / "out.csv", "--checkpoint", "last")
    rows = read_table(tmp_path / "out.csv")
    assert code == 0 and list(rows[0])[-1] == "prediction"
    mae = np.mean([abs(float(r["prediction"]) - float(r["progression"])) for r in rows])
    assert metrics["val/mae"] > 10  # target units (25..346), not standardized ones
    assert mae == pytest.approx(metrics["val/mae"], rel=0.10)


def test_multiclass_probabilities_sum_to_one(tmp_path: Path, capsys) -> None:
    run, metrics = train_csv(tmp_path, "wine", "cultivar")
    code, _, _ = _predict(capsys, run, tmp_path / "holdout.csv", "-o", tmp_path / "out.csv", "--checkpoint", "last")
    rows = read_table(tmp_path / "out.csv")
    columns = [c for c in rows[0] if c.startswith("proba:")]
    assert code == 0 and columns == ["proba:0", "proba:1", "proba:2"]
    sums = [sum(float(r[c]) for c in columns) for r in rows]
    assert np.allclose(sums, 1.0, atol=1e-5)
    accuracy = np.mean([r["prediction"] == r["cultivar"] for r in rows])
    assert accuracy == pytest.approx(metrics["val/acc"], abs=1.5 / len(rows))


def test_an_npy_of_raw_rows_predicts_as_the_csv(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, _ = cancer
    rows = read_table(run.parent / "holdout.csv")
    names = LogisticRegression.load_from_checkpoint(run / "checkpoints" / "best.ckpt", map_location="cpu").feature_names
    np.save(tmp_path / "rows.npy", raw_rows(rows, names))
    assert _predict(capsys, run, run.parent / "holdout.csv", "-o", tmp_path / "csv.csv")[0] == 0
    assert _predict(capsys, run, tmp_path / "rows.npy", "-o", tmp_path / "npy.csv")[0] == 0
    from_npy, from_csv = read_table(tmp_path / "npy.csv"), read_table(tmp_path / "csv.csv")
    assert [r["row"] for r in from_npy] == [str(i) for i in range(len(rows))]
    assert [r["prediction"] for r in from_npy] == [r["prediction"] for r in from_csv]


def test_an_image_npy_holds_raw_pixels(tmp_path: Path) -> None:
    from torch import nn

    from lightreg.cli.predict import npy_inputs
    from lightreg.errors import UserError
    from lightreg.models.standalone import StandaloneModel

    model = StandaloneModel(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), "multiclass", (1, 4, 4))
    pixels = np.arange(32, dtype=np.uint8).reshape(2, 1, 4, 4) * 8
    np.save(tmp_path / "pixels.npy", pixels)
    _, _, x = npy_inputs(tmp_path / "pixels.npy", model, pixel_max=255.0)
    assert x.dtype == np.float32 and np.array_equal(x, pixels)  # raw pixel values, normalized by the model
    for name, bad in (("normalized", (pixels - 127.5) / 60), ("too_bright", pixels * 2.0)):
        np.save(tmp_path / f"{name}.npy", bad)
        with pytest.raises(UserError, match=r"holds values from .* raw pixels in 0\.\.255"):
            npy_inputs(tmp_path / f"{name}.npy", model, pixel_max=255.0)
    np.save(tmp_path / "wrong.npy", np.zeros((2, 1, 5, 5), dtype=np.float32))
    with pytest.raises(UserError, match=r"shape \(2, 1, 5, 5\).*\(n, 1, 4, 4\)"):
        npy_inputs(tmp_path / "wrong.npy", model)


def test_a_semicolon_file_sniffed_or_named(cancer: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    run, _ = cancer
    (tmp_path / "semi.csv").write_text((run.parent / "holdout.csv").read_text().replace(",", ";"))
    assert _predict(capsys, run, run.parent / "holdout.csv", "-o", tmp_path / "comma.csv")[0] == 0
    for extra in ([], ["--delimiter", "semicolon"]):
        assert _predict(capsys, run, tmp_path / "semi.csv", "-o", tmp_path / "semi_out.csv", *extra)[0] == 0
        predicted = [r["prediction"] for r in read_table(tmp_path / "semi_out.csv")]
        assert predicted == [r["prediction"] for r in read_table(tmp_path / "comma.csv")]
    code, _, err = _predict(capsys, run, tmp_path / "semi.csv", "-o", tmp_path / "o.csv", "--delimiter", "colon")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--delimiter" in err and "'colon'" in err


def test_a_folder_of_images_predicts_as_the_data_module_reads_them(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from lightreg.data import ImageDataModule
    from trained_runs import QUIET

    from conftest import describe
    from helpers import read_metrics, run_train

    run = tmp_path / "run"
    proc = run_train("data=digits_images", "model=cnn", "trainer.max_epochs=2", *QUIET,
                     f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    data = ImageDataModule("digits_images")
    data.setup("fit")
    images, labels = data.raw_val  # digits pixels 0..16
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = np.rint(images[:, 0].numpy() * 255 / 16).astype(np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
    (folder / "notes.txt").write_text("not an image\n")
    code, said, _ = _predict(capsys, run, folder, "-o", tmp_path / "out.csv", "--checkpoint", "last")
    rows = read_table(tmp_path / "out.csv")
    assert code == 0 and said.startswith(f"wrote {len(pixels)} rows")
    assert [r["file"] for r in rows] == [f"{i:04d}.png" for i in range(len(pixels))]
    accuracy = np.mean([int(r["prediction"]) == int(y) for r, y in zip(rows, labels.tolist(), strict=True)])
    assert accuracy == pytest.approx(read_metrics(run)["val/acc"], abs=0.02)  # 8-bit PNGs of the 0..16 pixels
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8), mode="L").save(folder / "big.png")
    code, _, err = _predict(capsys, run, folder, "-o", tmp_path / "o.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "big.png is 9x9 pixels" in err and "8x8" in err
