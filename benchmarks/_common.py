"""Shared helpers of the benchmarks: one quiet Lightning fit of a lightreg model, a run built from the CLI's own
config, the seed-001 input support, markdown tables, timing callables over repeats (:func:`time_calls`) and jobs over
a process pool (:func:`run_jobs`). The benchmarks import it as ``benchmarks._common`` (run from the repository root)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from multiprocessing import Pool
from typing import Any, TypeVar

import lightning as L
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
logging.getLogger("lightning.fabric").setLevel(logging.ERROR)

K = TypeVar("K")
J = TypeVar("J")
R = TypeVar("R")

OPTIMIZERS = {
    "sgd": partial(torch.optim.SGD, lr=0.1, momentum=0.9),
    "adam": partial(torch.optim.Adam, lr=0.01),
}


def fit(
    model: L.LightningModule, datamodule: Any, callbacks: Sequence[L.Callback], epochs: int, precision: str = "32-true"
) -> dict[str, float]:
    """Fit without loggers, checkpoints or progress bars; validate once at the end. Returns the val figures."""
    from lightreg.cli.quiet import UNWATCHED_FIT

    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=list(callbacks),
        **UNWATCHED_FIT,
        check_val_every_n_epoch=epochs,
        accelerator="cpu",
        precision=precision,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    figures = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    figures["seconds"] = time.perf_counter() - started
    return figures


def cli_config(*overrides: str, dense: bool = False) -> DictConfig:
    """The config ``python -m train callbacks=none logger=none <overrides>`` composes (Hydra's own composition of
    ``lightreg.conf``; no checkpoints, loggers or progress bar, which need a Hydra run dir). ``dense``: the same run
    without any penalty (an experiment's ``penalty`` and ``extra_penalties`` removed)."""
    with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=["callbacks=none", "logger=none", *overrides])
    if dense:
        with open_dict(cfg):
            cfg.pop("penalty", None)
            cfg.extra_penalties = {}
    return cfg


def build_run(cfg: DictConfig) -> tuple[L.LightningModule, Any, list[L.Callback]]:
    """(model, datamodule, penalty callbacks) exactly as :func:`lightreg.cli.pipeline.train` builds them from ``cfg``
    (same seeding, the pipeline's own builders), without its loggers, checkpoints and sparsity report."""
    from lightreg.cli.build import build_penalty, penalty_configs
    from lightreg.cli.pipeline import build_data, build_model

    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_data(cfg)
    model = build_model(cfg, datamodule, print_epochs=False)
    return model, datamodule, [build_penalty(cfg, where) for where in penalty_configs(cfg)]


SEED_NETWORK = ("model.hidden_sizes=[6]",)
"""The original 10-6-2 network of the seed-001 problem, where ``experiment=seed001_exact`` now has 16 hidden units: the oracle,
adaptive-weights, prox-threshold and ring-path figures in docs/measured-figures.md were measured on it, so those scripts pin it."""


def seed_network_run(optimizer: str, rule: str, seed: int) -> list[str]:
    """Overrides for ``experiment=seed001_exact`` on :data:`SEED_NETWORK`, one optimizer, rule and data seed."""
    return ["experiment=seed001_exact", *SEED_NETWORK, f"optimizer={optimizer}", f"data.rule={rule}", f"seed={seed}"]


def dense_column_norms(overrides: Sequence[str], epochs: int) -> torch.Tensor:
    """The fc1 column norms (one per input) of the dense model of ``experiment=seed001_exact <overrides>`` after
    ``epochs`` epochs: the first estimate a group lasso starts from after its λ ramp."""
    model, dm, callbacks = build_run(cli_config(*overrides, dense=True))
    fit(model, dm, callbacks, epochs)
    return model.net.fc1.weight.detach().norm(dim=0)


def input_support(model: Any, n_informative: int = 2) -> tuple[int, int]:
    """Seed-001 setup: (uninformative input columns of ``net.fc1.weight`` that are exactly zero, informative
    columns kept); the informative inputs are the first ``n_informative``."""
    dropped = (model.net.fc1.weight.detach() == 0).all(dim=0)
    return int(dropped[n_informative:].sum()), int((~dropped[:n_informative]).sum())


def support_figures(model: Any, figures: Mapping[str, float]) -> dict[str, Any]:
    """Seed-001 result fields of a fitted ``model``: val acc and loss of ``figures``, ``exact`` (exactly the two
    informative input columns kept) and ``n_kept`` (input columns of ``net.fc1.weight`` with a non-zero entry)."""
    noise_zero, kept = input_support(model)
    return {
        "acc": figures["val/acc"],
        "val_loss": figures["val/loss"],
        "exact": noise_zero == 8 and kept == 2,
        "n_kept": int((model.net.fc1.weight.detach() != 0).any(dim=0).sum()),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def time_calls(
    fns: Mapping[K, Callable[[], Any]],
    repeats: int,
    *,
    calls: int | Mapping[K, int] = 1,
    warmup: int = 0,
    sync: Callable[[], None] | None = None,
    returns_seconds: bool = False,
) -> dict[K, list[float]]:
    """Time each callable of ``fns`` over ``repeats`` rounds, interleaved (every round times each callable in turn, so
    that a change of machine load hits them alike); one callable gives a plain series of ``repeats`` timings.

    First ``warmup`` untimed calls of each callable, in order. Then per round and callable: ``sync()`` (say,
    ``torch.cuda.synchronize``), ``calls`` calls (one number, or one per key), ``sync()``; the wall time between the
    two syncs over ``calls``. With ``returns_seconds`` each call returns its own seconds (a fit time that leaves out
    the set-up, say), and their mean over the ``calls`` replaces the wall time.

    Returns ``{key: [seconds per call, one per round, rounds in order]}``, in seconds (not milliseconds): take the
    ``statistics.median`` of a list, or of per-round ratios.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[K, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            n = calls if isinstance(calls, int) else calls[key]
            if returns_seconds:
                times[key].append(sum(float(fn()) for _ in range(n)) / n)
                continue
            if sync is not None:
                sync()
            started = time.perf_counter()
            for _ in range(n):
                fn()
            if sync is not None:
                sync()
            times[key].append((time.perf_counter() - started) / n)
    return times


def _indexed(fn: Callable[[J], R], item: tuple[int, J]) -> tuple[int, R]:
    return item[0], fn(item[1])


def run_jobs(
    fn: Callable[[J], R], jobs: Iterable[J], workers: int, on_result: Callable[[R], None] | None = None
) -> list[R]:
    """``fn(job)`` for every job, over a ``multiprocessing.Pool`` of ``workers`` processes (a script's ``--workers``),
    one job at a time per process. ``fn`` must be a module-level function (the pool pickles it by name) and set its
    own torch threads. ``on_result`` sees each result in this process as soon as its job ends (completion order: to
    append it to a file, so that an interrupted run resumes). No jobs: no pool.

    Returns ``fn``'s return values, in the order of ``jobs``.
    """
    jobs = list(jobs)
    results: list[Any] = [None] * len(jobs)
    if not jobs:
        return results
    with Pool(workers) as pool:
        for i, result in pool.imap_unordered(partial(_indexed, fn), enumerate(jobs), chunksize=1):
            results[i] = result
            if on_result is not None:
                on_result(result)
    return results
