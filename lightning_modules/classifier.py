"""SpikingClassifier: the LightningModule that trains a :class:`SpatialSNN`.

It takes the network as built (``net``; in a recipe ``model.net`` with
``class_path`` / ``init_args``, as Lightning's backbone example does) and owns
what training adds around it: the readout (membrane -> logits), the loss, the
accuracy metrics and the optimizer: one Adam(W) with two parameter groups,
*weights* (synaptic weights, biases, norms) and *positions* (neuron
coordinates and free delays), each with its own learning rate and schedule,
as DCLS-delays trains weights and delay positions with separate optimizers.

Batches are ``(spikes, labels)`` with spikes (B, T, C) as DataLoaders collate
them; the module transposes to the time-major (T, B, C) the layers use.
"""

from __future__ import annotations

import importlib
import math
from contextlib import ExitStack
from typing import Any, Literal, NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.checkpoints import input_differences, nonfinite_tensors
from lightning_modules.data.sampling import evaluation_sampler_problem
from lightning_modules.run_length import planned_steps
from spatial_layers import (
    NeuronPositions,
    SpatialDelay,
    count_parameters,
    delay_layers,
    use_kernel,
)
from spatial_layers.arguments import is_int
from spatial_layers.finite import NonFiniteInputError, raise_if_nonfinite
from spatial_layers.finite import describe as describe_nonfinite
from spatial_layers.networks import SNNOutput, SpatialSNN
from spatial_layers.networks.cuda_graphs import GraphedNetwork, check_cuda_graphs
from spatial_layers.networks.snn import swap_time_and_batch

Readout = Literal["max", "sum", "mean", "spike_count"]
ScheduleKind = Literal["cosine", "one_cycle", "none"]
READOUTS: tuple[str, ...] = ("max", "sum", "mean", "spike_count")

#: torch.optim.lr_scheduler.OneCycleLR's defaults, reused by :class:`LRFactor`.
ONE_CYCLE_PCT_START = 0.3
ONE_CYCLE_DIV_FACTOR = 25.0
ONE_CYCLE_FINAL_DIV_FACTOR = 1e4


class Prediction(NamedTuple):
    """What :meth:`SpikingClassifier.predict_step` returns for a batch of B samples.

    Attributes:
        label: (B,) true classes, or None for batches of spikes alone.
        prediction: (B,) predicted classes, ``readout.argmax(-1)``.
        readout: (B, num_classes) logits of the classifier's readout mode.
    """

    label: Tensor | None
    prediction: Tensor
    readout: Tensor


def readout_logits(output: SNNOutput, readout: Readout) -> Tensor:
    r"""Turns a network's (T, B, K) output into (B, K) logits for cross-entropy.

    - ``"max"``: :math:`\max_t U_t` (max over time of the readout membrane).
    - ``"sum"``: :math:`\sum_t \mathrm{softmax}(U_t)`, DCLS-delays' summed
      readout (cross-entropy is then taken on these sums).
    - ``"mean"``: :math:`\frac{1}{T}\sum_t U_t`.
    - ``"spike_count"``: :math:`\sum_t S_t` (needs a spiking output layer).
    """
    if readout == "max":
        return output.membrane.max(dim=0).values
    if readout == "sum":
        return output.membrane.softmax(dim=-1).sum(dim=0)
    if readout == "mean":
        return output.membrane.mean(dim=0)
    if readout == "spike_count":
        if output.spikes is None:
            raise ValueError("readout 'spike_count' needs a network built with spiking_output=True")
        return output.spikes.sum(dim=0)
    raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")


class LRFactor:
    """Learning-rate multiplier per optimizer step, for ``torch.optim.lr_scheduler.LambdaLR``.

    A plain object (not a closure) so that ``LambdaLR.state_dict()`` stores
    its few numbers and checkpoints stay loadable with ``weights_only=True``.

    Args:
        kind: ``"cosine"`` (from 1 down to 0 over ``total_steps``),
            ``"one_cycle"`` (torch's OneCycleLR shape: cosine warm-up from
            ``peak / 25`` to ``peak`` over the first 30 % of steps, then
            cosine down to ``peak / 25 / 1e4``) or ``"none"`` (constant 1).
        total_steps: number of optimizer steps of the whole run.
        peak: one-cycle peak, as a multiple of the base learning rate.
    """

    def __init__(self, kind: ScheduleKind, total_steps: int, peak: float = 1.0) -> None:
        if kind not in ("cosine", "one_cycle", "none"):
            raise ValueError(f"schedule must be 'cosine', 'one_cycle' or 'none', got {kind!r}")
        self.kind = kind
        self.total_steps = max(int(total_steps), 1)
        self.peak = float(peak)

    @staticmethod
    def _cos(start: float, end: float, fraction: float) -> float:
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))

    def __call__(self, step: int) -> float:
        if self.kind == "none":
            return 1.0
        if self.kind == "cosine":
            return self._cos(1.0, 0.0, step / self.total_steps)
        initial = self.peak / ONE_CYCLE_DIV_FACTOR
        final = initial / ONE_CYCLE_FINAL_DIV_FACTOR
        warmup_end = ONE_CYCLE_PCT_START * self.total_steps - 1
        if step <= warmup_end:
            return self._cos(initial, self.peak, step / max(warmup_end, 1))
        return self._cos(
            self.peak, final, (step - warmup_end) / max(self.total_steps - 1 - warmup_end, 1)
        )


class RunSchedule(torch.optim.lr_scheduler.LambdaLR):
    """LambdaLR over :class:`LRFactor` s that keeps the current run's plan when it loads a state.

    ``LambdaLR.load_state_dict`` also restores each factor's ``total_steps``: a
    resumed run with more epochs would follow the old, shorter schedule (with
    ``"cosine"``, learning rate 0 for every extra step). This one restores the
    step count and base rates, keeps the factors the resuming run configured,
    and sets each group's rate for the next step from them (the same numbers
    as the saved ones when the plan did not change). A new plan that ends at or before
    the checkpoint's step is refused: every further step would train at its final rate.
    """

    def load_state_dict(self, state_dict: dict) -> None:
        planned = [dict(vars(factor)) for factor in self.lr_lambdas]
        super().load_state_dict(state_dict)
        saved = [dict(vars(factor)) for factor in self.lr_lambdas]
        for factor, plan in zip(self.lr_lambdas, planned, strict=True):
            vars(factor).update(plan)
        for group, base, factor in zip(
            self.optimizer.param_groups, self.base_lrs, self.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(self.last_epoch)
        if saved != planned and planned[0]["total_steps"] <= self.last_epoch:
            raise ValueError(
                f"the checkpoint is at optimizer step {self.last_epoch}, but this run plans "
                f"{planned[0]['total_steps']} steps in all (it was planned for "
                f"{saved[0]['total_steps']}): its learning rates would stay at the schedule's "
                "end; raise trainer.max_epochs (or max_steps) so that the run goes on past "
                f"step {self.last_epoch}, or give the data the checkpoint was trained with"
            )
        if saved != planned:
            rank_zero_info(
                f"spsnn: resuming at optimizer step {self.last_epoch} of a run planned for "
                f"{saved[0]['total_steps']} steps, now for {planned[0]['total_steps']}: the "
                "learning rates follow the new schedule from here (learning rates now "
                f"{[group['lr'] for group in self.optimizer.param_groups]})"
            )


def parameters_finite(parameters: list[Tensor]) -> Tensor:
    """A 0-d bool tensor on the parameters' device: every value of every parameter is finite.

    One ``foreach`` max-norm over all of them and one reduction (no host sync, a handful
    of launches however many parameters): a NaN or Inf anywhere makes its norm non-finite.
    """
    norms = torch._foreach_norm([p.detach() for p in parameters], math.inf)
    return torch.stack(norms).isfinite().all()


def adam_implementation(parameters: list[Tensor]) -> dict[str, bool]:
    """How Adam(W) runs its step: ``{"fused": True}`` where every parameter is a float
    tensor on a device with torch's fused kernel (CPU and CUDA among them), else
    ``{"foreach": True}``.

    The same update rule either way (the numbers agree to float rounding): fused is one
    kernel for all parameters (two ops per step in all) with the step counts on the
    device, so the step needs no host sync; the default for-loop makes ~8 launches
    per parameter and, on CUDA without ``capturable``, reads every step count on the host.
    """
    supported = _get_fused_kernels_supported_devices()
    if parameters and all(p.is_floating_point() and p.device.type in supported for p in parameters):
        return {"fused": True}
    return {"foreach": True}


def nonfinite_parameters(module: nn.Module) -> list[str]:
    """Names of ``module``'s parameters holding NaN or Inf, with how many elements do.

    One device sync for the whole module (:func:`parameters_finite` read once), not one
    per parameter; the counts are computed only when something is wrong.
    """
    named = list(module.named_parameters())
    if not named or bool(parameters_finite([param for _, param in named])):
        return []
    finite = torch.stack([param.detach().isfinite().all() for _, param in named])
    return [
        f"{name} ({int((~param.detach().isfinite()).sum())} of {param.numel()} values)"
        for (name, param), ok in zip(named, finite.tolist(), strict=True)
        if not ok
    ]


#: Where a checkpoint keeps the data module's ``input_settings``.
INPUT_SETTINGS_KEY = "input_settings"


def label_problem(labels: object, num_classes: int, batch_size: int | None) -> str | None:
    """What is wrong with a batch's labels, or None: they must be a 1-D integer tensor
    (int64 or uint8, as ``cross_entropy`` takes them) of one class id in ``[0, num_classes)``
    per sample (``cross_entropy`` would silently skip the id -100).

    >>> label_problem(torch.tensor([0, 2, 3]), 3, 3)
    'hold 1 ids outside [0, 3) (num_classes), the first 3 at [2]'
    """
    if not isinstance(labels, Tensor):
        return f"are a {type(labels).__name__}, not a tensor"
    if labels.dtype not in (torch.int64, torch.uint8):  # what cross_entropy takes
        return f"are {labels.dtype}, not torch.long class ids"
    if labels.ndim != 1 or (batch_size is not None and len(labels) != batch_size):
        return f"have shape {tuple(labels.shape)}, not ({batch_size},): one class id per sample"
    if labels.is_cuda:  # checked on the host only (no GPU sync)
        return None
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if not bad.numel():
        return None
    first = int(bad[0])
    return (
        f"hold {bad.numel()} ids outside [0, {num_classes}) (num_classes), the first "
        f"{int(labels[first])} at [{first}]"
    )


def spikes_problem(spikes: object, num_steps: int | None, num_inputs: int) -> str | None:
    """What is wrong with a batch's spikes, or None: they must be a (B, T, C) tensor with
    ``T = num_steps`` (the data module's declared one, which the checkpoint records; not
    checked when None) and ``C = num_inputs`` (the network's).

    >>> spikes_problem(torch.zeros(8, 13, 5), 10, 5)
    'have 13 time steps (shape (8, 13, 5)), but the data module declares num_steps=10'
    """
    if not isinstance(spikes, Tensor):
        return f"are a {type(spikes).__name__}, not a (B, T, C) tensor"
    shape = tuple(spikes.shape)
    if spikes.ndim != 3:
        steps = "T" if num_steps is None else num_steps
        return f"have shape {shape}, not (B, T={steps}, C={num_inputs})"
    if num_steps is not None and shape[1] != num_steps:
        return (
            f"have {shape[1]} time steps (shape {shape}), but the data module declares "
            f"num_steps={num_steps}"
        )
    if shape[2] != num_inputs:
        return (
            f"have {shape[2]} channels (shape {shape}), but the network takes "
            f"num_inputs={num_inputs} (the data module's)"
        )
    return None


#: Lightning stage -> (split, loop attribute of the Trainer, its limit_*_batches attribute).
_STAGE_LOADERS = {
    "fit": (("train", "fit_loop", "limit_train_batches"),
            ("validation", "validate_loop", "limit_val_batches")),
    "validate": (("validation", "validate_loop", "limit_val_batches"),),
    "test": (("test", "test_loop", "limit_test_batches"),),
    "predict": (("predict", "predict_loop", "limit_predict_batches"),),
}  # fmt: skip


def loader_list(loaders: object) -> list:
    """A stage's loaders as Lightning holds them (one, a list or tuple, or a dict by name)
    as a list."""
    if isinstance(loaders, dict):
        return list(loaders.values())
    return list(loaders) if isinstance(loaders, list | tuple) else [loaders]


def empty_loaders(trainer: L.Trainer, stage: str) -> list[str]:
    """The loaders the ``stage`` will run that hold no sample (or no batch), as
    ``"<owner>.<split>_dataloader()"`` with what it holds; Lightning would skip them and
    go on (``fit`` with no training batch ends at once, exit status 0; an empty validation
    split leaves ``val_acc`` unlogged until the end of the first epoch). Loaders without a
    length (iterable datasets) and splits the trainer limits to 0 batches are not checked."""
    empty = []
    for split, loop_name, limit_name in _STAGE_LOADERS.get(stage, ()):
        loop = getattr(trainer, loop_name, None)
        if stage == "fit" and split == "validation":
            loop = trainer.fit_loop.epoch_loop.val_loop
        source = getattr(loop, "_data_source", None)
        if source is None or getattr(trainer, limit_name, 1) == 0 or not source.is_defined():
            continue
        loaders = loader_list(source.dataloader())
        owner = source.instance
        name = "the Trainer's" if owner is None else type(owner).__qualname__
        for loader in loaders:
            dataset = getattr(loader, "dataset", None)
            try:
                samples = len(dataset) if dataset is not None else None
                batches = len(loader)
            except TypeError:  # no length: an iterable dataset, known only when iterated
                continue
            if not samples or not batches:
                held = f"{samples} samples" if samples is not None else f"{batches} batches"
                empty.append(f"{name}.{source.name}() gives {held} (its {split} split)")
    return empty


def _input_settings(trainer: L.Trainer | None) -> dict | None:
    """The ``input_settings`` of the trainer's data module, or None (no trainer, no data
    module, or one that does not define them)."""
    datamodule = None if trainer is None else trainer.datamodule
    settings = getattr(datamodule, "input_settings", None)
    return dict(settings) if isinstance(settings, dict) else None


def _check_settings(**settings: float | None) -> None:
    """Raises ValueError naming the first of the classifier's numbers out of its range."""
    ranges = {
        "label_smoothing": (0.0, 1.0, "in [0, 1]"),
        "lr": (0.0, math.inf, "a positive finite number"),
        "peak_lr": (0.0, math.inf, "a positive finite number"),
        "position_lr": (0.0, math.inf, "a finite number >= 0"),
        "weight_decay": (0.0, math.inf, "a finite number >= 0"),
        "wiring_cost": (0.0, math.inf, "a finite number >= 0"),
    }
    for name, value in settings.items():
        if value is None:
            continue
        low, high, text = ranges[name]
        positive = name in ("lr", "peak_lr")
        inside = math.isfinite(value) and low <= value <= high and (value > 0 or not positive)
        if not inside:
            raise ValueError(f"{name} must be {text}, got {value}")


#: Where the network class a config or checkpoint names must come from.
TRUSTED_NETWORKS = "spatial_layers."


def network_from_config(config: dict) -> SpatialSNN:
    """The network ``{"class_path", "init_args"}`` describes (:func:`network_config`'s
    form), built from a class of :mod:`spatial_layers` only (never other code a
    checkpoint might name)."""
    class_path = str(config.get("class_path"))
    if not class_path.startswith(TRUSTED_NETWORKS):
        raise ValueError(
            f"net names {class_path!r}, not a network class of spatial_layers: build the "
            "network in Python and pass it as net="
        )
    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**dict(config.get("init_args") or {}))


def network_config(net: SpatialSNN) -> dict:
    """``{"class_path", "init_args"}`` of ``net``, as a recipe's ``model.net`` gives it.

    From the arguments the network recorded (``net.init_args``): plain data,
    so a checkpoint that holds it loads with ``weights_only=True``.
    """
    cls = type(net)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(net.init_args)}


class SpikingClassifier(L.LightningModule):
    """Spiking classifier with spatial delays: network, readout, loss, metrics, optimizers.

    The network is configured once, by its own arguments (see
    :class:`~spatial_layers.networks.SpatialSNN`); the CLI links the data
    module's ``num_inputs`` and ``num_classes`` into them and its
    ``num_steps`` into this module.

    Checkpoints store the network as ``hparams.net`` (``class_path`` and
    ``init_args``, :func:`network_config`). A checkpoint written under the
    CLI reloads with ``SpikingClassifier.load_from_checkpoint(path)``; one of
    a classifier built in Python with
    :func:`lightning_modules.evaluation.load_classifier` (or
    ``load_from_checkpoint(path, net=...)``).

    Args:
        net: the network (a :class:`~spatial_layers.networks.SpatialSNN`);
            ``readout="spike_count"`` needs one built with ``spiking_output=True``.
        num_steps: time steps per sample (recorded; the network runs on any T).
        readout: ``"max"``, ``"sum"``, ``"mean"`` or ``"spike_count"``
            (see :func:`readout_logits`).
        label_smoothing: cross-entropy label smoothing.
        optimizer: ``"adam"`` or ``"adamw"``.
        lr: weight learning rate (base of the weight schedule).
        weight_decay: weight decay of the weight group (positions get none).
        scheduler: schedule of the weight group.
        peak_lr: one-cycle peak of the weight group (default ``5 * lr``,
            as DCLS-delays).
        position_lr: learning rate of coordinates and free delays.
        position_scheduler: schedule of the position group.
        eval_kernel: ``"round"`` evaluates (validation, test, predict) with
            integer delays (one tap at round(d)), as DCLS-delays evaluates with
            'max' kernels; None keeps the training kernel.
        wiring_cost: weight of the wiring-cost loss term,
            ``sum over layers of spatial_layers.sparsity.wiring_cost(layer)``.
        cuda_graphs: run the network's training forward and backward as captured
            CUDA graphs (:mod:`spatial_layers.networks.cuda_graphs`): the same numbers,
            without the launch overhead of thousands of small kernels per step.
            CUDA only; static shapes (a smaller last batch runs eagerly).

    Example:
        >>> model = SpikingClassifier(SpatialSNN(5, 3, [16], max_delay=4), readout="mean")
        >>> model(torch.zeros(2, 10, 5)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        net: SpatialSNN,
        num_steps: PositiveInt | None = None,
        readout: Readout = "max",
        label_smoothing: NonNegativeFloat = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        scheduler: ScheduleKind = "cosine",
        peak_lr: PositiveFloat | None = None,
        position_lr: NonNegativeFloat = 1e-2,
        position_scheduler: ScheduleKind = "cosine",
        eval_kernel: Literal["round"] | None = None,
        wiring_cost: NonNegativeFloat = 0.0,
        cuda_graphs: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(net, dict):  # load_from_checkpoint: the network's recorded config
            net = network_from_config(net)
        if not isinstance(net, SpatialSNN):
            raise TypeError(f"net must be a SpatialSNN, got {type(net).__name__}")
        _check_settings(
            label_smoothing=label_smoothing,
            lr=lr,
            peak_lr=peak_lr,
            position_lr=position_lr,
            weight_decay=weight_decay,
            wiring_cost=wiring_cost,
        )
        if readout == "spike_count" and not net.spiking_output:
            raise ValueError(
                "readout 'spike_count' counts output spikes, but the network's readout does "
                "not spike: build it with spiking_output=True "
                "(model.net.init_args.spiking_output: true)"
            )
        # The network as plain data (under the CLI: with its defaults filled in), in
        # hparams_initial too, so loggers record it with the other hyperparameters.
        # num_steps only when given (the CLI links the data's): a plain Trainer's data
        # module records its own, and Lightning refuses two different values of one key.
        self.save_hyperparameters(ignore=["net", "num_steps"])
        self.save_hyperparameters({"net": network_config(net)})
        if num_steps is not None:
            self.save_hyperparameters({"num_steps": int(num_steps)})
        self.net = net
        self.readout = readout
        self.train_acc = MulticlassAccuracy(net.num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(net.num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(net.num_classes, average="micro")
        self._eval_kernel = ExitStack()
        self._graphed: GraphedNetwork | None = None
        self._finite: Tensor | None = None  # parameters finite since the last check
        #: Stages the run will run on this trainer after ``fit`` (the CLI sets
        #: ``("test",)`` for ``run.test_after_fit``): ``setup("fit")`` checks their data.
        self.stages_after_fit: tuple[str, ...] = ()

    # ----------------------------------------------------------------- model
    def delay_layers(self) -> list[SpatialDelay]:
        """Every SpatialDelay of the network (what callbacks edit)."""
        return delay_layers(self)

    def forward(self, spikes: Tensor) -> Tensor:
        """(B, T, C) spikes -> (B, num_classes) logits."""
        return readout_logits(self._run(spikes), self.readout)

    def _run(self, spikes: Tensor) -> SNNOutput:
        """The network's time-major output for a (B, T, C) batch, in the network's own layout
        on the way in (``net.batch_first``), through the CUDA graphs when they are on."""
        batch_first = self.net.batch_first
        x = spikes if batch_first else spikes.transpose(0, 1)
        graphed = self._graphed
        output = graphed(x) if graphed is not None else self.net.run(x, record_hidden=False)
        return swap_time_and_batch(output) if batch_first else output

    def _shared_step(
        self, batch: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor, SNNOutput]:
        spikes, labels = batch
        output = self._run(spikes)
        logits = readout_logits(output, self.readout)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        return loss, logits, labels, output

    def _wiring_cost(self) -> Tensor:
        from spatial_layers.sparsity import wiring_cost  # only needed when the term is on

        return sum(wiring_cost(layer) for layer in self.delay_layers())

    # -------------------------------------------------------------- training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, logits, labels, output = self._shared_step(batch)
        batch_size = labels.shape[0]
        if self.hparams.wiring_cost > 0:
            cost = self._wiring_cost()
            self.log("train_wiring_cost", cost, batch_size=batch_size)
            loss = loss + self.hparams.wiring_cost * cost
        self.train_acc(logits, labels)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=batch_size)
        rate = torch.stack(output.hidden_rates).mean()
        self.log(
            "train_rate", rate, on_epoch=True, on_step=False, batch_size=batch_size, sync_dist=True
        )
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, labels, _ = self._shared_step(batch)
        self.val_acc(logits, labels)
        self.log("val_loss", loss, prog_bar=True, batch_size=labels.shape[0], sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True, batch_size=labels.shape[0])

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, logits, labels, _ = self._shared_step(batch)
        self.test_acc(logits, labels)
        self.log("test_loss", loss, batch_size=labels.shape[0], sync_dist=True)
        self.log("test_acc", self.test_acc, batch_size=labels.shape[0])

    def predict_step(self, batch: tuple[Tensor, Tensor] | Tensor, batch_idx: int) -> Prediction:
        """Classes and per-class readout of ``(spikes, labels)`` or of (B, T, C) spikes alone."""
        spikes, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        readout = self(spikes)
        return Prediction(labels, readout.argmax(dim=-1), readout)

    def on_fit_start(self) -> None:
        if self.hparams.cuda_graphs:
            check_cuda_graphs(self.device, self.net)
            self._graphed = GraphedNetwork(self.net)

    def on_fit_end(self) -> None:
        self._graphed = None  # frees the graphs' memory pool

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Refuses a batch whose spikes are not (B, T, C) with the declared T and the
        network's C (:func:`spikes_problem`), with NaN or Inf input, or with labels that
        are not class ids in ``[0, num_classes)`` (:func:`label_problem`), while it is still
        on the host (no GPU sync), naming the split and where in the batch; CUDA-side input
        is checked by the network's flags (:mod:`spatial_layers.finite`)."""
        spikes = batch[0] if isinstance(batch, tuple | list) else batch
        stage = self.trainer.state.stage
        split = "a" if stage is None else f"a {stage.value}"
        problem = spikes_problem(spikes, self._declared_steps(), self.net.num_inputs)
        if problem is not None:
            raise ValueError(
                f"the spikes of {split} batch {problem}: the data module must give (B, T, C) "
                "spikes with T = its num_steps and C = its num_inputs"
            )
        if isinstance(spikes, Tensor) and not spikes.is_cuda and spikes.is_floating_point():
            found = describe_nonfinite(spikes)
            if found is not None:
                raise NonFiniteInputError(
                    f"{split} batch of (B, T, C) spikes holds {found}: look for NaN/Inf in the "
                    "data (spike times, features) or a transform that overflows"
                )
        if isinstance(batch, tuple | list) and len(batch) > 1:
            size = len(spikes) if isinstance(spikes, Tensor) and spikes.ndim else None
            problem = label_problem(batch[1], self.net.num_classes, size)
            if problem is not None:
                raise ValueError(
                    f"the labels of {split} batch {problem}: the data module must give "
                    "(spikes, labels) with labels int64 class ids 0..num_classes-1"
                )
        return batch

    def _declared_steps(self) -> int | None:
        """T the batches must have: this module's ``num_steps`` (the CLI links the data
        module's), else the attached data module's, else None (not checked)."""
        steps = self.hparams.get("num_steps")
        if steps is None:
            trainer = self._attached_trainer()
            steps = getattr(getattr(trainer, "datamodule", None), "num_steps", None)
        return int(steps) if is_int(steps) else None

    def setup(self, stage: str) -> None:
        """Refuses a stage whose loaders hold no sample (:func:`empty_loaders`), before it
        runs: Lightning would skip them, and ``fit`` would end having trained on nothing.
        ``fit`` checks the loaders of :attr:`stages_after_fit` too (the CLI's test after
        fit), so that a run is not refused only after it trained."""
        trainer = self._attached_trainer()
        stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn
        if trainer is None:
            return
        empty = empty_loaders(trainer, stage)
        if empty:
            raise ValueError(
                f"data: {'; '.join(empty)}: {stage} would run on no sample; give that split "
                "of the data module samples"
            )
        for later in self.stages_after_fit if stage == "fit" else ():
            try:
                empty = empty_loaders(trainer, later)
            except Exception:  # a loader built only in setup(later): checked when it runs
                continue
            if empty:
                raise ValueError(
                    f"data: {'; '.join(empty)}: the {later} after fit (run.{later}_after_fit) "
                    "would run on no sample; give that split of the data module samples, "
                    f"or set run.{later}_after_fit false"
                )

    def on_train_batch_end(self, outputs, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Stops training when an optimizer step made a parameter NaN or Inf, or non-finite
        input reached the network on CUDA.

        A NaN coordinate, delay or weight would otherwise spread to every parameter
        within a step while training went on. Checks parameters (coordinates, weights,
        free delays, ...) with one reduction per step on the device (:func:`parameters_finite`);
        the host reads it every step off CUDA, and on CUDA at every logging interval
        (``trainer.log_every_n_steps``) and at the end of the epoch, so that a step costs
        no host sync.
        """
        finite = parameters_finite(list(self.parameters()))
        self._finite = finite if self._finite is None else self._finite & finite
        trainer = self.trainer
        interval = max(trainer.log_every_n_steps, 1)
        if self.device.type != "cuda" or self.global_step % interval == 0:
            self._check_finite_training()

    def on_train_epoch_end(self) -> None:
        self._check_finite_training()

    def _check_finite_training(self) -> None:
        """Raises for what :meth:`on_train_batch_end` recorded since the last check (one sync)."""
        raise_if_nonfinite(self.net)
        finite, self._finite = self._finite, None
        if finite is None or bool(finite):
            return
        hp = self.hparams
        raise FloatingPointError(
            f"training stopped after optimizer step {self.global_step}: NaN or Inf in "
            f"{', '.join(nonfinite_parameters(self))}. Coordinates and free delays learn at "
            f"model.position_lr={hp.position_lr:g}, all else at model.lr={hp.lr:g}: lower the "
            "learning rate (or look for inputs or a loss term that overflow)"
        )

    def on_validation_epoch_end(self) -> None:
        raise_if_nonfinite(self.net)  # before the epoch's metrics are reported

    def on_test_epoch_end(self) -> None:
        raise_if_nonfinite(self.net)

    # ------------------------------------------------- evaluation kernels
    def _use_eval_kernel(self) -> None:
        # Entered at most once: a validation inside fit and a test after it never nest.
        self._eval_kernel.close()
        self._eval_kernel.enter_context(use_kernel(self, self.hparams.eval_kernel))

    def _restore_train_kernel(self) -> None:
        self._eval_kernel.close()

    def on_validation_start(self) -> None:
        self._check_evaluation_loaders("val")
        self._use_eval_kernel()

    def on_test_start(self) -> None:
        self._check_evaluation_loaders("test")
        self._use_eval_kernel()

    def on_predict_start(self) -> None:
        self._check_evaluation_loaders("predict")
        self._use_eval_kernel()

    def _check_evaluation_loaders(self, split: str) -> None:
        """Refuses an evaluation whose loader shares the split among devices by repeating or
        dropping samples (:func:`~lightning_modules.data.sampling.evaluation_sampler_problem`):
        its metrics would count another number of samples than the split has."""
        trainer = self.trainer
        if trainer.world_size <= 1:
            return
        for loader in loader_list(getattr(trainer, f"{split}_dataloaders", None)):
            problem = evaluation_sampler_problem(loader, split)
            if problem is not None:
                raise ValueError(problem)

    on_validation_end = on_test_end = on_predict_end = _restore_train_kernel

    # -------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Records the data module's :attr:`input_settings` (what the network's input is)."""
        settings = _input_settings(self._attached_trainer())
        if settings is not None:
            checkpoint[INPUT_SETTINGS_KEY] = settings

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuses a checkpoint with non-finite weights, or one whose network was trained on
        another input than the attached data module gives (``input_settings``); brings a
        checkpoint of an older format up to date before its state dict loads."""
        state = checkpoint["state_dict"]
        broken = nonfinite_tensors(state)
        if broken:
            raise ValueError(f"the checkpoint holds {broken}")
        saved = checkpoint.get(INPUT_SETTINGS_KEY)
        current = _input_settings(self._attached_trainer())
        differences = [] if saved is None or current is None else input_differences(saved, current)
        if differences:
            raise ValueError(
                "the checkpoint's network was trained on another input than this data gives: "
                + "; ".join(differences)
                + ": evaluate or resume it with the data settings it was trained with"
            )
        # Before sigma became the buffer ``kernel_sigma``, each layer's sigma was kept
        # beside the state dict: move it in.
        sigmas = checkpoint.pop("delay_sigmas", None)
        if sigmas is not None:
            names = [name for name, m in self.named_modules() if isinstance(m, SpatialDelay)]
            for name, sigma in zip(names, sigmas, strict=True):
                state.setdefault(f"{name}.kernel_sigma", torch.tensor(float(sigma)))
        # Before the network and its layers recorded their settings: take them from this
        # model (built from the checkpoint's hyperparameters), and say so.
        recorded = {
            f"{name}._extra_state": module.get_extra_state()
            for name, module in self.named_modules()
            if isinstance(module, SpatialSNN | SpatialDelay)
        }
        missing = {key: value for key, value in recorded.items() if key not in state}
        if missing:
            rank_zero_warn(
                "this checkpoint predates settings in the state dict: kernel kind and weight "
                "bits come from the network's config (a run that switched its kernel during "
                "training, e.g. with RoundDelays, ended with another one)"
            )
            state.update(missing)

    # ---------------------------------------------------------- optimizers
    def parameter_groups(self) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
        """(weights, positions): positions are coordinates and free delays, weights all else."""
        position_ids = set()
        positions = []
        for module in self.modules():
            candidates = []
            if isinstance(module, NeuronPositions):
                candidates = [module.coords]
            elif isinstance(module, SpatialDelay) and module.free_delays is not None:
                candidates = [module.free_delays]
            for param in candidates:
                if param.requires_grad and id(param) not in position_ids:
                    position_ids.add(id(param))
                    positions.append(param)
        weights = [p for p in self.parameters() if p.requires_grad and id(p) not in position_ids]
        return weights, positions

    def configure_optimizers(self):
        hp = self.hparams
        weights, positions = self.parameter_groups()
        groups = [
            {"params": weights, "lr": hp.lr, "weight_decay": hp.weight_decay, "name": "weights"}
        ]
        factors = [LRFactor(hp.scheduler, 1, (hp.peak_lr or 5 * hp.lr) / hp.lr)]
        if positions:
            groups.append(
                {
                    "params": positions,
                    "lr": hp.position_lr,
                    "weight_decay": 0.0,
                    "name": "positions",
                }
            )
            factors.append(LRFactor(hp.position_scheduler, 1))
        optimizer_class = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        optimizer = optimizer_class(groups, **adam_implementation([*weights, *positions]))
        trainer = self._attached_trainer()
        if trainer is not None and {hp.scheduler, hp.position_scheduler} != {"none"}:
            fix = ", or model.scheduler and model.position_scheduler to 'none'"
            total_steps = planned_steps(trainer, "learning-rate schedules", fix)
            for factor in factors:
                factor.total_steps = max(total_steps, 1)
        scheduler = RunSchedule(optimizer, factors)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _attached_trainer(self) -> L.Trainer | None:
        """The Trainer this module is attached to, or None (built and used on its own)."""
        try:
            return self.trainer
        except RuntimeError:  # Lightning's "is not attached to a `Trainer`"
            return None

    # ------------------------------------------------------------ summary
    def parameter_count(self):
        """:func:`spatial_layers.count_parameters` of the network."""
        return count_parameters(self.net)
