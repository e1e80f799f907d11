"""The choices and defaults of `memflops.analyze`, torch-free.

The command line shows them in its help and checks a layer-list spec
without importing torch (which takes seconds); `memflops.analyze` takes its
defaults from here, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Final

MODES: Final = ("inference", "train", "generate")
MODE: Final = "inference"
CONVENTION: Final = "exact"
OPTIMIZER: Final = "adam"
LOSS: Final = "sum"
FIT_DIMENSION: Final = "batch"
FIT_AGAINST_CHOICES: Final = ("allocated", "reserved")
ATTENTIONS: Final = ("sdpa", "eager", "flex_attention")
"""`attention=`: the attention implementation a Hugging Face target is built with."""
FIT_AGAINST: Final = "allocated"
"""What `fit` holds against the capacity: the step's allocated peak, or the device total
with the caching allocator simulated (`memory.reserved`)."""
TARGET_FORMS: Final = (
    "torchvision:NAME, timm:NAME, hf:NAME (or hf:path/to/config.json), "
    "path/to/file.py:factory or package.module:factory"
)
"""The forms of a target string, the `model` argument given by name."""
