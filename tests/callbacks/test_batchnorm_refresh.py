"""callbacks=bn_refresh: batch-norm running statistics recomputed on the training data before each validation, in a
plain LightningModule and through the real entry point; nothing else of training changes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightreg.callbacks import BatchNormRefresh
from lightreg.callbacks.batchnorm_refresh import refresh_batch_norm
from lightreg.data import TensorBatches
from lightreg.errors import UserError

from conftest import describe, run_train
from helpers import composed, quiet_trainer, read_metrics


def _net(dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(dropout), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )  # fmt: skip


def _shrunk(net: nn.Sequential, x: torch.Tensor) -> nn.Sequential:
    """Train-mode forwards (running averages with momentum 0.1) while the conv weights shrink by half each step."""
    net.train()
    with torch.no_grad():
        for _ in range(6):
            net(x)
            net[0].weight.mul_(0.5)
    return net


def _full_set_stats(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        a = net[0](x).transpose(0, 1).reshape(4, -1).double()
    return a.mean(1), a.var(1)  # unbiased, as BatchNorm's running_var


def test_refresh_gives_the_full_set_statistics_after_shrinking() -> None:
    x = torch.randn(64, 1, 6, 6) * 2 + 1
    net = _shrunk(_net(), x)
    mean, var = _full_set_stats(net, x)
    bn = net[1]
    net.eval()
    with torch.no_grad():
        stale = net(x)
        train_stats = F.batch_norm(net[0](x), mean.float(), var.float(), bn.weight, bn.bias, eps=bn.eps)
        target = net[5](net[4](net[2](train_stats)))
    assert (stale - target).abs().max() > 0.1  # the lagging running averages change what eval mode computes
    weights = [p.clone() for p in net.parameters()]
    assert refresh_batch_norm(net, [(x, torch.zeros(64))]) == 1  # one batch: the whole training set
    torch.testing.assert_close(bn.running_mean.double(), mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(bn.running_var.double(), var, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(net(x), target, rtol=0, atol=1e-4)
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights, strict=True))


def test_several_batches_average_their_statistics() -> None:
    x = torch.randn(64, 1, 6, 6)
    net = _shrunk(_net(), x)
    chunks = x.split(16)
    assert refresh_batch_norm(net, [(c, None) for c in chunks]) == 4
    mean, _ = _full_set_stats(net, x)
    var = torch.stack([_full_set_stats(net, c)[1] for c in chunks]).mean(0)  # momentum=None: the batches' mean
    torch.testing.assert_close(net[1].running_mean.double(), mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(net[1].running_var.double(), var, rtol=0, atol=1e-5)
    assert int(net[1].num_batches_tracked) == 4
    assert refresh_batch_norm(net, [(c, None) for c in chunks], batches=2) == 2  # a bound on the batches
    torch.testing.assert_close(net[1].running_mean.double(), _full_set_stats(net, x[:32])[0], rtol=0, atol=1e-5)


def test_momentum_modes_rng_and_data_order_are_restored() -> None:
    net = _net(dropout=0.5)
    net[1].momentum = 0.3
    net.eval()
    net[3].train()  # a mixed state: one submodule in train mode
    modes = [m.training for m in net.modules()]
    loader = DataLoader(TensorDataset(torch.randn(40, 1, 6, 6), torch.zeros(40)), batch_size=8, shuffle=True)
    batches = TensorBatches(torch.randn(40, 1, 6, 6), torch.zeros(40), batch_size=8, shuffle=True, seed=3)
    batches.load_state_dict({"epoch": 2})
    rng = torch.get_rng_state()
    assert refresh_batch_norm(net, loader) == 5  # shuffling and dropout draw from the forked generator
    assert refresh_batch_norm(net, batches) == 5
    assert torch.equal(torch.get_rng_state(), rng)
    assert batches.state_dict() == {"epoch": 2}  # the next training epoch sees the same permutation
    assert net[1].momentum == 0.3
    assert [m.training for m in net.modules()] == modes


def test_a_model_without_batch_norm_is_left_alone() -> None:
    class Untouchable:
        def __iter__(self) -> None:
            raise AssertionError("the loader must not be read for a model without BatchNorm")

    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    assert refresh_batch_norm(net, Untouchable()) == 0


@pytest.mark.parametrize("batches", [0, -1, 2.5, True, "all"])
def test_bad_batches_are_refused(batches: object) -> None:
    with pytest.raises(UserError, match=f"batches must be a positive integer or null.*{batches!r}"):
        BatchNormRefresh(batches=batches)  # type: ignore[arg-type]


class _Plain(L.LightningModule):
    """A user's own module (no lightreg base class) whose conv weights shrink after every optimizer step."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return F.cross_entropy(self(batch[0]), batch[1])

    def on_train_batch_end(self, *args: object) -> None:
        with torch.no_grad():
            self.net[0].weight.mul_(0.7)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_plain_lightning_validates_and_checkpoints_refreshed_statistics(tmp_path: Path) -> None:
    data = TensorDataset(torch.randn(48, 1, 6, 6), torch.randint(0, 3, (48,)))
    train, val = DataLoader(data, batch_size=16), DataLoader(data, batch_size=48)
    model = _Plain()
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="last")  # the newest weights
    trainer = quiet_trainer([BatchNormRefresh(), checkpoint], enable_checkpointing=True, max_epochs=2)
    trainer.fit(model, train, val)
    assert trainer.callback_metrics["bn_refresh/batches"] == 3
    expected = _net()
    expected.load_state_dict(model.net.state_dict())  # the final weights (no step after the last validation)
    refresh_batch_norm(expected, train)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["state_dict"]
    for name in ("running_mean", "running_var"):
        torch.testing.assert_close(getattr(model.net[1], name), getattr(expected[1], name), rtol=0, atol=1e-6)
        torch.testing.assert_close(saved[f"net.1.{name}"], getattr(expected[1], name), rtol=0, atol=1e-6)


def test_compact_resnet_experiment_refreshes(tmp_path: Path) -> None:
    cfg = composed(tmp_path, "experiment=compact_resnet")
    assert cfg.callbacks.bn_refresh._target_ == "lightreg.callbacks.BatchNormRefresh"
    assert "model_checkpoint" in cfg.callbacks  # on top of the default callbacks


RUN = ["model=cnn", "model.batch_norm=true", "model.dropout=0.3", "data=digits_images", "data.limit=256",
       "trainer.max_epochs=2", "logger=none", "model.print_epochs=false", "~callbacks.progress_bar"]  # fmt: skip


@pytest.mark.slow
def test_cli_refresh_changes_only_the_running_statistics(tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("plain", []), ("refresh", ["callbacks=bn_refresh", "callbacks.bn_refresh.batches=2"])):
        proc = run_train(*RUN, *extra, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
        assert proc.returncode == 0, describe(proc)
        runs[name] = read_metrics(tmp_path / name)
    assert runs["refresh"]["bn_refresh/batches"] == 2
    assert "bn_refresh/batches" not in runs["plain"]
    # same data order, dropout masks and weights: the training figures agree exactly
    assert runs["refresh"]["train/loss"] == runs["plain"]["train/loss"]
    assert runs["refresh"]["val/loss"] != runs["plain"]["val/loss"]


def _refresh_on_rank(rank: int, port: int, out: str) -> None:
    """One of two gloo ranks: refresh from a shard of its own (rank r: r + 1 batches, shifted by 3r), then average."""
    import torch.distributed as dist

    from lightreg.callbacks.batchnorm_refresh import average_over_ranks

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        net = _net()
        used = refresh_batch_norm(net, _shard(rank))

        def summed(t: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(t)
            return t

        average_over_ranks(net, used, summed)
        torch.save({"mean": net[1].running_mean, "var": net[1].running_var}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _shard(rank: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(rank)
    return [torch.randn(8, 1, 6, 6, generator=generator) + 3 * rank for _ in range(rank + 1)]


@pytest.mark.slow
def test_ddp_ranks_end_with_the_statistics_of_every_ranks_batches(tmp_path: Path) -> None:
    """Two processes with shards of different sizes and distributions: both end with the batch-weighted average of
    their refreshes, i.e. the statistics one process would compute from all three batches."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_refresh_on_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    alone = _net()
    refresh_batch_norm(alone, _shard(0) + _shard(1))  # one process over the same 3 batches
    for rank in ranks:
        torch.testing.assert_close(rank["mean"], alone[1].running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rank["var"], alone[1].running_var, rtol=1e-5, atol=1e-6)
    one_rank = _net()
    refresh_batch_norm(one_rank, _shard(1))
    assert not torch.allclose(one_rank[1].running_mean, alone[1].running_mean, atol=1e-2)  # the shards differ
