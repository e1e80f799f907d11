"""`hf:NAME`: Hugging Face transformers models, built offline from configs.

`loader` builds the model from a shipped or given config (`configs/`),
`inputs` makes the inputs each model type takes, `repairs` fixes default
configs transformers cannot run, `video_session` drives SAM 2 Video-style
streaming segmenters, and `moe` makes sparse mixture-of-experts blocks
shape-only.
"""

from __future__ import annotations

from memflops.zoo.hf.config import shipped_names as names
from memflops.zoo.hf.loader import load_hf as load

__all__ = ["load", "names"]
