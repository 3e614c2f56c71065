"""Compiles every Triton kernel of spatial_layers.ops for real GPU targets, without a GPU.

Run as ``python -m tests.helpers.triton_targets`` (never under ``TRITON_INTERPRET``, which
replaces the kernels by interpreted ones): it finds every ``*_kernel`` JIT function of the
modules of :mod:`spatial_layers.ops` (a new kernel joins by construction), records the
argument types and compile-time constants of every launch that the public ops make for
float32, float16 and bfloat16 inputs (launches are recorded, not run), compiles each
distinct one with ``triton.compile`` for sm_80 and sm_90 (the bundled ptxas), and checks
that no fp32/fp16 fused multiply-add reaches the PTX of kernels launched with
``enable_fp_fusion=False``. Prints one JSON line: the builds, and the problems found.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import sys
from collections.abc import Callable

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.jit import JITFunction

import spatial_layers.ops

CAPABILITIES = (80, 90)
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
TYPE_NAMES = {
    torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64",
    torch.bool: "i1", torch.int8: "i8", torch.int32: "i32", torch.int64: "i64", torch.uint8: "u8",
}  # fmt: skip
#: A contraction of an fp32/fp16 multiply and add (bf16 on sm_80 multiplies as
#: ``fma.rn.bf16 d, a, b, -0.0``, which is exact and not matched here).
FMA = re.compile(r"\bfma\.rn(\.ftz)?\.f(32|16)(x2)?\b")


def kernels() -> dict[str, tuple[object, str]]:
    """Every ``*_kernel`` JIT function of spatial_layers.ops: name -> (module, attribute)."""
    found = {}
    for info in pkgutil.iter_modules(spatial_layers.ops.__path__, "spatial_layers.ops."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, JITFunction) and name.endswith("_kernel"):
                found[f"{info.name}.{name}"] = (module, name)
    return found


class Recorder:
    """Stands in for a kernel: ``kernel[grid](*args, **options)`` records the launch."""

    def __init__(self, kernel: JITFunction, launches: list) -> None:
        self.kernel, self.launches = kernel, launches

    def __getitem__(self, grid: object) -> Callable[..., None]:
        def launch(*args: object, **options: object) -> None:
            self.launches.append((self.kernel, args, options))

        return launch


def signature(kernel: JITFunction, args: tuple, options: dict) -> tuple[dict, dict, dict]:
    """(signature, constexprs, compile options) of one recorded launch."""
    names = kernel.arg_names
    values = dict(zip(names, args, strict=False)) | {k: v for k, v in options.items() if k in names}
    types, constants = {}, {}
    for param in kernel.params:
        value = values[param.name]
        if param.is_constexpr:
            types[param.name], constants[param.name] = "constexpr", value
        elif isinstance(value, torch.Tensor):
            types[param.name] = "*" + TYPE_NAMES[value.dtype]
        elif isinstance(value, bool):
            types[param.name] = "i1"
        elif isinstance(value, int):
            types[param.name] = "i64" if abs(value) >= 2**31 else "i32"
        elif isinstance(value, float):
            types[param.name] = "fp32"
        else:
            raise TypeError(f"{kernel.__name__}: argument {param.name}={value!r}")
    compile_options = {k: v for k, v in options.items() if k not in names}
    return types, constants, compile_options


def drive(dtype: torch.dtype) -> None:
    """Every public op that launches a kernel, forward and backward, at a tiny size."""
    from spatial_layers.neurons import (
        AdaptiveLeaky,
        Leaky,
        Synaptic,
        leaky_integrate,
        leaky_sequence,
        recurrent_leaky,
        recurrent_neurons,
    )

    generator = torch.Generator().manual_seed(0)
    currents = torch.randn(4, 2, 3, generator=generator).to(dtype).requires_grad_()
    spikes, membranes = leaky_sequence(currents, backend="triton")
    (spikes.sum() + membranes.sum()).backward()
    leaky_sequence(currents, backend="triton")[0].sum().backward()  # spikes' gradient only
    leaky_integrate(currents, 0.9, backend="triton").sum().backward()
    kernel = torch.randn(3, 3, 2, generator=generator).to(dtype).requires_grad_()
    bias = torch.randn(3, generator=generator).to(dtype)
    for with_bias in (None, bias):
        spikes, membranes = recurrent_leaky(currents, kernel, with_bias, backend="triton")
        (spikes.sum() + membranes.sum()).backward()
        recurrent_leaky(currents, kernel, with_bias, backend="triton")[0].sum().backward()
    # The neuron families with learnable per-neuron constants (every constexpr variant of
    # the family kernels: each family, its resets, with and without constant gradients).
    families = [
        Leaky(beta=[0.7, 0.9], size=3, learn_beta=True, reset="zero", backend="triton"),
        *(
            Synaptic(size=3, learn_alpha=learn, learn_beta=learn, reset=reset, backend="triton")
            for reset in ("subtract", "zero", "none")
            for learn in (False, True)
        ),
        AdaptiveLeaky(size=3, learn_beta=True, backend="triton"),
    ]
    for neuron in families:
        neuron = neuron.to(dtype)
        spikes, membranes = neuron.forward_with_membrane(currents)
        (spikes.sum() + membranes.sum()).backward()
        for with_bias in (None, bias):
            spikes, membranes = recurrent_neurons(currents, kernel, with_bias, neuron)
            (spikes.sum() + membranes.sum()).backward()


def main() -> None:
    found = kernels()
    launches: list = []
    for module, name in found.values():
        setattr(module, name, Recorder(getattr(module, name), launches))
    os.environ["TRITON_INTERPRET"] = "1"  # lets the ops take backend="triton" on the CPU
    for dtype in DTYPES:
        drive(dtype)
    builds, problems, seen = [], [], set()
    for kernel, args, options in launches:
        types, constants, compile_options = signature(kernel, args, options)
        key = (
            kernel.__name__,
            json.dumps(types, sort_keys=True),
            json.dumps(constants, sort_keys=True, default=str),
        )
        if key in seen:
            continue
        seen.add(key)
        for capability in CAPABILITIES:
            source = ASTSource(fn=kernel, signature=types, constexprs=constants)
            target = GPUTarget("cuda", capability, 32)
            try:
                compiled = triton.compile(source, target=target, options=compile_options)
            except Exception as error:
                problems.append(f"{kernel.__name__} sm_{capability} {types}: {error}")
                continue
            fused = compile_options.get("enable_fp_fusion", True) is False
            if fused and FMA.search(compiled.asm["ptx"]):
                problems.append(f"{kernel.__name__} sm_{capability} {types}: fma in PTX")
            builds.append({"kernel": kernel.__name__, "sm": capability, "signature": types,
                           "constexprs": {k: str(v) for k, v in constants.items()}})  # fmt: skip
    launched = {kernel.__name__ for kernel, _, _ in launches}
    never = sorted(name for name in found if name.rsplit(".", 1)[1] not in launched)
    print(
        json.dumps(
            {
                "kernels": sorted(found),
                "builds": builds,
                "problems": problems,
                "never_launched": never,
            }
        )
    )


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET") == "1":
        sys.exit("run without TRITON_INTERPRET: it replaces the kernels by interpreted ones")
    main()
