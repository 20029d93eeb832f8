"""The notebook "From the questions to lightreg" is stored without outputs and runs headless from top to bottom."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "from_questions_to_lightreg.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_and_shows_each_seed(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "weights identical with and without the 'penalty': True" in text  # seed 000 reproduced
    for seed in ("000", "001", "002"):
        assert f"lightreg: error: Seed{seed}.extra_loss_terms()" in text  # the doctor names each hand-written mistake
    assert "lambda must be a finite number >= 0, got -0.01" in text
    assert "exact zeros: 0 of 3320" in text  # seed 004: Adam + L1 in the loss
    assert "Selected inputs" in text and "Runs side by side" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 12
