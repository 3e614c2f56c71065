"""Compiles spsnn's neuron kernels for real GPUs without one, and reads their PTX.

Run as a script (``TRITON_INTERPRET`` unset: the interpreter replaces ``triton.jit``):
``python triton_compile_check.py`` prints one JSON line per (kernel, configuration,
dtype, architecture) with the cubin size and the floating-point FMAs in its PTX. The
kernels run with ``enable_fp_fusion=False`` (as spsnn launches them), so a float32 or
float16 ``fma`` there would mean a contraction that breaks bit-equality with torch.
"""

from __future__ import annotations

import json
import re
import sys

#: PTX instructions of a fused multiply-add in float32 or float16 (the forbidden ones).
FMA = re.compile(r"\bfma\.rn(?:\.ftz)?(?:\.sat)?\.(?:f32|f16|f16x2)\b")
TYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def kernels(dtype: str) -> list[tuple[str, object, dict, dict]]:
    from spatial_layers.ops import triton_neurons as neurons
    from spatial_layers.ops import triton_recurrent as recurrent

    t = "*" + TYPES[dtype]
    c = "*fp64" if dtype == "float64" else "*fp32"  # constants and work buffers
    found = []
    families = [("lif", 0, 0, True), ("cuba", 1, 1, False), ("adlif", 2, 1, False)]
    for name, family, reset, late in families:
        flags = {"FAMILY": family, "RESET": reset, "LATE": late}
        signature = {
            "currents_ptr": t, "state_ptr": t, "constants_ptr": c, "spikes_ptr": t,
            "traces_ptr": t, "scalars_ptr": c, "steps": "i32", "neurons": "i32", "size": "i32",
        }  # fmt: skip
        found.append((f"neuron_forward[{name}]", neurons._neuron_forward_kernel, signature,
                      {**flags, "BLOCK": 256}))  # fmt: skip
        signature = {
            "traces_ptr": t, "grad_spikes_ptr": t, "grad_traces_ptr": t, "state_ptr": t,
            "constants_ptr": c, "currents_ptr": t, "grad_currents_ptr": t,
            "grad_state_ptr": c, "sums_ptr": c, "scalars_ptr": c,
            "steps": "i32", "neurons": "i32", "size": "i32",
        }  # fmt: skip
        found.append((f"neuron_backward[{name}]", neurons._neuron_backward_kernel, signature,
                      {**flags, "HAS_GRAD_SPIKES": True, "HAS_GRAD_TRACES": True,
                       "NEED_CONSTANTS": True, "HAS_CURRENTS": True, "BLOCK": 256}))  # fmt: skip
        blocks = {"BLOCK_OUT": 32, "BLOCK_IN": 128}
        signature = {
            "currents_ptr": t, "weights_ptr": t, "bias_ptr": t, "constants_ptr": c,
            "spikes_ptr": t, "traces_ptr": t, "scalars_ptr": c,
            "steps": "i32", "size": "i32", "taps": "i32",
        }  # fmt: skip
        found.append((f"recurrent_forward[{name}]", recurrent._recurrent_neuron_forward_kernel,
                      signature, {**flags, "HAS_BIAS": True, **blocks}))  # fmt: skip
        signature = {
            "traces_ptr": t, "weights_ptr": t, "grad_spikes_ptr": t, "grad_traces_ptr": t,
            "constants_ptr": c, "currents_ptr": t, "grads_ptr": c, "carries_ptr": c,
            "sums_ptr": c, "scalars_ptr": c, "steps": "i32", "size": "i32", "taps": "i32",
        }  # fmt: skip
        found.append((f"recurrent_backward[{name}]", recurrent._recurrent_neuron_backward_kernel,
                      signature, {**flags, "HAS_GRAD_SPIKES": True, "HAS_GRAD_TRACES": True,
                                  "NEED_CONSTANTS": True, "HAS_CURRENTS": True, **blocks}))  # fmt: skip
    return found


def main(dtypes: list[str], architectures: list[int]) -> None:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for dtype in dtypes:
        for name, kernel, signature, constants in kernels(dtype):
            signature = {**signature, **dict.fromkeys(constants, "constexpr")}
            for arch in architectures:
                source = ASTSource(fn=kernel, signature=signature, constexprs=constants)
                compiled = triton.compile(
                    source,
                    target=GPUTarget("cuda", arch, 32),
                    options={"enable_fp_fusion": False, "num_warps": 4},
                )
                ptx = compiled.asm["ptx"]
                print(json.dumps({
                    "kernel": name, "dtype": dtype, "arch": f"sm_{arch}",
                    "cubin_bytes": len(compiled.asm["cubin"]),
                    "fma": sorted(set(FMA.findall(ptx))),
                }), flush=True)  # fmt: skip


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(arguments or ["float32", "float16", "bfloat16"], [80, 90])
