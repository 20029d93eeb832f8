"""The pitfall doctor: each common hand-written-penalty mistake, reproduced, and the message it gets."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from lightreg.data import SyntheticDataModule
from lightreg.errors import UserError
from lightreg.models import MLP, LogisticRegression
from lightreg.models.doctor import check_terms, diagnose, reaches_parameter

from conftest import describe

# The common mistakes as LightregModule subclasses; also written to a file for the CLI tests.
SEED_MODELS = textwrap.dedent(
    '''
    import torch
    from lightreg.models import MLP, LogisticRegression

    L1 = 0.2


    class Seed000(LogisticRegression):
        """Seed 000: `loss + 0.5 * L1` with L1 = 0.2, a constant."""

        def extra_loss_terms(self, batch, output):
            return {"l1": 0.5 * L1}


    class Seed001(MLP):
        """Seed 001: the L1 norm of `layer.weight.data`, detached from autograd."""

        def extra_loss_terms(self, batch, output):
            return {"l1_first": 10.0 * torch.norm(self.net.fc1.weight.data, p=1)}


    class Seed002(MLP):
        """Seed 002: the L1 term, divided by the number of weights, subtracted instead of added."""

        def extra_loss_terms(self, batch, output):
            weights = [p for n, p in self.named_parameters() if "bias" not in n]
            l1 = sum(w.abs().sum() for w in weights) / sum(w.numel() for w in weights)
            return {"l1": -0.01 * l1}


    class Correct(MLP):
        """What the three meant: +lambda * sum |w| of the first layer's weight, through autograd."""

        def extra_loss_terms(self, batch, output):
            return {"l1_first": 1e-3 * self.net.fc1.weight.abs().sum()}
    '''
)
namespace: dict = {}
exec(compile(SEED_MODELS, "seed_models", "exec"), namespace)
Seed000, Seed001, Seed002, Correct = (namespace[k] for k in ("Seed000", "Seed001", "Seed002", "Correct"))

EXPECTED = {  # class, term name, phrases the message must contain
    "000": (Seed000, "l1", ["float (0.1)", "zero gradient", "loss + 0.5 * L1"]),
    "001": (Seed001, "l1_first", ["no autograd graph", "`.data`", "layer.weight.data"]),
    "002": (Seed002, "l1", ["is negative", "never subtracted", "loss - lam * L1"]),
}


def _model(cls: type, lr: float = 0.1) -> nn.Module:
    kwargs = {} if issubclass(cls, LogisticRegression) else {"hidden_sizes": [6]}
    return cls(
        input_shape=(10,),
        num_classes=2,
        task="binary",
        print_epochs=False,
        optimizer=functools.partial(torch.optim.SGD, lr=lr),
        **kwargs,
    )


def _fit(model: nn.Module, tmp_path: Path, epochs: int = 1) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=SyntheticDataModule(n_samples=60, batch_size=16))
    return trainer


@pytest.mark.parametrize("seed", sorted(EXPECTED))
def test_seed_mistake_stops_training_with_a_message_naming_the_term(seed: str, tmp_path: Path) -> None:
    cls, term, phrases = EXPECTED[seed]
    with pytest.raises(UserError) as info:
        _fit(_model(cls), tmp_path)
    message = str(info.value)
    assert f"{cls.__name__}.extra_loss_terms()[{term!r}]" in message
    for phrase in phrases:
        assert phrase in message, message


def test_a_correct_term_trains_and_is_logged_as_penalty(tmp_path: Path) -> None:
    model = _model(Correct)
    trainer = _fit(model, tmp_path)
    assert "train/penalty" in trainer.callback_metrics
    assert float(trainer.callback_metrics["train/penalty"]) > 0


@pytest.mark.parametrize(
    "term, phrase",
    [
        (lambda m: m.net.fc1.weight.abs().sum().item(), "is a float"),
        (lambda m: m.net.fc1.weight.detach().abs().sum(), "no autograd graph"),
        (lambda m: torch.tensor(0.2, requires_grad=True) * 3, "depends on none of"),
        (lambda m: m.net.fc1.weight.abs(), "must be a scalar"),
        (lambda m: m.net.fc1.weight.abs().sum() * float("nan"), "is nan"),
    ],
    ids=["item", "detach", "unconnected", "not-scalar", "nan"],
)
def test_other_pitfalls(term, phrase: str) -> None:
    model = _model(MLP)
    with pytest.raises(UserError, match=phrase):
        diagnose("t", term(model), model)


def test_reaches_parameter_through_a_deep_graph() -> None:
    model = _model(MLP)
    out = model(torch.randn(4, 10)).pow(2).mean()  # activity term: through the whole forward pass
    assert reaches_parameter(out, model)
    assert reaches_parameter(model.net.fc1.weight, model)  # a parameter itself
    assert not reaches_parameter(torch.randn(3, requires_grad=True).sum(), model)


def test_each_term_name_is_checked_once() -> None:
    model = _model(MLP)
    check_terms(model, {"ok": model.net.fc1.weight.abs().sum()})
    check_terms(model, {"ok": -model.net.fc1.weight.abs().sum()})  # already checked under this name: not again
    with pytest.raises(UserError, match="'new'"):
        check_terms(model, {"new": -model.net.fc1.weight.abs().sum()})


def test_val_loss_never_contains_the_extra_term(tmp_path: Path) -> None:
    """A huge hand-written term moves train/objective, never val/loss (the data loss of the unchanged weights)."""

    class Huge(MLP):
        def extra_loss_terms(self, batch, output):
            return {"big": 1e3 * self.net.fc1.weight.abs().sum()}

    model = _model(Huge, lr=0.0)  # weights stay as initialized
    data = SyntheticDataModule(n_samples=60, batch_size=16)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    with torch.no_grad():
        logits = model(data.x_val).squeeze(-1)
        expected = nn.functional.binary_cross_entropy_with_logits(logits, data.y_val)
    assert float(trainer.callback_metrics["val/loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(trainer.callback_metrics["train/penalty"]) > 100


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(EXPECTED))
def test_cli_reports_the_seed_mistake(seed: str, cli, tmp_path: Path) -> None:
    (tmp_path / "seed_models.py").write_text(SEED_MODELS)  # importable: `python -m` puts the cwd on sys.path
    cls, term, phrases = EXPECTED[seed]
    model = ["model=logistic"] if cls is Seed000 else ["model=mlp", "model.hidden_sizes=[6]"]
    run = tmp_path / "run"
    proc = cli(
        "data=synthetic",
        *model,
        f"model._target_=seed_models.{cls.__name__}",
        "trainer.max_epochs=1",
        "logger=none",
        f"hydra.run.dir={run}",
    )
    assert proc.returncode == 2, describe(proc)
    assert f"lightreg: error: {cls.__name__}.extra_loss_terms()[{term!r}]" in proc.stderr
    assert all(phrase in proc.stderr for phrase in phrases), proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"
