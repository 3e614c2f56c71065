"""What a module's state dict records besides its tensors, compared when it loads.

A layer, a population of neurons and a network each save the settings that change what
they compute (``get_extra_state``); ``load_state_dict`` compares them with the module's
own and refuses a state saved with others, naming each (torch's list of loading errors),
so that a setting is never silently dropped or replaced.
"""

from __future__ import annotations

from collections.abc import Mapping


def setting_differences(saved: Mapping, built: Mapping, this: str) -> list[str]:
    """``name=saved (<this>: value)`` for each of the ``built`` settings that the ``saved``
    ones hold otherwise.

    >>> setting_differences({"beta": 0.5, "reset": "zero"}, {"beta": 0.7, "reset": "zero"},
    ...                     "these neurons")
    ['beta=0.5 (these neurons: 0.7)']
    """
    return [
        f"{name}={saved.get(name)!r} ({this}: {value!r})"
        for name, value in built.items()
        if saved.get(name) != value
    ]


def refuse_other_settings(
    error_msgs: list[str], name: str, saved_by: str, differences: list[str], fix: str
) -> bool:
    """Adds ``<name>: the state was saved by <saved_by> with <differences>; <fix>`` to
    ``load_state_dict``'s ``error_msgs`` when there are differences; returns whether it did
    (the module then loads nothing)."""
    if differences:
        error_msgs.append(
            f"{name}: the state was saved by {saved_by} with {', '.join(differences)}; {fix}"
        )
    return bool(differences)
