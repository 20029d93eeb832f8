"""CSV and tabular seams: the file's encoding, header and delimiter, long column lists, validation columns by name,
task inference, rare classes. Each case is a wrong result or a traceback on a plain reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightreg.data import CSVDataModule, read_csv_table
from lightreg.data.csv_format import sniff_delimiter
from lightreg.errors import LightregWarning, UserError, listed
from lightreg.run_folder import read_metrics

from conftest import describe, run_train, write_csv

QUIET = ["logger=none", "callbacks=none", "model.print_epochs=false", "trainer.max_epochs=1"]
ROWS = [(i, (i * 7) % 5, i % 2) for i in range(20)]


def _write(path: Path, sep: str, header: list[str], rows: list[tuple]) -> Path:
    path.write_text("\n".join(sep.join(map(str, r)) for r in [header, *rows]) + "\n")
    return path


def _one_error(proc, *fragments: str) -> str:
    """Exit 2 and one ``lightreg: error:`` line on stderr holding ``fragments``; no traceback."""
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lightreg: error:")]
    assert len(errors) == 1, describe(proc)
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ----------------------------------------------------------------------------------------------------------------
# encoding, header
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("first", ["label", "a"])
def test_a_byte_order_mark_never_stays_in_the_first_name(tmp_path, first: str) -> None:
    header = [first, *(c for c in ("a", "b", "label") if c != first)]
    rows = [tuple(dict(zip(("a", "b", "label"), r))[c] for c in header) for r in ROWS]
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _write(tmp_path / "plain.csv", ",", header, rows).read_bytes())
    table = read_csv_table(path, "label")
    assert table.feature_names == [c for c in header if c != "label"]
    assert table.x.shape == (20, 2) and table.task == "binary"


def test_text_that_is_not_utf8_is_one_line(tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("température,label\n1,0\n2,1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 0xe9 at offset 4\); save it as UTF-8"):
        read_csv_table(path, "label")


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (["a", "label", "b", "label"], "'label' (columns 2, 4)"),
        (["a", "a", "label"], "'a' (columns 1, 2)"),
        (
            [" a", "a ", "b", "b", "label"],
            "2 duplicated column name(s) in its header: 'a' (columns 1, 2), 'b' (columns 3, 4)",
        ),
    ],
)
def test_duplicated_column_names_are_refused(tmp_path, header: list[str], fragment: str) -> None:
    path = write_csv(tmp_path / "dup.csv", header, [tuple(range(len(header))) for _ in range(6)])
    with pytest.raises(UserError, match="rename them") as err:
        read_csv_table(path, "label")
    assert fragment in str(err.value)


# ----------------------------------------------------------------------------------------------------------------
# delimiter
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "sep"),
    [
        ("\\t", "\t"),
        ("tab", "\t"),
        ("TAB", "\t"),
        ("\t", "\t"),
        ("comma", ","),
        ("semicolon", ";"),
        ("pipe", "|"),
        ("space", " "),
        (";", ";"),
    ],
)
def test_delimiter_names_and_escapes(tmp_path, given: str, sep: str) -> None:
    path = _write(tmp_path / "t.txt", sep, ["a", "b", "label"], ROWS)
    dm = CSVDataModule(train_path=str(path), target="label", delimiter=given)
    assert dm.delimiter == sep
    dm.setup("fit")
    assert dm.feature_names == ["a", "b"]


@pytest.mark.parametrize("given", ["", "ab", "\\n", '"', 3])
def test_a_bad_delimiter_names_the_choices(given) -> None:
    with pytest.raises(UserError, match=r"data.delimiter must be one character or a name: tab, .*got"):
        CSVDataModule(train_path="t.csv", target="y", delimiter=given)


def test_a_wide_tsv_is_sniffed_from_its_first_lines(tmp_path) -> None:
    """Counts in 3 000 columns: :class:`csv.Sniffer` on the first 20 000 characters answered a comma."""
    rng = np.random.default_rng(0)
    names = [f"c{j}" for j in range(3000)]
    rows = [(*rng.integers(0, 9, size=3000), i % 2) for i in range(12)]
    path = _write(tmp_path / "wide.tsv", "\t", [*names, "label"], rows)
    assert sniff_delimiter(path.read_text()) == "\t"
    table = read_csv_table(path, "label")
    assert table.x.shape == (12, 3000) and table.feature_names[-1] == "c2999"
    assert np.array_equal(table.x[3], rows[3][:3000])


@pytest.mark.parametrize(
    ("text", "sep"),
    [
        ("a;b;label\n1,5;2,5;0\n3,0;1,0;1\n", ";"),  # decimal commas inside a semicolon file
        ("a,b,label\n1,2,0\n3,4,1\n", ","),
        ('name|a|label\n"x, y"|1|0\n"z; w"|2|1\n', "|"),
        ("label\n0\n1\n", ","),  # one column: nothing splits it
    ],
)
def test_sniffing_wants_the_header_and_rows_to_agree(text: str, sep: str) -> None:
    assert sniff_delimiter(text) == sep


@pytest.mark.parametrize("given", ["\\t", "tab", "semicolon"])
def test_tab_from_the_command_line(tmp_path, given: str) -> None:
    """``data.delimiter='\\t'`` in a shell reaches Hydra as backslash-t, ``data.delimiter=tab`` as the name; both
    read the TSV. A wrong setting is honoured too: one line, the file read with it."""
    rows = [(f"{i},{i}", i / 3, i % 4, i % 2) for i in range(24)]
    path = _write(tmp_path / "t.tsv", "\t", ["note", "a", "b", "label"], rows)
    args = ["data=csv", f"data.train_path={path}", "data.target=label", f"data.delimiter={given}", *QUIET]
    proc = run_train(*args, "data.drop=[note]", "hydra.run.dir=run", cwd=tmp_path)
    if given == "semicolon":
        _one_error(proc, "target column 'label' is not in", "(read with delimiter ';'; set data.delimiter)")
        return
    assert proc.returncode == 0, describe(proc)
    metrics = read_metrics(tmp_path / "run")
    assert metrics["classes"] == [0, 1] and 0.0 <= metrics["val/acc"] <= 1.0


# ----------------------------------------------------------------------------------------------------------------
# long lists of column names
# ----------------------------------------------------------------------------------------------------------------
def test_listed_caps_a_long_list() -> None:
    assert listed(["a", "b"]) == "a, b"
    assert listed([f"c{j}" for j in range(3000)]) == "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ... (2990 more)"


def test_messages_about_a_wide_file_stay_short(tmp_path) -> None:
    names = [f"feature_{j}" for j in range(3000)]
    path = write_csv(tmp_path / "wide.csv", [*names, "label"], [(*range(3000), i % 2) for i in range(4)])
    with pytest.raises(UserError, match=r"feature_9, \.\.\. \(2991 more\)") as err:
        read_csv_table(path, "target")
    assert len(str(err.value)) < 400
    with pytest.raises(UserError, match=r"x0, x1, .*x9, \.\.\. \(5 more\); columns: feature_0, ") as err:
        read_csv_table(path, "label", drop=[f"x{j}" for j in range(15)])
    assert len(str(err.value)) < 400
    holes = [(*([""] * 3000), i % 2) for i in range(4)]
    path = write_csv(tmp_path / "holes.csv", [*names, "label"], holes)
    with pytest.raises(UserError, match=r"\.\.\. \(2990 more\); fill them in") as err:
        read_csv_table(path, "label")
    assert len(str(err.value)) < 400


# ----------------------------------------------------------------------------------------------------------------
# validation columns by name
# ----------------------------------------------------------------------------------------------------------------
def _train_val(tmp_path: Path, val_header: list[str]) -> tuple[Path, Path]:
    """A training file ``id, a, b, c, label`` and a validation file with ``val_header`` (the same values by name)."""
    rng = np.random.default_rng(1)
    header = ["id", "a", "b", "c", "label"]
    table = [dict(zip(header, (i, *np.round(rng.normal(size=3), 4), i % 2))) for i in range(30)]
    extra = {"note": 7.0, "d": 1.5}
    tmp_path.mkdir(exist_ok=True)
    train = write_csv(tmp_path / "train.csv", header, [tuple(r.values()) for r in table[:20]])
    val = write_csv(
        tmp_path / "val.csv", val_header, [tuple({**r, **extra}[c] for c in val_header) for r in table[20:]]
    )
    return train, val


def test_validation_columns_are_matched_by_name(tmp_path) -> None:
    same = _train_val(tmp_path / "same", ["id", "a", "b", "c", "label"])
    moved = _train_val(tmp_path / "moved", ["label", "c", "a", "b"])  # no id: drop needs it only in training
    modules = []
    for train, val in (same, moved):
        dm = CSVDataModule(train_path=str(train), val_path=str(val), target="label", drop=["id"])
        dm.setup("fit")
        modules.append(dm)
    assert modules[0].feature_names == modules[1].feature_names == ["a", "b", "c"]
    assert torch.equal(modules[0].x_val, modules[1].x_val) and torch.equal(modules[0].y_val, modules[1].y_val)


def test_extra_validation_columns_are_ignored_with_one_warning(tmp_path) -> None:
    train, val = _train_val(tmp_path, ["note", "c", "id", "d", "a", "b", "label"])
    dm = CSVDataModule(train_path=str(train), val_path=str(val), target="label", drop=["id"])
    with pytest.warns(LightregWarning, match=r"ignoring 2 column\(s\) that are not training features: note, d$"):
        dm.setup("fit")
    assert dm.x_val.shape == (10, 3)


def test_a_training_feature_missing_from_validation_is_one_line(tmp_path) -> None:
    train, val = _train_val(tmp_path, ["id", "b", "label", "d"])
    proc = run_train(
        "data=csv",
        f"data.train_path={train}",
        f"data.val_path={val}",
        "data.target=label",
        "data.drop=[id]",
        *QUIET,
        cwd=tmp_path,
    )
    _one_error(proc, "lacks 2 training feature column(s): a, c", "matched by name")


# ----------------------------------------------------------------------------------------------------------------
# task inference
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "task", "note"),
    [
        ([0, 1], "binary", None),
        (["no", "yes", "maybe"], "multiclass", None),
        ([0, 1, 2], "multiclass", "target 'y' has 3 integer values (0..2) -> multiclass; set data.task=regression"),
        (list(range(3, 13)), "multiclass", "10 integer values (3..12) -> multiclass"),
        (list(range(51)), "regression", "51 integer values (0..50) -> regression; set data.task=multiclass"),
        ([0.5, 1.0, 2.0], "regression", "non-integer values (e.g. 0.5) -> regression"),
    ],
)
def test_task_inference_says_what_it_chose(tmp_path, values: list, task: str, note: str | None) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "y"], [(i, values[i % len(values)]) for i in range(2 * len(values))])
    table = read_csv_table(path, "y")
    assert table.task == task
    assert table.note is None if note is None else note in table.note
    assert read_csv_table(path, "y", task=task).note is None  # an explicit task is never second-guessed aloud


@pytest.mark.parametrize("n_values", [11, 16, 50])
def test_counts_or_classes_is_the_users_call(tmp_path, n_values: int) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "y"], [(i, i % n_values) for i in range(2 * n_values)])
    with pytest.raises(UserError, match=rf"{n_values} integer values \(0..{n_values - 1}\): counts or classes\?"):
        read_csv_table(path, "y")
    with pytest.raises(UserError, match=r"data.task=multiclass .* or data.task=regression"):
        read_csv_table(path, "y")
    multi = read_csv_table(path, "y", task="multiclass")
    assert multi.classes == list(range(n_values)) and multi.y.max() == n_values - 1
    assert read_csv_table(path, "y", task="regression").y.dtype == np.float64


def test_explicit_tasks_on_a_count_target(tmp_path) -> None:
    counts = [0, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377]
    path = write_csv(tmp_path / "t.csv", ["a", "y"], [(i, counts[i % len(counts)]) for i in range(130)])
    dm = CSVDataModule(train_path=str(path), target="y", task="multiclass", batch_size=8)
    dm.setup("fit")
    assert dm.num_classes == 13 and dm.classes == counts
    assert sorted(set(dm.y_train.tolist()) | set(dm.y_val.tolist())) == list(range(13))
    dm = CSVDataModule(train_path=str(path), target="y", task="regression")
    dm.setup("fit")
    assert dm.num_classes is None and set(dm.y_train.tolist()) <= set(map(float, counts))


def test_the_inference_line_is_printed_once_at_setup(tmp_path, capsys) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "y"], [(i, i % 3) for i in range(30)])
    dm = CSVDataModule(train_path=str(path), target="y")
    dm.setup("fit")
    dm.setup("validate")
    out = capsys.readouterr().out
    assert out.count("lightreg: data: target 'y' has 3 integer values (0..2) -> multiclass") == 1, out
    CSVDataModule(train_path=str(path), target="y", task="multiclass").setup("fit")
    assert "lightreg: data:" not in capsys.readouterr().out


def test_a_bad_task_is_refused_at_construction() -> None:
    with pytest.raises(UserError, match=r"data.task must be one of binary, multiclass, regression or null.*'classes'"):
        CSVDataModule(train_path="t.csv", target="y", task="classes")


# ----------------------------------------------------------------------------------------------------------------
# rare classes
# ----------------------------------------------------------------------------------------------------------------
def test_a_single_row_class_stays_in_training_with_a_warning(tmp_path) -> None:
    rows = [(i, i % 3, ("cat", "dog")[i % 2]) for i in range(40)] + [(99, 1, "emu")]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], rows)
    dm = CSVDataModule(train_path=str(path), target="label", seed=3)
    with pytest.warns(LightregWarning, match=r"1 class\(es\) with a single row: 'emu'; kept in the training split"):
        dm.setup("fit")
    assert dm.classes == ["cat", "dog", "emu"] and dm.num_classes == 3
    assert 2 in dm.y_train.tolist() and 2 not in dm.y_val.tolist()
    assert len(dm.y_train) + len(dm.y_val) == 41 and sorted(set(dm.y_val.tolist())) == [0, 1]  # still stratified


def test_a_validation_split_too_small_for_every_class(tmp_path) -> None:
    rows = [(i, i % 2, i % 4) for i in range(8)]  # 4 classes of 2 rows; a 20 % split has 2 rows
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    for seed, val_fraction in [(s, 0.2) for s in range(8)] + [(0, 0.7)]:
        dm = CSVDataModule(train_path=str(path), target="y", seed=seed, val_fraction=val_fraction)
        with pytest.warns(LightregWarning, match="cannot hold each of the 4 classes: split at random, keeping a"):
            dm.setup("fit")
        assert sorted(set(dm.y_train.tolist())) == [0, 1, 2, 3]
        assert len(dm.y_val) == (2 if val_fraction == 0.2 else 4) and len(dm.y_train) + len(dm.y_val) == 8


def test_a_class_the_stratified_split_leaves_out_of_training_is_refused(tmp_path) -> None:
    rows = [(i, i % 5, 0 if i < 2 else 1 + i % 2) for i in range(42)]  # class 0 has 2 rows of 42
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    dm = CSVDataModule(train_path=str(path), target="y", val_fraction=0.9)  # 38 validation rows, both 0s among them
    with pytest.raises(UserError, match=r"1 class\(es\) have no row in the training split: 0; .*data.val_fraction"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("rows", "options", "fragment"),
    [
        ([(1, 0.5)], {}, r"1 row\(s\) with data.val_fraction=0.2: no row is left for training"),
        ([(1, 0.5), (2, 1.5)], {"val_fraction": 0.99}, "no row is left for training"),
        ([(i, "abc"[i]) for i in range(3)], {}, r"every class has a single row \(3 rows\)"),
    ],
)
def test_tables_too_small_to_split_are_one_line(tmp_path, rows, options, fragment: str) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "y"], rows)
    with pytest.raises(UserError, match=fragment):
        CSVDataModule(train_path=str(path), target="y", **options).setup("fit")


def test_singletons_through_the_cli(tmp_path) -> None:
    rows = [(i / 7, (i * 3) % 5, i % 3) for i in range(30)] + [(1.0, 2, 7), (0.5, 1, 9)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    proc = run_train("data=csv", f"data.train_path={path}", "data.target=y", *QUIET, "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stderr
    assert "lightreg: data: target 'y' has 5 integer values (0..9) -> multiclass" in proc.stdout
    assert "with a single row: 7, 9" in proc.stderr
    assert read_metrics(tmp_path / "run")["classes"] == [0, 1, 2, 7, 9]


def test_a_class_only_in_the_validation_file_is_one_line(tmp_path) -> None:
    train = write_csv(tmp_path / "train.csv", ["a", "label"], [(i, ("lo", "hi")[i % 2]) for i in range(12)])
    val = write_csv(tmp_path / "val.csv", ["a", "label"], [(1, "hi"), (2, "mid"), (3, "mid")])
    with pytest.raises(UserError, match=r"1 label\(s\) that the training data does not: 'mid' \(2 rows\)"):
        CSVDataModule(train_path=str(train), val_path=str(val), target="label").setup("fit")
