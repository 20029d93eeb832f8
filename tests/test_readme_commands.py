"""Every command the README and the docs pages show in their ```bash blocks runs as documented (shortened to one or
two epochs).

Placeholders are filled with the folders of runs made here: ``outputs/<date>/<time>`` and ``outputs/2026-...`` with
a finished penalty run, ``outputs/multirun/.../k`` with the jobs of the README's own sweep. Fragments (``...``)
and install lines are skipped.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from image_files import write_cifar10, write_idx_set

from conftest import describe, run_train
from helpers import InThisThread

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
"""The README and the user guide pages, whose commands users copy."""
SHORT = ["logger=none", "~callbacks.progress_bar"]


def readme_commands() -> list[str]:
    """The ``python -m train``, ``python -m lightreg.report`` and ``lightreg`` lines of the README's bash blocks
    (continuation lines joined, comments dropped), plus the shortcut a comment documents (``# or: lightreg ...``)."""
    commands = []
    blocks = [block for page in PAGES for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S)]
    for block in blocks:
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            code, _, comment = line.partition("  #")
            code = code.strip()
            if code.startswith(("python -m train", "python -m lightreg.report", "lightreg ")):
                commands.append(code)
            shortcut = re.search(r"or: (lightreg \S+)", comment)
            if shortcut:
                commands.append(shortcut.group(1))
    return list(dict.fromkeys(commands))  # a command shown on two pages runs once


def test_readme_commands_are_found() -> None:
    commands = readme_commands()
    assert "python -m train" in commands and any(c.startswith("lightreg outputs/") for c in commands)
    assert sum(c.startswith("python -m train") for c in commands) >= 8


IMAGE_SETS = {"mnist": "idx", "fashion_mnist": "idx", "cifar10": "cifar"}
"""Image configs that download their files: here they read files the test writes in the real formats."""


def _train_args(command: str, root: Path, name: str, previous: Path) -> list[str]:
    args = shlex.split(command.replace("outputs/<date>/<time>", str(previous)))[3:]
    epochs = "trainer.max_epochs=2" if any(a.startswith("ckpt_path=") for a in args) else "trainer.max_epochs=1"
    if "experiment=seed001_exact" in args or "experiment=seed001_mcp" in args:  # λ ramp and refit: 1 + 1 epochs
        args, epochs = [*args, "penalty.warmup_epochs=0", "penalty.refit_epochs=1"], "trainer.max_epochs=2"
    if "experiment=compact_resnet" in args:  # ResNet-18: a small training split keeps the docs check in seconds
        args = [*args, "data.limit=128", "penalty.warmup_epochs=0", "penalty.refit_epochs=1"]
        epochs = "trainer.max_epochs=2"  # one penalized epoch, one refit epoch
    args = [_shorter(a) for a in args]
    if any(a.startswith("+path=") for a in args) and not any(a.startswith("path.epochs_per_lambda=") for a in args):
        args.append("path.epochs_per_lambda=2")
    where = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    short = ["logger=none"] if "callbacks=none" in args else SHORT
    images = next((a.split("=", 1)[1] for a in args if a.split("=", 1)[-1] in IMAGE_SETS), None)
    if images is not None and not any(a.startswith("data.root=") for a in args):
        folder = root / f"{name}_files"
        write_idx_set(folder, images) if IMAGE_SETS[images] == "idx" else write_cifar10(folder)
        args += [f"data.root={folder}", "data.download=false"]
    return [*args, *short, epochs, f"{where}={root / name}"]


SHORTER = {"hydra.sweeper.n_trials": 3, "path.num": 4}
"""Sizes the README shows that this test runs smaller (the command is the same; its run is shorter)."""


def _shorter(arg: str) -> str:
    key, _, value = arg.partition("=")
    return f"{key}={min(int(value), SHORTER[key])}" if key in SHORTER and value.isdigit() else arg


def _expected_exit(command: str) -> int:
    """A sweep the README shows with a negative λ among its values ends with exit 2 (that job is bad input)."""
    return 2 if re.search(r"lambda=(\S*,)?-", command) else 0


def test_readme_commands_run(tmp_path: Path) -> None:
    commands = [
        c
        for c in readme_commands()
        if "..." not in c.replace("outputs/multirun/...", "")
        and not re.search(r"<\w+>", c.replace("outputs/<date>/<time>", ""))  # placeholders such as <partition>
    ]
    train = [c for c in commands if c.startswith("python -m train")]
    report = [c for c in commands if not c.startswith("python -m train")]
    previous = tmp_path / "previous"  # what `outputs/<date>/<time>` stands for: a finished penalty run
    first = run_train(
        "+penalty=l1", "lambda=0.001", *SHORT, "trainer.max_epochs=1", f"hydra.run.dir={previous}", cwd=tmp_path
    )
    assert first.returncode == 0, describe(first)
    with InThisThread() as pool:
        futures = {
            c: pool.submit(run_train, *_train_args(c, tmp_path, f"train{i}", previous), cwd=tmp_path)
            for i, c in enumerate(train)
        }
        failed = [
            f"{c}\n{describe(f.result())}" for c, f in futures.items() if f.result().returncode != _expected_exit(c)
        ]
    assert not failed, "\n\n".join(failed)
    sweep = next(tmp_path / f"train{i}" for i, c in enumerate(train) if c.startswith("python -m train -m "))
    _write_new_rows(tmp_path / "new.csv", previous)  # the DATA of `lightreg predict outputs/<date>/<time> new.csv`
    for command in report:
        filled = re.sub(r"outputs/multirun/\.\.\./(\d)", lambda m: str(sweep / m[1]), command)
        filled = re.sub(r"outputs/\S*", str(previous), filled) if "multirun" not in command else filled
        argv = shlex.split(filled)
        exe = (
            [sys.executable, "-m", "lightreg.report"]
            if argv[:3] == ["python", "-m", "lightreg.report"]
            else [str(Path(sys.executable).parent / "lightreg")]
        )
        proc = subprocess.run(
            [*exe, *argv[3 if exe[1:2] == ["-m"] else 1 :]], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert proc.returncode == 0, f"{filled}\n{describe(proc)}"
        assert "wrote " in proc.stdout


def _write_new_rows(path: Path, run: Path) -> None:
    """Raw rows for the model of ``run`` (its checkpoint's feature names), with an ``id`` column."""
    import torch

    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    names = state["hyper_parameters"]["feature_names"]
    lines = [",".join(["id", *names])]
    lines += [f"r{i}," + ",".join(f"{(i * 7 + j * 3) % 11 / 5:.2f}" for j in range(len(names))) for i in range(5)]
    path.write_text("\n".join(lines) + "\n")
