"""Importing lightreg (the CLI module included) changes nothing process-wide: warning filters and display, torch's
thread count. The CLI sets its console up inside ``main`` only. (Lightning and matplotlib add warning filters when
they are imported; the probe imports them first, so only lightreg's own changes count.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import warnings, torch
state = lambda: (list(warnings.filters), warnings.showwarning, warnings.formatwarning, torch.get_num_threads())
import hydra, lightning, matplotlib, omegaconf, rich, sklearn, torchmetrics  # they add filters of their own
before = state()
import train, lightreg.cli.pipeline, lightreg.callbacks, lightreg.solvers.kkt, lightreg.solvers, lightreg.report
assert state() == before, "importing lightreg changed process-wide state"
with train.cli_console():
    assert warnings.showwarning is not before[1]
assert state() == before, "cli_console() did not restore the warning state"
print("ok")
"""


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: several seconds
def test_imports_and_cli_console_leave_no_global_state() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
