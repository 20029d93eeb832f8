"""Sparsity figures on hand-built tensors with known answers, and the monitor callback on frozen, hand-set weights."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from lightreg.callbacks import RegularizationCallback, SparsityMonitor
from lightreg.data import SyntheticDataModule
from lightreg.errors import UserError
from lightreg.models import MLP
from lightreg.penalties import L1
from lightreg.weight_stats import feature_selection, input_weight, magnitude_histogram, measure, totals, zero_groups

from helpers import seeded_mlp

# 3 units x 4 inputs: unit 1 dead (row zero), input 2 dropped (column zero), 6 zeros, 2 entries with 0 < |w| <= 1e-3
W = torch.tensor(
    [
        [1.0, 0.0005, 0.0, -2.0],
        [0.0, 0.0, 0.0, 0.0],
        [-0.001, 3.0, 0.0, 0.5],
    ]
)


def test_measure_linear_weight() -> None:
    (s,), masks = measure({"w": W}, atol=1e-3)
    assert (s.numel, s.zeros, s.nnz, s.near_zero) == (12, 6, 6, 8)
    assert (s.units, s.dead_units, s.inputs, s.dropped_inputs) == (3, 1, 4, 1)
    assert s.zero_fraction == pytest.approx(0.5) and s.near_zero_fraction == pytest.approx(8 / 12)
    assert s.churn is None  # no previous measurement
    assert torch.equal(masks["w"], W == 0)


def test_atol_zero_counts_exact_zeros_only() -> None:
    (s,), _ = measure({"w": W}, atol=0.0)
    assert s.near_zero == s.zeros == 6


def test_churn_counts_entries_that_changed_zero_status() -> None:
    _, masks = measure({"w": W})
    w2 = W.clone()
    w2[0, 0] = 0.0  # becomes zero
    w2[1, 1] = 0.3  # leaves zero
    w2[1, 2] = -0.2  # leaves zero
    (s,), _ = measure({"w": w2}, previous=masks)
    assert (s.to_zero, s.from_zero, s.churn) == (1, 2, 3)


def test_conv_weight_filters_and_channels() -> None:
    w = torch.ones(4, 3, 2, 2)  # 4 filters, 3 input channels
    w[1] = 0.0  # filter 1 dead
    w[:, 2] = 0.0  # input channel 2 dropped
    (s,), _ = measure({"conv": w})
    assert (s.dead_units, s.dropped_inputs, s.zeros) == (1, 1, 16 + 12 - 4)


def test_one_dimensional_tensor_has_no_units() -> None:
    (s,), _ = measure({"b": torch.tensor([0.0, 1.0, 0.0])})
    assert (s.zeros, s.units, s.dead_units, s.inputs, s.dropped_inputs) == (2, None, None, None, None)


def test_zero_groups_along_each_dim() -> None:
    zero = W == 0
    assert zero_groups(zero, 0).tolist() == [False, True, False]
    assert zero_groups(zero, 1).tolist() == [False, False, True, False]


def test_totals_sum_over_tensors() -> None:
    stats, masks = measure({"w": W, "v": torch.zeros(2, 2)})
    t = totals(stats)
    assert (t["numel"], t["zeros"], t["nnz"]) == (16, 10, 6)
    assert (t["dead_units"], t["units"], t["dropped_inputs"], t["inputs"]) == (3, 5, 3, 6)
    assert t["zero_fraction"] == pytest.approx(10 / 16)
    assert t["churn"] is None
    assert totals(measure({"w": W, "v": torch.zeros(2, 2)}, previous=masks)[0])["churn"] == 0


def test_measure_rejects_a_bad_tolerance() -> None:
    with pytest.raises(ValueError, match="-1"):
        measure({"w": W}, atol=-1)


def test_feature_selection_norms_and_names() -> None:
    f = feature_selection("w", W, names=["a", "b", "c", "d"])
    assert f.selected == [0, 1, 3] and f.dropped == [2]
    assert f.importance == pytest.approx([1.0, math.hypot(0.0005, 3.0), 0.0, math.hypot(2.0, 0.5)], rel=1e-6)
    d = f.as_dict()
    assert d["selected_names"] == ["a", "b", "d"] and d["dropped_names"] == ["c"] and d["count"] == 4


def test_feature_selection_ignores_names_of_the_wrong_length() -> None:
    f = feature_selection("w", W, names=["a", "b"])
    assert f.names is None and f.as_dict()["dropped_names"] == ["#2"]


def test_input_weight_is_the_first_matrix() -> None:
    named = [("bias0", torch.zeros(3)), ("fc1.weight", W), ("fc2.weight", W)]
    assert input_weight(named) == "fc1.weight"
    assert input_weight([("b", torch.zeros(3))]) is None


def test_magnitude_histogram_counts_every_entry() -> None:
    h = magnitude_histogram(W, bins=10)
    assert h.zeros == 6 and sum(h.counts) == 6
    assert len(h.edges) == 11
    assert h.edges[0] == pytest.approx(0.0005) and h.edges[-1] == pytest.approx(3.0)
    h = magnitude_histogram(torch.tensor([0.001, -0.03, 1.0, 0.0]), bins=2)  # edges 1e-3, 10^-1.5, 1
    assert h.edges == pytest.approx([0.001, 10**-1.5, 1.0]) and h.counts == [2, 1] and h.zeros == 1


def test_magnitude_histogram_of_zeros_and_of_equal_entries() -> None:
    assert magnitude_histogram(torch.zeros(5)).as_dict() == {"edges": [], "counts": [], "zeros": 5}
    h = magnitude_histogram(torch.full((4,), 0.1), bins=3)
    assert sum(h.counts) == 4 and h.edges[0] < 0.1 < h.edges[-1]


# -- the callback ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"atol": -1.0}, "-1.0"),
        ({"every_n_steps": -2}, "-2"),
        ({"histogram_bins": 0}, "0"),
        ({"exclude": "x"}, "include"),
    ],
)
def test_monitor_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        SparsityMonitor(**kwargs)


def _frozen_mlp() -> MLP:
    """MLP 10-3-2 (binary: 1 logit) with SGD lr=0, so its hand-set weights stay as set during fit."""
    model = seeded_mlp([3], functools.partial(torch.optim.SGD, lr=0.0))
    with torch.no_grad():
        model.net.fc1.weight.fill_(1.0)
        model.net.fc1.weight[:, 2:] = 0.0  # inputs x2..x9 dropped: 24 zeros of 30
        model.net.fc1.weight[1] = 0.0  # unit 1 dead: +2 zeros
        model.net.out.weight.fill_(0.5)
    return model


def _fit(tmp_path: Path, *callbacks: L.Callback) -> L.Trainer:
    data = SyntheticDataModule(n_samples=40, batch_size=16)
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=list(callbacks),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_frozen_mlp(), datamodule=data)
    return trainer


def test_monitor_logs_known_figures_and_writes_sparsity_json(tmp_path: Path) -> None:
    trainer = _fit(tmp_path, SparsityMonitor(atol=0.0))
    m = trainer.callback_metrics
    assert float(m["sparsity/net.fc1.weight"]) == pytest.approx(26 / 30)
    assert float(m["sparsity/net.out.weight"]) == 0.0
    assert float(m["sparsity/total"]) == pytest.approx(26 / 33)
    assert float(m["sparsity/nnz"]) == 7 and float(m["features/selected"]) == 2
    assert float(m["sparsity/dead_units"]) == 1 and float(m["sparsity/dropped_inputs"]) == 8
    assert float(m["sparsity/churn"]) == 0  # frozen weights: nothing changed between epochs
    summary = json.loads((tmp_path / "sparsity.json").read_text())
    assert summary["features"]["selected_names"] == ["x0", "x1"]
    assert summary["features"]["dropped"] == list(range(2, 10))
    assert [layer["name"] for layer in summary["layers"]] == ["net.fc1.weight", "net.out.weight"]
    assert [r["epoch"] for r in summary["history"]] == [0, 1]
    assert all("train/loss" in r["metrics"] and "val/loss" in r["metrics"] for r in summary["history"])
    assert summary["histograms"]["net.fc1.weight"]["zeros"] == 26
    assert summary["penalties"] == []


def test_monitor_watches_what_the_regularizer_penalizes(tmp_path: Path) -> None:
    reg = RegularizationCallback(L1(), 1e-3, include=["net.out.weight"])
    trainer = _fit(tmp_path, reg, SparsityMonitor())
    assert "sparsity/net.fc1.weight" not in trainer.callback_metrics
    summary = json.loads((tmp_path / "sparsity.json").read_text())
    assert [layer["name"] for layer in summary["layers"]] == ["net.out.weight"]
    assert summary["penalties"][0] | {"penalty": None} == {
        "name": "l1",
        "penalty": None,
        "strength": 1e-3,
        "mode": "prox",
        "params": ["net.out.weight"],
    }
    assert summary["features"]["layer"] == "net.fc1.weight"  # the inputs are still read off the first layer


def test_monitor_step_logging_only_when_asked(tmp_path: Path) -> None:
    assert "sparsity/total_step" not in _fit(tmp_path, SparsityMonitor()).callback_metrics
    trainer = _fit(tmp_path, SparsityMonitor(every_n_steps=2))
    assert float(trainer.callback_metrics["sparsity/total_step"]) == pytest.approx(26 / 33)


def test_monitor_rejects_an_unknown_input_layer(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"net\.fc9\.weight"):
        _fit(tmp_path, SparsityMonitor(input_layer="net.fc9.weight"))


@pytest.mark.filterwarnings("ignore:Checkpoint directory")
def test_resumed_run_keeps_the_history(tmp_path: Path) -> None:
    def fit(epochs: int, ckpt_path: str | None) -> dict:
        trainer = L.Trainer(
            max_epochs=epochs,
            callbacks=[SparsityMonitor()],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        trainer.fit(_frozen_mlp(), datamodule=SyntheticDataModule(n_samples=40, batch_size=16), ckpt_path=ckpt_path)
        return json.loads((tmp_path / "sparsity.json").read_text())

    fit(2, None)
    (last,) = (tmp_path / "checkpoints").glob("*.ckpt")
    history = fit(3, str(last))["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert all("train/loss" in r["metrics"] for r in history)
