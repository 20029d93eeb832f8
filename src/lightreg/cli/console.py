"""What a run shows, and keeps: epoch lines and the final block (80 columns), all of it copied into ``train.log``.

:func:`session` tees ``sys.stdout``/``sys.stderr`` (and the logging handlers writing to them) into the run folder's
``train.log`` on global rank zero, without the progress bar's redraws and colour codes, and quiets Lightning advice a
user cannot act on; :func:`final_block` prints the run's summary.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from lightreg.cli.quiet import UNACTIONABLE, loggers_at
from lightreg.run_folder import LOG_FILE

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_PROGRESS = re.compile(r"━.*\d+/\d+\s+\d+:\d\d:\d\d")


def global_rank() -> int:
    """The process's global rank from the launcher's environment (0 outside distributed runs)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


class _LogCopy:
    """Complete lines of console text into ``file``, without ANSI codes, carriage-return redraws or progress bars."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.pending = ""

    def write(self, text: str) -> None:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            line = _ANSI.sub("", line).rsplit("\r", 1)[-1].rstrip()
            if line and not _PROGRESS.search(line):
                self.file.write(line + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.pending.strip():
            self.write("\n")
        self.file.close()


class _Tee(io.TextIOBase):
    """A text stream that writes to the console stream and to the log copy."""

    def __init__(self, stream: TextIO, copy: _LogCopy) -> None:
        self.stream, self.copy = stream, copy

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.copy.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def _handlers() -> list[logging.Handler]:
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    return [h for lg in loggers for h in lg.handlers]


@contextmanager
def session(run_dir: str | Path) -> Iterator[None]:
    """Copy the console into ``run_dir/train.log`` (rank zero; replacing Hydra's log handler, whose records the
    console shows anyway) and silence :data:`lightreg.cli.quiet.UNACTIONABLE`; everything is restored on exit."""
    with warnings.catch_warnings():
        for pattern in UNACTIONABLE:
            warnings.filterwarnings("ignore", message=pattern)
        if global_rank() != 0:  # DDP's other processes: their set-up lines repeat rank zero's
            import lightning.pytorch  # noqa: F401 - its import sets these loggers' levels, which must come first

            with loggers_at(logging.WARNING, "lightning.pytorch", "lightning.fabric"):
                yield
            return
        path = Path(run_dir) / LOG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        copy = _LogCopy(path.open("a", encoding="utf-8"))
        out, err = sys.stdout, sys.stderr
        tees = {id(out): _Tee(out, copy), id(err): _Tee(err, copy)}
        moved: list[tuple[logging.StreamHandler, Any]] = []
        removed: list[tuple[logging.Logger, logging.Handler]] = []
        for handler in _handlers():
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path.resolve():
                for lg in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
                    if isinstance(lg, logging.Logger) and handler in lg.handlers:
                        lg.removeHandler(handler)
                        removed.append((lg, handler))
            elif isinstance(handler, logging.StreamHandler) and id(handler.stream) in tees:
                moved.append((handler, handler.setStream(tees[id(handler.stream)])))
        sys.stdout, sys.stderr = tees[id(out)], tees[id(err)]
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = out, err
            for handler, stream in moved:
                handler.setStream(stream)
            for lg, handler in removed:
                lg.addHandler(handler)
            copy.close()


def print_final_block(run_dir: str | Path, metrics: Mapping[str, Any]) -> None:
    """Print :func:`final_block` on global rank zero."""
    if global_rank() == 0:
        print(final_block(run_dir, metrics))


def final_block(run_dir: str | Path, metrics: Mapping[str, Any]) -> str:
    """The run's summary: folder, final ``val/*`` figures, checkpoints, and the sparsity line with a penalty."""
    # imported here: the models package loads Lightning, and the console is used before it (bad input exits fast)
    from lightreg.models.progress_line import format_number

    run_dir = Path(run_dir)
    rows = [("run folder", str(run_dir))]
    status = metrics.get("status", "?")
    if status != "completed":
        rows.append(("status", str(status)))
    val = [
        f"{k} {format_number(v)}"
        for k, v in sorted(metrics.items())
        if k.startswith("val/") and isinstance(v, (int, float))
    ]
    if val:
        epochs = metrics.get("epochs", "?")
        rows.append((f"after {epochs} epoch{'' if epochs == 1 else 's'}", "  ".join(val)))
    if metrics.get("classes") is not None:
        rows.append(("classes", ", ".join(map(str, metrics["classes"]))))
    checkpoints = sorted(run_dir.glob("checkpoints/*.ckpt"))
    if checkpoints:
        rows.append(("checkpoints", ", ".join(str(p.relative_to(run_dir)) for p in checkpoints)))
    sparsity = sparsity_line(run_dir, metrics)
    if sparsity:
        rows.append(("sparsity", sparsity))
    label = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{label}}  {v}" for k, v in rows)


def sparsity_line(run_dir: Path, metrics: Mapping[str, Any]) -> str | None:
    """``12.5% exact zeros (560 of 640 weights non-zero); inputs kept 8/10`` from ``sparsity.json``."""
    file = run_dir / "sparsity.json"
    if not file.is_file():
        return None
    try:
        summary = json.loads(file.read_text())
    except json.JSONDecodeError:
        return None
    total = summary.get("total", {})
    if "zero_fraction" not in total:
        return None
    line = f"{100 * total['zero_fraction']:.1f}% exact zeros ({total.get('nnz', '?')} non-zero of {total.get('numel', '?')})"
    features = summary.get("features")
    if features:
        line += f"; inputs kept {len(features['selected'])}/{features['count']}"
    return line


def discard_new_folder(run_dir: str | Path) -> bool:
    """Remove ``run_dir`` when it holds only what Hydra and :func:`session` wrote at the start of this run
    (``.hydra/`` and ``train.log``); anything else in it is kept. Returns whether it was removed."""
    import shutil

    run_dir = Path(run_dir)
    if global_rank() != 0 or not run_dir.is_dir() or {p.name for p in run_dir.iterdir()} - {".hydra", LOG_FILE}:
        return False
    shutil.rmtree(run_dir)  # (Hydra's date folder above it may stay, empty: it may not be this run's)
    return True
