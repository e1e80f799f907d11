"""Pipeline parallel (modelled) of the Llama-2-7B shape: pp=4, 8 micro-batches of 1, seq
4096, bf16, AdamW, on "H100 SXM" (results recorded in benchmarks/PARALLEL.md)."""

from __future__ import annotations

import resource
import time

import memflops

LAYOUTS = ("pp=4,microbatches=8,schedule=1f1b",
           "pp=4,microbatches=8,schedule=interleaved,virtual_stages=2")

for layout in LAYOUTS:
    start = time.time()
    report = memflops.analyze("hf:llama-2-7b", batch=8, seq=4096, mode="train", dtype="bf16",
                              optimizer="adamw", parallel=layout, gpu="H100 SXM")
    assert report.parallel is not None and report.parallel.pipeline is not None
    pipe = report.parallel.pipeline
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{layout}: {time.time() - start:.0f} s, {rss} MiB RSS; bubble {pipe.bubble}, "
          f"highest rank {pipe.worst.rank}, step {pipe.time_step_s} s, sends "
          f"{report.parallel.communication_bytes} B ({report.parallel.time_comm_s} s)")
    for s in pipe.ranks:
        print(f"  rank {s.rank} {s.blocks[0]}..{s.blocks[-1]}: peak {s.peak}, params "
              f"{s.params}, grads {s.grads}, optimizer {s.optimizer}, activations "
              f"{s.activations} x {s.in_flight}, sends {s.send_forward} / {s.send_backward}, "
              f"micro-batch {s.time_microbatch_s} s, optimizer {s.time_optimizer_s} s")
