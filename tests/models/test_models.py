"""Models: output shapes, a fit on every sensible model x data pair, epoch aggregation, the extension points."""

from __future__ import annotations

import warnings
from functools import partial

import lightning as L
import pytest
import torch
from torch import nn

from lightreg.data import SklearnDataModule, SyntheticDataModule
from lightreg.models import MLP, LightregModule, LogisticRegression, tasks

MODELS = {"logistic": LogisticRegression, "mlp": MLP}


def _data(name: str, **kwargs):
    dm = SyntheticDataModule(**kwargs) if name == "synthetic" else SklearnDataModule(name=name, **kwargs)
    dm.setup("fit")
    return dm


def _model(cls: type[LightregModule], dm, optimizer=None, **kwargs) -> LightregModule:
    return cls(
        input_shape=dm.input_shape,
        num_classes=dm.num_classes,
        task=dm.task,
        optimizer=optimizer or partial(torch.optim.SGD, lr=0.1),
        print_epochs=False,
        **kwargs,
    )


def _fit(model: LightregModule, dm, **kwargs) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        **kwargs,
    )
    trainer.fit(model, datamodule=dm)
    return trainer


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


# ----------------------------------------------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(
    ("task", "num_classes", "width"), [("binary", 2, 1), ("multiclass", 4, 4), ("regression", None, 1)]
)
@pytest.mark.parametrize("input_shape", [(6,), (1, 2, 3)])
def test_output_shape(name: str, task: str, num_classes: int | None, width: int, input_shape) -> None:
    model = MODELS[name](input_shape=input_shape, num_classes=num_classes, task=task)
    out = model(torch.randn(5, *input_shape))
    assert out.shape == (5, width)
    targets = {"binary": torch.tensor([0.0, 1, 1, 0, 1]), "multiclass": torch.tensor([0, 1, 2, 3, 0])}
    y = targets.get(task, torch.randn(5))
    loss = tasks.data_loss(task, out, y)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_parameter_names() -> None:
    logistic = LogisticRegression(input_shape=(6,), num_classes=3, task="multiclass")
    assert [n for n, _ in logistic.named_parameters()] == ["net.linear.weight", "net.linear.bias"]
    assert logistic.net.linear.weight.shape == (3, 6)
    mlp = MLP(input_shape=(6,), num_classes=2, task="binary", hidden_sizes=[5, 4], dropout=0.1)
    names = [n for n, _ in mlp.named_parameters()]
    assert names == [f"net.{layer}.{p}" for layer in ("fc1", "fc2", "out") for p in ("weight", "bias")]
    assert mlp.net.fc1.weight.shape == (5, 6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"hidden_sizes": []}, "hidden_sizes"),
        ({"hidden_sizes": [4, 0]}, "hidden_sizes"),
        ({"activation": "swish"}, "'swish'"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_mlp_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        MLP(input_shape=(3,), num_classes=2, task="binary", **kwargs)


@pytest.mark.parametrize(("task", "num_classes"), [("multiclass", 1), ("multiclass", None), ("ordinal", 3)])
def test_bad_task(task: str, num_classes) -> None:
    with pytest.raises(ValueError):
        LogisticRegression(input_shape=(3,), num_classes=num_classes, task=task)


def test_no_optimizer_message() -> None:
    model = LogisticRegression(input_shape=(3,), num_classes=2, task="binary")
    with pytest.raises(RuntimeError, match="no optimizer"):
        model.configure_optimizers()


# ----------------------------------------------------------------------------------------------------------------
# fit every sensible pair
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", ["digits", "breast_cancer", "synthetic", "diabetes"])
@pytest.mark.parametrize("name", list(MODELS))
def test_fast_dev_run(name: str, data: str) -> None:
    dm = _data(data, batch_size=32)
    lr = 0.01 if data == "diabetes" else 0.1
    model = _model(MODELS[name], dm, optimizer=partial(torch.optim.SGD, lr=lr))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _fit(model, dm, fast_dev_run=True)
    assert trainer.global_step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "one step changed the weights"
    metrics = _metrics(trainer)
    expected = {"train/loss", "val/loss"} | (
        {"train/mae", "train/r2", "val/mae", "val/r2"} if dm.task == "regression" else {"train/acc", "val/acc"}
    )
    assert expected <= set(metrics), sorted(metrics)
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in expected)
    assert "train/penalty" not in metrics  # no penalty, no penalty figures


# ----------------------------------------------------------------------------------------------------------------
# epoch aggregation is sample-weighted
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "cls", "kwargs", "batch_size"),
    [
        ("synthetic", LogisticRegression, {"n_samples": 50}, 6),  # train 40 = 6*6 + 4, val 10 = 6 + 4
        ("iris", MLP, {}, 16),  # train 120 = 7*16 + 8, val 30 = 16 + 14
        ("diabetes", LogisticRegression, {}, 64),  # regression: train 353 = 5*64 + 33, val 89 = 64 + 25
    ],
)
def test_epoch_figures_are_sample_weighted(data: str, cls, kwargs: dict, batch_size: int) -> None:
    torch.manual_seed(0)
    dm = _data(data, batch_size=batch_size, **kwargs)
    assert dm.x_train.shape[0] % batch_size and dm.x_val.shape[0] % batch_size, "needs short last batches"
    model = _model(cls, dm, optimizer=partial(torch.optim.SGD, lr=0.0))  # the weights never change
    trainer = _fit(model, dm, max_epochs=1, num_sanity_val_steps=0)
    metrics = _metrics(trainer)
    model.eval()
    with torch.no_grad():
        for split, x, y in (("train", dm.x_train, dm.y_train), ("val", dm.x_val, dm.y_val)):
            full = float(model.batch_loss((x, y))[1])  # regression: the MSE of the standardized target
            assert metrics[f"{split}/loss"] == pytest.approx(full, rel=1e-6, abs=1e-6), split
            # and the test can tell: the plain mean of batch means is off
            batches = zip(x.split(batch_size), y.split(batch_size))
            batch_means = [float(model.batch_loss((xb, yb))[1]) for xb, yb in batches]
            assert abs(sum(batch_means) / len(batch_means) - full) > 1e-5 * max(1.0, abs(full))
            if dm.task != "regression":
                acc = float((tasks.predictions(dm.task, model(x)) == y.long()).float().mean())
                assert metrics[f"{split}/acc"] == pytest.approx(acc, abs=1e-6), split
            else:
                mae = float((model(x).squeeze(-1) - y).abs().mean())
                assert metrics[f"{split}/mae"] == pytest.approx(mae, rel=1e-5), split


# ----------------------------------------------------------------------------------------------------------------
# a user's own model: only builds self.net
# ----------------------------------------------------------------------------------------------------------------
class TanhNet(LightregModule):
    def __init__(self, hidden: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(self.num_inputs, hidden), nn.Tanh(), nn.Linear(hidden, self.num_outputs)
        )


def test_custom_subclass_trains() -> None:
    L.seed_everything(0, verbose=False)
    dm = _data("synthetic", batch_size=64)
    model = _model(TanhNet, dm, optimizer=partial(torch.optim.Adam, lr=0.02))
    trainer = _fit(model, dm, max_epochs=3)
    metrics = _metrics(trainer)
    assert trainer.current_epoch == 3
    assert metrics["val/acc"] > 0.8, metrics
    assert metrics["train/loss"] < 0.6, metrics


# ----------------------------------------------------------------------------------------------------------------
# extra_loss_terms: in the training loss, not in val/loss
# ----------------------------------------------------------------------------------------------------------------
C = 0.5


class WithL2(LogisticRegression):
    def extra_loss_terms(self, batch, output):
        return {"l2": C * self.net.linear.weight.pow(2).sum()}


def test_extra_loss_terms_change_the_gradient() -> None:
    dm = _data("breast_cancer", batch_size=32)
    plain = _model(LogisticRegression, dm)
    extra = _model(WithL2, dm)
    extra.load_state_dict(plain.state_dict())
    batch = next(iter(dm.train_dataloader()))
    grads = {}
    for key, model in (("plain", plain), ("extra", extra)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # self.log without a Trainer
            out = model.training_step(batch, 0)
        out["loss"].backward()
        grads[key] = (model.net.linear.weight.grad.clone(), model.net.linear.bias.grad.clone())
        if key == "extra":
            weight = model.net.linear.weight.detach()
            expected = float(out["data_loss"]) + C * float(weight.pow(2).sum())
            assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-6)
    weight = plain.net.linear.weight.detach()
    assert torch.allclose(grads["extra"][0] - grads["plain"][0], 2 * C * weight, atol=1e-6)
    assert torch.allclose(grads["extra"][1], grads["plain"][1])  # the bias is not in the term


def test_extra_loss_terms_logged_apart_and_not_in_val_loss() -> None:
    dm = _data("breast_cancer", batch_size=50)
    plain = _model(LogisticRegression, dm, optimizer=partial(torch.optim.SGD, lr=0.0))
    extra = _model(WithL2, dm, optimizer=partial(torch.optim.SGD, lr=0.0))
    extra.load_state_dict(plain.state_dict())
    term = C * float(plain.net.linear.weight.detach().pow(2).sum())
    a = _metrics(_fit(plain, dm, max_epochs=1, num_sanity_val_steps=0))
    b = _metrics(_fit(extra, dm, max_epochs=1, num_sanity_val_steps=0))
    assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-6)  # data loss only
    assert b["val/loss"] == pytest.approx(a["val/loss"], rel=1e-6)  # never the penalty
    assert b["train/penalty"] == pytest.approx(term, rel=1e-5)
    assert b["train/objective"] == pytest.approx(a["train/loss"] + term, rel=1e-5)
    assert "train/penalty" not in a and "train/objective" not in a


# ----------------------------------------------------------------------------------------------------------------
# built by Hydra: hyperparameters stay plain, so checkpoints load with torch.load(weights_only=True)
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "node",
    [
        {"_target_": "lightreg.models.LogisticRegression"},
        {"_target_": "lightreg.models.MLP", "hidden_sizes": [5, 3], "activation": "tanh"},
    ],
)
def test_hydra_built_model_checkpoint_loads_weights_only(node: dict, tmp_path) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    model = instantiate(OmegaConf.create(node), input_shape=(4,), num_classes=3, task="multiclass")
    assert model.hparams["input_shape"] == [4] or tuple(model.hparams["input_shape"]) == (4,)
    assert not any(OmegaConf.is_config(v) for v in model.hparams.values()), dict(model.hparams)
    path = tmp_path / "hp.pt"
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["hyper_parameters"] == dict(model.hparams)
    rebuilt = type(model)(**loaded["hyper_parameters"])
    rebuilt.load_state_dict(loaded["state_dict"])


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_data_loss_keeps_a_float64_model_in_float64(task: str) -> None:
    """An integer or float32 target does not pull a float64 model's loss down to float32 (the full-batch finish
    solves in float64 and needs the last digits), and a bf16 output does not round the target."""
    data_loss = tasks.data_loss
    target = torch.tensor([0, 1, 1, 0]) if task == "binary" else torch.tensor([0.1, 2.3, 4.5, 1234.5678])
    output = torch.randn(4, 1, dtype=torch.float64)
    loss = data_loss(task, output, target)
    assert loss.dtype == torch.float64
    exact = data_loss(task, output, target.double())
    assert loss.item() == exact.item()
    low = data_loss(task, output.to(torch.bfloat16), target)
    assert low.dtype == torch.float32
