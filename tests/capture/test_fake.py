"""A model with real weights is analysed without copying them.

A child process (so its memory is its own) builds a model holding about
600 MB of real fp32 weights, then runs `memflops.analyze(..., mode="train")`
on it. The kernel's high-water mark of resident memory (`VmHWM`) cannot be
reset, so the child first checks that the mark equals the current resident
size (`VmRSS`, the weights plus torch); any copy of the weights during the
analysis would then lift the mark by >= 600 MB. As a control, the child then
clones the weights on purpose and the same probe must see the mark rise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

import memflops

SRC = Path(__file__).resolve().parents[2] / "src"
MB = 10**6
MARK = "LIVE_WEIGHTS "

# Linear(8192 -> 6144):  8192 * 6144 + 6144 = 50_337_792
# BatchNorm1d(6144):     2 * 6144           =     12_288
# Linear(6144 -> 8192):  6144 * 8192 + 8192 = 50_339_840
# Linear(8192 -> 6144):                       50_337_792
# total: 2 * 50_337_792 + 12_288 + 50_339_840 = 151_027_712 params (604_110_848 bytes in fp32)
PARAMS = 151_027_712
WEIGHT_BYTES = 4 * PARAMS

CHILD = r"""
import json, sys, zlib
import torch
from torch import nn
import memflops

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    raise KeyError(key)

def checksums(tensors):
    # CRC-32 of the bytes in place: exact, and no copy that would lift the mark
    return [zlib.crc32(memoryview(t.detach().numpy()).cast("B")) for t in tensors]

memflops.analyze(nn.Linear(2, 2), (1, 2), mode="train")  # load what analyze imports lazily

torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(8192, 6144), nn.BatchNorm1d(6144), nn.ReLU(), nn.Dropout(0.1),
    nn.Linear(6144, 8192), nn.ReLU(), nn.Linear(8192, 6144),
)
model.train()
model[3].eval()  # a mixed set of flags, to see that each one is restored

params = list(model.parameters())
buffers = list(model.buffers())
before = {
    "ids": [id(t) for t in params + buffers],
    "ptrs": [t.data_ptr() for t in params + buffers],
    "sums": checksums(params + buffers),
    "flags": [m.training for m in model.modules()],
}
rss_before, hwm_before = status("VmRSS"), status("VmHWM")
report = memflops.analyze(model, (4, 8192), mode="train")
hwm_after = status("VmHWM")
after_params, after_buffers = list(model.parameters()), list(model.buffers())
result = {
    "rss_before": rss_before, "hwm_before": hwm_before, "hwm_after": hwm_after,
    "same_objects": all(a is b for a, b in zip(params + buffers, after_params + after_buffers))
    and len(params + buffers) == len(after_params + after_buffers),
    "ids_equal": [id(t) for t in after_params + after_buffers] == before["ids"],
    "ptrs_equal": [t.data_ptr() for t in after_params + after_buffers] == before["ptrs"],
    "sums_equal": checksums(after_params + after_buffers) == before["sums"],
    "flags_equal": [m.training for m in model.modules()] == before["flags"],
    "grads_none": all(p.grad is None for p in after_params),
    "real_cpu": all(type(t) in (torch.Tensor, nn.Parameter) and t.device.type == "cpu"
                    for t in after_params + after_buffers),
    "params": report.totals.params,
    "model_params": sum(p.numel() for p in after_params),
}
copies = [p.detach().clone() for p in params]  # control: a real copy must show
result["hwm_after_copy"] = status("VmHWM")
print(__MARK__ + json.dumps(result), flush=True)
"""


def test_analysis_does_not_copy_live_weights() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.replace("__MARK__", repr(MARK))],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(MARK))
    r = json.loads(line.removeprefix(MARK))

    # The probe is meaningful only if the mark sits at the current size.
    assert r["hwm_before"] - r["rss_before"] < 100 * MB, r
    # The weights are really resident: torch alone is smaller than the total.
    assert r["rss_before"] > WEIGHT_BYTES, r
    increase = r["hwm_after"] - r["rss_before"]
    assert increase < 150 * MB, f"analysis raised peak RSS by {increase / MB:.0f} MB: {r}"
    # Control: cloning the weights on purpose lifts the mark by about 604 MB.
    assert r["hwm_after_copy"] - r["hwm_after"] > WEIGHT_BYTES - 150 * MB, r

    assert r["same_objects"] and r["ids_equal"] and r["ptrs_equal"], r
    assert r["sums_equal"], "weight or buffer values changed (BatchNorm running stats?)"
    assert r["flags_equal"], "train/eval flags not restored"
    assert r["grads_none"], "the backward wrote .grad on the live parameters"
    assert r["real_cpu"], "a live parameter or buffer was left as a fake tensor"
    assert r["model_params"] == PARAMS
    assert r["params"] == PARAMS


class CastsItsHead(nn.Module):
    """Converts a submodule inside forward, as Switch Transformers' router does."""

    def __init__(self, cast: bool) -> None:
        super().__init__()
        self.body = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)
        self.cast = cast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cast:
            self.head = self.head.to(torch.float32)
        out: torch.Tensor = self.head(self.body(x))
        return out


def test_module_to_inside_forward_keeps_parameters_once() -> None:
    model = CastsItsHead(cast=True)
    weight = model.head.weight
    cast = memflops.analyze(model, (2, 8), mode="train")
    plain = memflops.analyze(CastsItsHead(cast=False), (2, 8), mode="train")
    # (8 * 8 + 8) + (8 * 4 + 4) = 108 parameters, float32: 432 bytes, counted once
    assert cast.totals.params == 108
    assert cast.totals.memory.params == 432
    assert cast.totals.memory == plain.totals.memory
    assert cast.totals.costs.arithmetic() == plain.totals.costs.arithmetic()
    assert model.head.weight is weight  # the model's own parameter is back in place
