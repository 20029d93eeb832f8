"""A λ path over coupled channel groups (``penalty.groups=coupled``): the groups are traced once for the whole path,
the gradient bound takes each group's norm over all of its slices, and λ_max empties every coupled group."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from torch import Tensor, nn

from lightreg.callbacks import coupled_regularization
from lightreg.callbacks.coupled_regularization import bind_coupled
from lightreg.lambda_path.runner import gradient_bound
from lightreg.models import CNN, LightregModule
from lightreg.penalties.coupled import CoupledGroupLasso

from conftest import describe, run_train
from helpers import QUIET, read_metrics


class _Residual(LightregModule):
    """``head(relu(h + back(relu(inner(h)))))`` with ``h = relu(stem(x))``: a residual add ties ``stem``'s and
    ``back``'s outputs into one stream of 4 channels, read by ``inner`` and ``head``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = nn.ModuleDict(
            {"stem": nn.Linear(6, 4), "inner": nn.Linear(4, 5), "back": nn.Linear(5, 4), "head": nn.Linear(4, 3)}
        )

    def forward(self, x: Tensor) -> Tensor:
        net = self.net
        h = torch.relu(net["stem"](x))
        return net["head"](torch.relu(h + net["back"](torch.relu(net["inner"](h)))))


def _by_hand(grads: dict[str, Tensor]) -> list[Tensor]:
    """Every coupled group of :class:`_Residual` written out: each stream channel ``k`` (the rows of ``stem`` and
    ``back`` with their biases, the columns of ``inner`` and ``head``) and each inner unit ``j`` (a row of ``inner``
    with its bias, a column of ``back``)."""
    g = {name.removeprefix("net."): t for name, t in grads.items()}
    stream = [
        torch.cat([g["stem.weight"][k], g["stem.bias"][k : k + 1], g["back.weight"][k], g["back.bias"][k : k + 1],
                   g["inner.weight"][:, k], g["head.weight"][:, k]])
        for k in range(4)
    ]  # fmt: skip
    inner = [torch.cat([g["inner.weight"][j], g["inner.bias"][j : j + 1], g["back.weight"][:, j]]) for j in range(5)]
    return stream + inner


def _group_lambda(v: np.ndarray, rho: float) -> float:
    """The λ with ``‖S(v, λρ)‖ = λ(1 − ρ)√size`` (``‖v‖/√size`` for ρ = 0)."""
    if rho == 0:
        return float(np.linalg.norm(v) / np.sqrt(v.size))

    def gap(lam: float) -> float:  # decreasing: ‖v‖ > 0 at λ = 0, negative once λρ ≥ max |v|
        return np.linalg.norm(np.maximum(np.abs(v) - lam * rho, 0)) - lam * (1 - rho) * np.sqrt(v.size)

    return brentq(gap, 0.0, np.abs(v).max() / rho, xtol=1e-14, rtol=1e-13)


@pytest.mark.parametrize("rho", [0.0, 0.5], ids=["group_lasso", "sparse_group_lasso"])
def test_coupled_gradient_bound_matches_brute_force_over_every_slice(rho: float) -> None:
    torch.manual_seed(0)
    model = _Residual(input_shape=(6,), num_classes=3, print_epochs=False).double()
    x, y = torch.randn(40, 6, dtype=torch.float64), torch.randint(0, 3, (40,))
    penalty = bind_coupled(CoupledGroupLasso(rho), model, None, None)
    assert penalty.groups.num_groups == 9  # 4 stream channels, 5 inner units; head's outputs are the model's
    params = {n: p for n, p in model.named_parameters() if n in penalty.groups.names}
    bound = gradient_bound(model, [(x[:25], y[:25]), (x[25:], y[25:])], penalty, params)  # a sample-weighted mean

    loss = nn.functional.cross_entropy(model(x), y)
    names = [n for n, _ in model.named_parameters()]
    grads = dict(zip(names, torch.autograd.grad(loss, list(model.parameters()))))
    expected = max(_group_lambda(v.numpy(), rho) for v in _by_hand(grads))
    assert bound == pytest.approx(expected, rel=1e-5)

    # with every group zero over all of its slices no gradient reaches any group: the bound at the null model is 0,
    # which is why a coupled path searches λ_max from the initialization
    masks = penalty.groups.member_mask(params, torch.ones(9, dtype=torch.bool))
    with torch.no_grad():
        for name, p in params.items():
            p.masked_fill_(masks[name], 0.0)
    assert gradient_bound(model, [(x, y)], penalty, params) == 0.0


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "path.csv").open() as f:
        return list(csv.DictReader(f))


def _group_norms(checkpoint: Path) -> Tensor:
    """The coupled group norms of a path point's CNN, its groups traced anew."""
    model = CNN.load_from_checkpoint(checkpoint, map_location="cpu")
    penalty = bind_coupled(CoupledGroupLasso(), model, None, None)
    return penalty.unit_norms(dict(model.named_parameters()))


@pytest.mark.slow  # a λ_max search and three points of a CNN on 300 digits, 2 epochs each
@pytest.mark.parametrize("penalty", ["group_lasso", "sparse_group_lasso"])
def test_coupled_path_empties_every_group_at_lambda_max_and_warm_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, penalty: str
) -> None:
    traces = []
    trace = coupled_regularization.coupled_layout
    monkeypatch.setattr(coupled_regularization, "coupled_layout", lambda *a, **k: traces.append(1) or trace(*a, **k))
    run = tmp_path / "run"
    proc = run_train(
        "model=cnn", "data=digits_images", "data.limit=300", f"+penalty={penalty}", "penalty.groups=coupled",
        "+path=geometric", "path.num=3", "path.min_ratio=0.05", "path.epochs_per_lambda=2", "path.bisect_steps=1",
        "path.checkpoints=all", *QUIET, f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    assert len(traces) == 1, "the coupled groups are traced once for the whole path, search included"
    metrics, rows = read_metrics(run), _rows(run)
    assert metrics["lambda_max_source"] == "search" and float(rows[0]["lambda"]) == metrics["lambda_max"]
    assert metrics["path/groups"] == 16 + 32 + 64  # conv1's and conv2's filters, fc1's units (out's are outputs)
    # at λ_max every coupled group is zero over all of its slices (checked on the saved point, not only in path.csv);
    # removing them leaves the output layer's bias and one input of it
    assert int(rows[0]["groups_kept"]) == 0 and int(rows[0]["nnz"]) == 0
    assert bool((_group_norms(run / "checkpoints" / "lambda_00.ckpt") == 0).all())
    assert int(rows[0]["macs_after"]) < metrics["path/macs_before"] / 50
    # the first point below λ_max keeps groups: restarted from the initialization (zero is a saddle), then warm started
    assert int(rows[1]["groups_kept"]) > 0 and bool((_group_norms(run / "checkpoints" / "lambda_01.ckpt") > 0).any())
    assert [int(r["restarted"]) for r in rows] == [0, 1, 0]
    assert int(rows[2]["macs_after"]) > int(rows[0]["macs_after"])
    assert {int(r["features_kept"]) for r in rows} == {64}  # the pixels: out's columns (fc1's units) are no inputs
    for rule in ("best", "one_se"):
        k = metrics[f"{rule}/step"]
        assert metrics[f"{rule}/groups_kept"] == int(rows[k]["groups_kept"])
        assert metrics[f"{rule}/macs_after"] == int(rows[k]["macs_after"])
    assert (run / "plots" / "path.png").is_file()
    assert "groups" in proc.stdout and "MACs" in proc.stdout
