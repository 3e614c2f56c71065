"""One callback of a kind per trainer, for callbacks that set the same thing every step.

A callback that must know its peers implements ``check_peers(callbacks)``: it raises
ValueError for a list it cannot run with. The ``spsnn`` command calls it on the
configured callbacks before anything runs (:func:`check_callbacks`), and the callback
itself at fit start (for a Trainer built in Python).
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.callbacks import Callback


def check_callbacks(callbacks: Sequence[Callback]) -> None:
    """Runs every callback's ``check_peers`` on ``callbacks`` (ValueError: one cannot run)."""
    for callback in callbacks:
        check = getattr(callback, "check_peers", None)
        if callable(check):
            check(callbacks)


def check_single_instance(
    callbacks: Sequence[Callback], callback: Callback, fix: str | None = None
) -> None:
    """Refuses a second callback of ``callback``'s class in ``callbacks``.

    Two :class:`SigmaAnnealing` (or :class:`RoundDelays`, :class:`HardwareQAT`,
    :class:`StepSeed`) would each set the same layer attributes or seeds, the
    later one silently overriding the earlier: typically a recipe's callback
    plus one appended with ``--trainer.callbacks+=``.

    Args:
        callbacks: the trainer's callbacks.
        callback: the callback calling (its class is counted).
        fix: what to do instead, when it is not to set the one callback's arguments.

    Raises:
        ValueError: names the class, the positions and the fix.
    """
    kind = type(callback)
    positions = [i for i, other in enumerate(callbacks) if type(other) is kind]
    if len(positions) > 1:
        name = kind.__name__
        fix = fix or (
            f"keep one: to change a recipe's {name}, set its arguments "
            f"(--trainer.callbacks.<argument> VALUE sets them on the last callback of the "
            f"list) instead of appending another with --trainer.callbacks+={name}"
        )
        raise ValueError(
            f"trainer.callbacks holds {len(positions)} {name} callbacks (positions "
            f"{positions}); each sets the same thing, so the later would silently override "
            f"the earlier: {fix}"
        )
