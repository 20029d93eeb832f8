"""No silent wrong result, in-process: CSV cells and labels, the target scale, optimizer checks, resume fingerprints,
the console's epoch line and its train.log copy."""

from __future__ import annotations

import io
from functools import partial

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lightreg.callbacks import RegularizationCallback
from lightreg.cli.checks import check_optimizer
from lightreg.cli.console import _LogCopy
from lightreg.data import CSVDataModule, SklearnDataModule, read_csv_table
from lightreg.errors import LightregWarning, UserError
from lightreg.models import LogisticRegression
from lightreg.models.progress_line import WIDTH, epoch_line
from lightreg.penalties import L1, L2

from conftest import write_csv

ROWS = [(i, (i * 7) % 5, i % 2) for i in range(20)]


# ----------------------------------------------------------------------------------------------------------------
# CSV: missing cells, labels, delimiter, dropped columns
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["", "NA", "nan", "?", "null"])
def test_missing_target_is_an_error_naming_the_row_never_a_regression(tmp_path, cell: str) -> None:
    rows = [*ROWS[:4], (4, 3, cell), *ROWS[5:]]  # file line 6
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    with pytest.raises(UserError, match=r"missing values in 1 row \(line 6\), column\(s\) label.*data.dropna=true"):
        read_csv_table(path, "label", None)
    with pytest.warns(LightregWarning, match=r"dropped 1 row \(line 6\)"):
        table = read_csv_table(path, "label", None, dropna=True)  # 0/1 with the row dropped: still binary
    assert (table.task, len(table.y), table.classes) == ("binary", 19, [0, 1])


def test_missing_features_name_every_row_and_column(tmp_path) -> None:
    rows = [*ROWS[:2], (2, "", 0), (3, "N/A", 1), *ROWS[4:9], ("", 1, 1), *ROWS[10:]]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    with pytest.raises(UserError, match=r"3 rows \(lines 4, 5, 11\), column\(s\) a, b;") as err:
        read_csv_table(path, "label", None)
    assert "not a number" not in str(err.value)


@pytest.mark.parametrize(
    ("labels", "classes", "task"),
    [
        ((1, 2), [1, 2], "binary"),
        ((-1, 1), [-1, 1], "binary"),
        (("no", "yes"), ["no", "yes"], "binary"),
        ((3, 5, 9), [3, 5, 9], "multiclass"),
        (("cat", "dog", "emu"), ["cat", "dog", "emu"], "multiclass"),
    ],
)
def test_labels_are_encoded_in_sorted_order(tmp_path, labels, classes, task) -> None:
    rows = [(i, i % 3, labels[i % len(labels)]) for i in range(21)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    table = read_csv_table(path, "label", None)
    assert (table.task, table.classes) == (task, classes)
    assert [classes[k] for k in table.y] == [r[2] for r in rows]
    dm = CSVDataModule(train_path=str(path), target="label", batch_size=8)
    dm.setup("fit")
    assert dm.classes == classes and dm.num_classes == len(classes)
    assert set(dm.y_train.long().tolist()) == set(range(len(classes)))


@pytest.mark.parametrize("labels", [(1, 1), ("yes", "yes"), (0.0, 0.0)])
def test_single_class_is_refused(tmp_path, labels) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "label"], [(i, labels[i % 2]) for i in range(10)])
    with pytest.raises(UserError, match="single class"):
        read_csv_table(path, "label", None)


def test_validation_labels_use_the_training_classes(tmp_path) -> None:
    train = write_csv(tmp_path / "train.csv", ["a", "label"], [(i, ("lo", "hi")[i % 2]) for i in range(10)])
    val = write_csv(tmp_path / "val.csv", ["a", "label"], [(1, "hi"), (2, "hi")])  # one class only: fine in val
    other = write_csv(tmp_path / "other.csv", ["a", "label"], [(1, "hi"), (2, "mid")])
    dm = CSVDataModule(train_path=str(train), val_path=str(val), target="label")
    dm.setup("fit")
    assert dm.classes == ["hi", "lo"] and dm.y_val.tolist() == [0.0, 0.0]
    with pytest.raises(UserError, match="'mid'"):
        CSVDataModule(train_path=str(train), val_path=str(other), target="label").setup("fit")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_delimiter_is_sniffed_or_given(tmp_path, sep: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "\n".join(
            sep.join(map(str, r)) for r in [("id", "a", "b", "label"), *[(100 + i, *r) for i, r in enumerate(ROWS)]]
        )
        + "\n"
    )
    for delimiter in (None, sep):
        table = read_csv_table(path, "label", None, drop=["id"], delimiter=delimiter)
        assert table.feature_names == ["a", "b"] and table.x.shape == (20, 2)


def test_target_scale_makes_the_loss_standardized_and_predictions_in_units() -> None:
    dm = SklearnDataModule(name="diabetes", batch_size=64)
    dm.setup("fit")
    y = dm.y_train.double().numpy()
    assert dm.target_scale == pytest.approx((y.mean(), y.std()))
    model = LogisticRegression(
        input_shape=dm.input_shape, num_classes=None, task="regression", target_scale=dm.target_scale
    )
    with torch.no_grad():
        model.net.linear.weight.zero_()
        model.net.linear.bias.zero_()
        output, loss, _ = model.batch_loss((dm.x_train, dm.y_train))
    assert torch.allclose(output.squeeze(-1).double(), torch.full_like(dm.y_train.double(), y.mean()), atol=1e-3)
    assert float(loss) == pytest.approx(1.0, rel=1e-4)  # predicting the mean: standardized MSE = 1
    assert "target_mean" in model.state_dict()  # checkpoints carry the scale


# ----------------------------------------------------------------------------------------------------------------
# optimizer arguments
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "key", "value"),
    [
        ("torch.optim.SGD", "lr", -1.0),
        ("torch.optim.SGD", "lr", 0.0),
        ("torch.optim.SGD", "lr", "fast"),
        ("torch.optim.SGD", "momentum", -0.1),
        ("torch.optim.SGD", "weight_decay", -1e-4),
        ("torch.optim.Adam", "eps", -1e-8),
        ("torch.optim.Adam", "betas", [0.9, 1.0]),
        ("torch.optim.AdamW", "betas", [1.5, 0.999]),
        ("torch.optim.Adam", "betas", [0.9]),
        ("torch.optim.RMSprop", "alpha", -0.5),
        ("torch.optim.Adagrad", "lr_decay", -1.0),
        ("torch.optim.SGD", "nesterov", True),  # nesterov needs momentum > 0: torch's own check, one line
    ],
)
def test_bad_optimizer_arguments(target: str, key: str, value) -> None:
    node = OmegaConf.create({"_target_": target, "_partial_": True, "lr": 0.1, key: value})
    if key == "nesterov":
        node.momentum = 0.0
    with pytest.raises(UserError, match=key if key != "nesterov" else "(?i)nesterov") as err:
        check_optimizer(node)
    assert "\n" not in str(err.value)


def test_good_optimizer_arguments_pass() -> None:
    check_optimizer(
        OmegaConf.create({"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "betas": [0.9, 0.999]})
    )


# ----------------------------------------------------------------------------------------------------------------
# resume fingerprints of the regularization callback
# ----------------------------------------------------------------------------------------------------------------
def test_state_key_is_the_name_so_a_changed_penalty_is_compared() -> None:
    saved = RegularizationCallback(L1(), 1e-3, name="reg")
    assert RegularizationCallback(L2(), 1e-2, name="reg").state_key == saved.state_key
    assert RegularizationCallback(L1(), 1e-3, name="other").state_key != saved.state_key
    for changed in (
        RegularizationCallback(L2(), 1e-3, name="reg"),
        RegularizationCallback(L1(), 1e-2, name="reg"),
        RegularizationCallback(L1(), 1e-3, mode="grad", name="reg"),
    ):
        with pytest.raises(UserError, match=r"resume\.allow_changes=true") as err:
            changed.load_state_dict(saved.state_dict())
        assert repr(saved.penalty) in str(err.value) and repr(changed.penalty) in str(err.value)
        changed.allow_changes = True  # resume.allow_changes=true: the CLI warned once (lightreg.cli.guard)
        changed.load_state_dict(saved.state_dict())
    RegularizationCallback(L1(), 1e-3, name="reg").load_state_dict(saved.state_dict())


# ----------------------------------------------------------------------------------------------------------------
# the console
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "figures",
    [
        {
            "train/loss": 0.7265,
            "train/acc": 0.7745,
            "train/penalty": 0.0821,
            "train/objective": 0.81,
            "val/loss": 0.2788,
            "val/acc": 0.9278,
        },
        {
            "train/loss": 123.456,
            "train/mae": 12345.6,
            "train/r2": -6.5521,
            "val/loss": 99.1,
            "val/mae": 150.25,
            "val/r2": -0.1234,
            "train/penalty": 1234.5,
            "train/objective": 1357.9,
        },
    ],
)
def test_epoch_line_fits_80_columns(figures) -> None:
    line = epoch_line(998, 1000, figures)
    assert len(line) <= WIDTH, line
    assert line.startswith("Epoch  999/1000") or line.startswith("Epoch 999/1000")
    assert all(name.split("/")[1] in line for name in figures if "objective" not in name)


def test_log_copy_drops_colours_and_progress_redraws() -> None:
    out = io.StringIO()
    copy = _LogCopy(out)
    copy.write("\x1b[1mEpoch 1/3\x1b[0m  loss 0.1/0.2\n")
    copy.write("\rEpoch 0/2  ━━━━━━━━━━━━ 23/23 0:00:01 • 0:00:00 22.40it/s \n┏━━━┳━━━┓\n")
    copy.write("partial")
    copy.write(" line\n")
    assert out.getvalue() == "Epoch 1/3  loss 0.1/0.2\n┏━━━┳━━━┓\npartial line\n"


def test_predict_labels_maps_indices_back() -> None:
    model = LogisticRegression(
        input_shape=(2,),
        num_classes=3,
        task="multiclass",
        classes=["a", "b", "c"],
        optimizer=partial(torch.optim.SGD, lr=0.1),
    )
    with torch.no_grad():
        model.net.linear.weight.copy_(torch.eye(3, 2))
        model.net.linear.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    assert model.predict_labels(torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])) == ["a", "b", "c"]
    assert np.array_equal(model.predict_labels(torch.zeros(1, 2)), ["c"])


def test_session_copies_the_console_and_restores_it(tmp_path, capsys) -> None:
    import logging
    import sys

    from lightreg.cli.console import discard_new_folder, session

    out, err = sys.stdout, sys.stderr
    with session(tmp_path / "run"):
        print("Epoch 1/2  loss 0.5/0.6")
        print("\x1b[31mlightreg: WARNING: careful\x1b[0m", file=sys.stderr)
        logging.getLogger("lightreg.test").warning("a log record")
    assert (sys.stdout, sys.stderr) == (out, err)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "Epoch 1/2  loss 0.5/0.6\nlightreg: WARNING: careful\n" in log
    assert "Epoch 1/2" in capsys.readouterr().out
    (tmp_path / "run" / ".hydra").mkdir()
    assert discard_new_folder(tmp_path / "run") and not (tmp_path / "run").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "metrics.json").write_text("{}")
    assert not discard_new_folder(tmp_path / "kept") and (tmp_path / "kept" / "metrics.json").exists()
