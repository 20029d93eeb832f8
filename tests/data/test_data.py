"""Data modules (sklearn sets, synthetic, CSV) and the TensorBatches loader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets
from sklearn.neighbors import KNeighborsClassifier

from lightreg.data import CSVDataModule, SklearnDataModule, SyntheticDataModule, TensorBatches, read_csv_table
from lightreg.data.synthetic import RULES
from lightreg.errors import UserError

from conftest import write_csv

# name: (n_samples, n_features, task, num_classes, sklearn loader)
SKLEARN = {
    "digits": (1797, 64, "multiclass", 10, datasets.load_digits),
    "breast_cancer": (569, 30, "binary", 2, datasets.load_breast_cancer),
    "wine": (178, 13, "multiclass", 3, datasets.load_wine),
    "iris": (150, 4, "multiclass", 3, datasets.load_iris),
    "diabetes": (442, 10, "regression", None, datasets.load_diabetes),
}
Y_DTYPE = {"binary": torch.float32, "multiclass": torch.long, "regression": torch.float32}


def _split_sizes(n: int, val_fraction: float) -> tuple[int, int]:
    n_val = math.ceil(n * val_fraction)  # sklearn's train_test_split rounds the test share up
    return n - n_val, n_val


def _assert_standardized_by_train(dm, raw) -> None:
    """Train columns: mean 0, std 1 (constant columns: 0); val columns are (x - train mean) / train std."""
    x_tr, x_va = dm.x_train.double(), dm.x_val.double()
    raw_tr, raw_va = raw.x_train.double(), raw.x_val.double()
    constant = raw_tr.std(dim=0, unbiased=False) == 0
    assert torch.allclose(x_tr.mean(0), torch.zeros(x_tr.shape[1], dtype=x_tr.dtype), atol=1e-5)
    std = x_tr.std(dim=0, unbiased=False)
    assert torch.allclose(std[~constant], torch.ones_like(std[~constant]), atol=1e-5)
    assert torch.all(std[constant] == 0)
    mean_tr = raw_tr.mean(0)
    std_tr = raw_tr.std(dim=0, unbiased=False).masked_fill(constant, 1.0)
    assert torch.allclose(x_va, (raw_va - mean_tr) / std_tr, atol=1e-4)
    # the validation columns are not standardized on their own statistics
    assert (x_va.mean(0) - 0).abs().max() > 1e-3
    assert (x_va.std(dim=0, unbiased=False)[~constant] - 1).abs().max() > 1e-3


# ----------------------------------------------------------------------------------------------------------------
# scikit-learn datasets
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SKLEARN))
def test_sklearn_module(name: str) -> None:
    n, d, task, num_classes, loader = SKLEARN[name]
    dm = SklearnDataModule(name=name, batch_size=32, seed=0)
    dm.setup("fit")
    n_tr, n_va = _split_sizes(n, 0.2)
    assert dm.x_train.shape == (n_tr, d) and dm.x_val.shape == (n_va, d)
    assert dm.y_train.shape == (n_tr,) and dm.y_val.shape == (n_va,)
    assert dm.x_train.dtype == torch.float32
    assert dm.y_train.dtype == Y_DTYPE[task] and dm.y_val.dtype == Y_DTYPE[task]
    assert (dm.task, dm.num_classes, dm.input_shape) == (task, num_classes, (d,))
    bunch = loader()
    assert dm.feature_names == [str(f) for f in bunch.feature_names]
    if task != "regression":
        assert set(dm.y_train.long().tolist()) == set(range(num_classes))
        assert set(dm.y_val.long().tolist()) == set(range(num_classes))  # stratified split
    raw = SklearnDataModule(name=name, batch_size=32, seed=0, standardize=False)
    raw.setup("fit")
    _assert_standardized_by_train(dm, raw)
    # the raw split holds exactly the dataset's rows
    both = torch.cat([raw.x_train, raw.x_val]).numpy()
    expected = bunch.data.astype(np.float32)
    assert np.array_equal(both[np.lexsort(both.T)], expected[np.lexsort(expected.T)])


def test_sklearn_split_is_seeded() -> None:
    a, b, c = (SklearnDataModule(name="wine", seed=s) for s in (1, 1, 2))
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)


def test_setup_twice_keeps_the_data() -> None:
    dm = SklearnDataModule(name="iris")
    dm.setup("fit")
    first = dm.x_train
    dm.setup("validate")
    assert dm.x_train is first


def test_val_fraction() -> None:
    dm = SklearnDataModule(name="digits", val_fraction=0.5)
    dm.setup("fit")
    assert (dm.x_train.shape[0], dm.x_val.shape[0]) == _split_sizes(1797, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "nope"}, "'nope'"),
        ({"batch_size": 0}, "got 0"),
        ({"batch_size": -3}, "got -3"),
        ({"batch_size": 2.5}, "got 2.5"),
        ({"val_fraction": 1.0}, "got 1.0"),
    ],
)
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        SklearnDataModule(**kwargs)


def test_full_batch_module() -> None:
    dm = SklearnDataModule(name="iris", batch_size=None)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1 and batches[0][0].shape[0] == dm.x_train.shape[0]


# ----------------------------------------------------------------------------------------------------------------
# synthetic
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES)
def test_synthetic_module(rule: str) -> None:
    dm = SyntheticDataModule(rule=rule, seed=0)
    dm.setup("fit")
    assert dm.x_train.shape == (800, 10) and dm.x_val.shape == (200, 10)
    assert (dm.task, dm.num_classes, dm.input_shape) == ("binary", 2, (10,))
    assert dm.y_train.dtype == torch.float32
    assert set(dm.y_train.tolist()) == {0.0, 1.0}
    assert dm.feature_names == [f"x{i}" for i in range(10)]
    raw = SyntheticDataModule(rule=rule, seed=0, standardize=False)
    raw.setup("fit")
    _assert_standardized_by_train(dm, raw)


@pytest.mark.parametrize("rule", RULES)
def test_synthetic_is_seeded(rule: str) -> None:
    a, b, c = (SyntheticDataModule(rule=rule, seed=s) for s in (4, 4, 5))
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)


def _dependence(x: np.ndarray, y: np.ndarray) -> float:
    """max(|corr(x, y)|, |corr(x², y)|): catches the linear, the cluster and the ring rules."""
    return max(abs(np.corrcoef(x, y)[0, 1]), abs(np.corrcoef(x**2, y)[0, 1]))


@pytest.mark.parametrize("n_informative", [2, 3])
@pytest.mark.parametrize("rule", RULES)
def test_synthetic_only_informative_columns_carry_signal(rule: str, n_informative: int) -> None:
    dm = SyntheticDataModule(n_samples=4000, n_features=10, n_informative=n_informative, rule=rule, seed=0)
    dm.setup("fit")
    x_tr, y_tr = dm.x_train.numpy(), dm.y_train.numpy()
    x_va, y_va = dm.x_val.numpy(), dm.y_val.numpy()
    k = n_informative
    # noise columns: independent of the label (n = 3200, so |corr| ~ 0.018 by chance)
    for j in range(k, 10):
        assert _dependence(x_tr[:, j], y_tr) < 0.07, f"noise column x{j} depends on y"
    # linear and ring: every informative column on its own; clusters only jointly (cluster means may cancel)
    if rule != "clusters":
        for j in range(k):
            assert _dependence(x_tr[:, j], y_tr) > 0.15, f"informative column x{j} does not depend on y"
    informative = KNeighborsClassifier(25).fit(x_tr[:, :k], y_tr).score(x_va[:, :k], y_va)
    noise = KNeighborsClassifier(25).fit(x_tr[:, k:], y_tr).score(x_va[:, k:], y_va)
    assert informative > 0.8, informative
    assert noise < 0.6, noise


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rule": "spiral"}, "'spiral'"),
        ({"n_informative": 0}, "got 0"),
        ({"n_informative": 11}, "got 11"),
        ({"n_samples": 3}, "got 3"),
    ],
)
def test_synthetic_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        SyntheticDataModule(**kwargs)


# ----------------------------------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------------------------------
def _table(n: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=(n, 3))
    label = (x[:, 0] > 3.0).astype(int)
    return [(*map(float, row[:2]), int(c), float(row[2])) for row, c in zip(x, label)]


def test_csv_without_val_path(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["f1", "f2", "label", "f3"], _table(50, 0))
    dm = CSVDataModule(train_path=str(path), target="label", batch_size=8, seed=0)
    dm.setup("fit")
    assert dm.x_train.shape == (40, 3) and dm.x_val.shape == (10, 3)
    assert (dm.task, dm.num_classes, dm.input_shape) == ("binary", 2, (3,))
    assert dm.feature_names == ["f1", "f2", "f3"]
    raw = CSVDataModule(train_path=str(path), target="label", seed=0, standardize=False)
    raw.setup("fit")
    _assert_standardized_by_train(dm, raw)
    again = CSVDataModule(train_path=str(path), target="label", seed=0)
    again.setup("fit")
    assert torch.equal(again.x_val, dm.x_val)


def test_csv_with_val_path(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["f1", "f2", "label", "f3"], _table(30, 0))
    val = write_csv(tmp_path / "val.csv", ["f1", "f2", "label", "f3"], _table(12, 1))
    dm = CSVDataModule(train_path=str(train), val_path=str(val), target="label", batch_size=8)
    dm.setup("fit")
    assert dm.x_train.shape == (30, 3) and dm.x_val.shape == (12, 3)  # no split: every row used
    assert dm.task == "binary"
    raw = CSVDataModule(train_path=str(train), val_path=str(val), target="label", standardize=False)
    raw.setup("fit")
    expected_raw = torch.tensor([[r[0], r[1], r[3]] for r in _table(12, 1)], dtype=torch.float32)
    assert torch.allclose(raw.x_val, expected_raw)
    _assert_standardized_by_train(dm, raw)


def test_csv_task_inference(tmp_path: Path) -> None:
    multi = write_csv(tmp_path / "m.csv", ["a", "y"], [(i, i % 3) for i in range(12)])
    reg = write_csv(tmp_path / "r.csv", ["a", "y"], [(i, i * 0.5 + 0.1) for i in range(12)])
    assert read_csv_table(multi, "y", None).task == "multiclass"
    table = read_csv_table(reg, "y", None)
    assert table.task == "regression" and table.y.dtype == np.float64
    dm = CSVDataModule(train_path=str(multi), target="y")
    dm.setup("fit")
    assert (dm.task, dm.num_classes, dm.y_train.dtype) == ("multiclass", 3, torch.long)
    dm = CSVDataModule(train_path=str(multi), target="y", task="regression")
    dm.setup("fit")
    assert (dm.task, dm.num_classes, dm.y_train.dtype) == ("regression", None, torch.float32)


@pytest.mark.parametrize(
    ("header", "rows", "target", "fragment"),
    [
        (["a", "y"], [(1, 0), (2, 1)], "zz", "'zz'"),
        (["a", "y"], [(1, 0), ("x", 1)], "y", "'x' is not a number"),
        (["a", "y"], [], "y", "no data rows"),
        (["a", "y"], [(1, 0), (2,)], "y", "line 3"),
        (["a", "y"], [(1, 0.5), (2, 1)], "y", None),  # inferred as regression: fine
    ],
)
def test_csv_bad_files(tmp_path: Path, header, rows, target, fragment) -> None:
    path = write_csv(tmp_path / "bad.csv", header, rows)
    if fragment is None:
        read_csv_table(path, target, None)
        return
    with pytest.raises(UserError, match=fragment):
        read_csv_table(path, target, None)


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        CSVDataModule(train_path=str(tmp_path / "absent.csv"), target="y").setup("fit")


# ----------------------------------------------------------------------------------------------------------------
# TensorBatches
# ----------------------------------------------------------------------------------------------------------------
def _epoch(loader: TensorBatches) -> list[torch.Tensor]:
    """The index batches of one epoch (the loader batches ``arange(n)`` as its first tensor)."""
    return [batch[0] for batch in loader]


def _loader(n: int = 10, **kwargs) -> TensorBatches:
    return TensorBatches(torch.arange(n), torch.arange(n) * 10, **kwargs)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_index_once(shuffle: bool) -> None:
    loader = _loader(10, batch_size=4, shuffle=shuffle)
    assert len(loader) == 3
    for _ in range(3):
        batches = list(loader)
        assert [len(b[0]) for b in batches] == [4, 4, 2]  # short last batch
        for idx, y in batches:
            assert torch.equal(y, idx * 10)  # tensors stay aligned
        assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(10))


def test_unshuffled_order_is_the_data_order() -> None:
    assert torch.equal(torch.cat(_epoch(_loader(7, batch_size=3))), torch.arange(7))


def test_full_batch() -> None:
    loader = _loader(10, batch_size=None, shuffle=True)
    assert len(loader) == 1
    (batch,) = _epoch(loader)
    assert sorted(batch.tolist()) == list(range(10))


def test_drop_last() -> None:
    loader = _loader(10, batch_size=4, shuffle=True, drop_last=True)
    assert len(loader) == 2
    batches = _epoch(loader)
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(torch.cat(batches).tolist())) == 8
    assert len(_loader(8, batch_size=4, drop_last=True)) == 2


def test_shuffle_per_epoch_and_seeded() -> None:
    a, b, c = (_loader(50, batch_size=7, shuffle=True, seed=seed) for seed in (3, 3, 4))
    a0, a1 = torch.cat(_epoch(a)), torch.cat(_epoch(a))
    b0, b1 = torch.cat(_epoch(b)), torch.cat(_epoch(b))
    c0 = torch.cat(_epoch(c))
    assert not torch.equal(a0, a1), "a new permutation every epoch"
    assert torch.equal(a0, b0) and torch.equal(a1, b1), "same seed and epoch, same order"
    assert not torch.equal(a0, c0)
    assert not torch.equal(a0, torch.arange(50))


def test_state_dict_round_trip() -> None:
    loader = _loader(30, batch_size=4, shuffle=True, seed=1)
    _epoch(loader)
    _epoch(loader)
    state = loader.state_dict()
    expected = torch.cat(_epoch(loader))
    resumed = _loader(30, batch_size=4, shuffle=True, seed=1)
    assert not torch.equal(torch.cat(_epoch(_loader(30, batch_size=4, shuffle=True, seed=1))), expected)
    resumed.load_state_dict(state)
    assert torch.equal(torch.cat(_epoch(resumed)), expected)
    assert resumed.state_dict() == loader.state_dict()


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (11, 3), (11, None), (5, 8)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sharding(monkeypatch, n: int, batch_size: int | None, shuffle: bool) -> None:
    per_rank = {}
    lengths = {}
    for rank in (0, 1):
        monkeypatch.setattr(TensorBatches, "_world", staticmethod(lambda rank=rank: (rank, 2)))
        loader = _loader(n, batch_size=batch_size, shuffle=shuffle, seed=2)
        lengths[rank] = len(loader)
        batches = _epoch(loader)
        assert len(batches) == len(loader)
        per_rank[rank] = torch.cat(batches)
    monkeypatch.undo()
    padded_n = math.ceil(n / 2) * 2
    assert lengths[0] == lengths[1]
    assert len(per_rank[0]) == len(per_rank[1]) == padded_n // 2
    # the ranks interleave the padded permutation: rank r takes positions r, r + 2, ...
    order = torch.cat(_epoch(_loader(n, batch_size=None, shuffle=shuffle, seed=2)))
    padded = torch.cat([order, order[: padded_n - n]])
    assert torch.equal(per_rank[0], padded[0::2]) and torch.equal(per_rank[1], padded[1::2])
    assert sorted(torch.cat([per_rank[0], per_rank[1]]).tolist()) == sorted(padded.tolist())
    assert set(torch.cat([per_rank[0], per_rank[1]]).tolist()) == set(range(n))


def test_distributed_full_batch_is_per_rank(monkeypatch) -> None:
    monkeypatch.setattr(TensorBatches, "_world", staticmethod(lambda: (1, 2)))
    (batch,) = _epoch(_loader(9, batch_size=None))
    assert len(batch) == 5


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        ((), {"batch_size": 2}, "at least one tensor"),
        ((torch.zeros(3), torch.zeros(4)), {"batch_size": 2}, "differ in length"),
        ((torch.zeros(0),), {"batch_size": 2}, "empty"),
        ((torch.zeros(3),), {"batch_size": 0}, "got 0"),
    ],
)
def test_batches_bad_arguments(args, kwargs, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        TensorBatches(*args, **kwargs)
