"""Shared test helpers: run the real CLI (in this process, or in a subprocess where the process itself matters) and
read what it wrote; a quiet Lightning Trainer."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import lightning as L

QUIET = ["logger=none", "callbacks=none", "model.print_epochs=false"]


PROCESS_LEVEL = ("trainer=ddp", "trainer.strategy=ddp", "hydra/launcher=")
"""Overrides that make the process itself part of the test (DDP launches processes, a launcher other than Hydra's
basic one starts its own): :func:`run_train` runs those in a subprocess. A sweep with the basic launcher runs its
jobs one after another in this process, as it does under ``python -m train -m``."""


def run_train(
    *args: str, cwd: Path, process: bool | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m train *args`` with ``cwd`` as working folder; its exit code, stdout and stderr.

    By default in this process (the real entry point, ``train.main`` under Hydra, with ``sys.argv`` set: the same
    composition, run folder, checks, one-line errors and exit codes, without the 7 s start of a new Python). A
    subprocess with ``process=True``, or when an override needs one (:data:`PROCESS_LEVEL`)."""
    if process is None:
        process = any(a.startswith(PROCESS_LEVEL) for a in args)
    if process:
        env = dict(os.environ)
        env.pop("HYDRA_FULL_ERROR", None)  # the bad-input tests check that no traceback is printed
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
        return subprocess.run(
            [sys.executable, "-m", "train", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    return _train_in_process(list(args), Path(cwd))


def _console_handlers() -> list[logging.StreamHandler]:
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    return [h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler]


def _train_in_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``train.main`` as ``python -m train`` would (the working folder first on ``sys.path``), restoring what a
    run changes process-wide: environment, working folder, ``sys.argv``, ``sys.path`` and the modules imported from
    the working folder, logging handlers, torch threads, the random generators' states, Hydra's global state."""
    import random

    import numpy as np
    import torch
    from hydra.core.global_hydra import GlobalHydra

    import train

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv, saved_cwd, saved_threads = dict(os.environ), sys.argv, os.getcwd(), torch.get_num_threads()
    saved_path, saved_modules = sys.path[:], set(sys.modules)
    saved_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    named = {name: lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    saved_named = {name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled) for name, lg in named.items()}
    moved = []
    for handler in _console_handlers():  # e.g. Lightning's own handler, made when it was first imported
        to_stdout = handler.stream is sys.stdout or "stdout" in str(getattr(handler.stream, "name", ""))
        moved.append((handler, handler.setStream(out if to_stdout else err)))
    os.environ.pop("HYDRA_FULL_ERROR", None)
    sys.argv = ["train", *args]
    sys.path.insert(0, str(cwd))  # python -m puts the working folder first: a user's model module is found there
    os.chdir(cwd)
    GlobalHydra.instance().clear()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            train.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(cwd)):
                del sys.modules[name]  # the next test's folder may hold another module of that name
        torch.set_rng_state(saved_rng[0])
        np.random.set_state(saved_rng[1])
        random.setstate(saved_rng[2])
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(saved_threads)
        for handler in root.handlers:
            if handler not in saved_root[0]:
                handler.close()
        root.handlers[:], _ = saved_root[0], root.setLevel(saved_root[1])
        for name, (handlers, level, propagate, disabled) in saved_named.items():
            lg = named[name]
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
        for handler, stream in moved:
            handler.setStream(stream)
    return subprocess.CompletedProcess(["python", "-m", "train", *args], code, out.getvalue(), err.getvalue())


def run_cli(
    run_dir: Path, *overrides: str, check: bool = True, process: bool | None = None
) -> subprocess.CompletedProcess:
    """``python -m train <overrides> hydra.run.dir=<run_dir>`` (:func:`run_train`); raises with stderr when it fails
    and ``check``."""
    result = run_train(*overrides, f"hydra.run.dir={run_dir}", cwd=Path(run_dir).parent, process=process)
    if check and result.returncode != 0:
        raise AssertionError(f"python -m train {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
    return result


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def quiet_trainer(callbacks: Iterable[L.Callback] = (), **options: Any) -> L.Trainer:
    """A CPU ``L.Trainer`` without logger, checkpoints, progress bar or model summary, 1 epoch; ``options`` override."""
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
    )
    return L.Trainer(callbacks=list(callbacks), **{**defaults, **options})


def seeded_mlp(
    hidden_sizes: list[int],
    optimizer: Callable[..., Any] | None,
    *,
    data: Any = None,
    cls: type | None = None,
    seed: int = 0,
) -> Any:
    """A small :class:`~lightreg.models.MLP` (or its subclass ``cls``) built right after ``torch.manual_seed(seed)``, so
    its initial weights are the same in every test that asks for the same one: ``data``'s input shape, classes and
    task (a datamodule), else 10 inputs and a binary task; no epoch lines."""
    import torch

    from lightreg.models import MLP

    shape = dict(input_shape=(10,), num_classes=2, task="binary")
    if data is not None:
        shape = dict(input_shape=data.input_shape, num_classes=data.num_classes, task=data.task)
    torch.manual_seed(seed)
    return (cls or MLP)(hidden_sizes=hidden_sizes, optimizer=optimizer, print_epochs=False, **shape)


def composed(run_dir: Path, *overrides: str) -> Any:
    """The config ``python -m train <overrides>`` composes, with its run folder at ``run_dir`` (as Hydra would set
    it): the in-process twin of :func:`run_cli` (lightning-hydra-template's way)."""
    from hydra import compose, initialize_config_module
    from omegaconf import open_dict

    with initialize_config_module(config_module="lightreg.conf", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


def train_in_process(run_dir: Path, *overrides: str) -> dict:
    """Check and run the composed config through the CLI's own pipeline (a single run or a λ path) in this process;
    returns what it wrote to ``metrics.json``."""
    from lightreg.cli.checks import check_config
    from lightreg.cli.job import run

    cfg = composed(run_dir, *overrides)
    check_config(cfg)
    run(cfg)
    return read_metrics(run_dir)


class InThisThread:
    """A stand-in for ``ThreadPoolExecutor`` whose ``submit`` runs the call at once, in this thread: CLI runs in this
    process share ``sys.stdout``, ``sys.argv`` and the working folder, so they cannot overlap."""

    def __enter__(self) -> InThisThread:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future
