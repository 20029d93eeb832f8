"""The pure helpers of ``benchmarks/references/structured_sparsity.py``: MACs matching, non-zero count, the verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.references.structured_sparsity import markdown, nonzero, prune_to_macs

from lightreg.compact.pruning import count


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    )  # fmt: skip


def test_prune_to_macs_reaches_the_target_from_just_above() -> None:
    net, x = tiny_net(), torch.randn(4, 1, 8, 8)
    macs_before = count(net, x)[1]
    target = 0.5 * macs_before
    reached = prune_to_macs(net, x, target)
    assert reached == count(net, x)[1] <= target
    assert reached > 0.4 * macs_before  # fine steps: it stops at the first step below the target
    assert net[3].out_channels < 16 and net[0].out_channels < 8  # the same ratio in every layer
    assert net[7].out_features == 3 and net(x).shape == (4, 3)  # the output layer keeps its outputs


def test_prune_to_macs_leaves_a_model_already_below_the_target() -> None:
    net, x = tiny_net(), torch.randn(4, 1, 8, 8)
    macs = count(net, x)[1]
    assert prune_to_macs(net, x, macs) == macs and net[3].out_channels == 16


def test_nonzero_counts_a_masked_weight_through_its_mask() -> None:
    layer = nn.Linear(10, 4)
    prune.l1_unstructured(layer, "weight", amount=30)
    assert nonzero(layer) == 40 - 30 + 4


def test_the_verdict_says_when_the_penalty_route_is_less_accurate() -> None:
    def arm(name: str, acc: float) -> dict:
        return {"model": "cnn", "lambda": 0.01, "arm": name, "seeds": 3, "acc": acc, "acc_sd": 0.01,
                "acc_before_finetune": None, "params": 100, "nonzero": 100, "macs": 1000, "ms": 1.0,
                "sparsity": None}  # fmt: skip

    assert "LESS accurate than" in markdown([arm("penalty", 0.90), arm("magnitude", 0.92)])
    assert "at least as accurate as" in markdown([arm("penalty", 0.92), arm("magnitude", 0.92)])
