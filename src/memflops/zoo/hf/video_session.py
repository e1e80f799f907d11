"""Video segmenters that track objects through a session (SAM 2 Video, SAM 3 Tracker Video,
EdgeTAM Video): the analysed step is one steady-state frame.

These models' `forward(inference_session, frame_idx, frame)` processes one frame of a
video. The session holds the frames, each object's prompts and the memory bank of past
frames: per frame, the memory encoder's features and their positional encoding
(`maskmem_features`, `maskmem_pos_enc`) and the object pointer (a token from the mask
decoder). The step analysed here is the tracking of one new streamed frame once the
memory bank is full, the cost of every frame of a long video:

- frame 0 was prompted (one click per object, consumed by then: what it left is frame
  0's conditioning memory and pointer) and frames 1 ... F-1 were tracked, with
  F = max(`num_maskmem`, `max_object_pointers_in_encoder`) (SAM 2: max(7, 16) = 16), the
  first F for which every memory and pointer the model can read exists;
- frame F is analysed: the image encoder on its pixels, memory attention over frame 0's
  memory and those of the `num_maskmem - 1` frames before F, plus the object pointers
  of frame 0 and of the `max_object_pointers_in_encoder - 1` frames before F, the mask
  decoder (no prompt: tracking), and the memory encoder writing frame F's memory.

Inputs (`SessionInputs(batch, seq)`; `batch` = objects tracked in the one video, `seq`
unused): `frame` (1, C, S, S) at the model's `image_size`; `memory_features`,
`memory_positions` (num_maskmem, objects, *one frame's memory of one object*);
`object_pointers` (pointers, objects, 1, hidden). The memory bank's values come from
weights and past frames, so they are unknown, as the frame's pixels are. A forward
pre-hook on the model (`open_session`) turns these into the model's own session class,
filled through its own methods, and calls `forward` on frame F in streaming mode.
The session holds only what the step reads (the memories and pointers above), not the
older outputs transformers' session also keeps.

One memory's shape (`memory_shape`) is the model's own: its `_encode_new_memory` run on
the meta device (SAM 2: (64 * 64, 1, 64) bf16; EdgeTAM's perceiver: (1, 512, 64)).

Inference only: transformers runs `forward` under `torch.inference_mode()` and, in
training mode, it leaves out the object scores it then reads, so a training step cannot
be analysed (`open_session` says so). The analysed step runs `forward` without that
decorator, under the analysis' own `no_grad`, which computes the same: under inference
mode, composite ops (`linear`, `layer_norm`) would reach the analysis undecomposed.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memflops.capture.inputs import TensorSpec
from memflops.errors import AnalysisError, SpecError

SESSION_TYPES = frozenset({"sam2_video", "sam3_tracker_video", "edgetam_video"})
"""`model_type`s whose forward takes an `inference_session` this module can build."""
INPUT_NAMES = ("frame", "memory_features", "memory_positions", "object_pointers")


def takes_session(config: Any) -> bool:
    return str(getattr(config, "model_type", "")) in SESSION_TYPES


@dataclass(frozen=True)
class SessionInputs:
    """`(batch, seq) -> keyword inputs` of one session step (see the module docstring)."""

    name: str
    frame: tuple[int, ...]
    """(C, S, S) of one frame."""
    memory: tuple[int, ...]
    """One frame's memory of one object, as the model stores it."""
    memory_dtype: torch.dtype
    positions_dtype: torch.dtype
    pointer: tuple[int, ...]
    """One frame's object pointer of one object."""
    memories: int
    """Frames in the memory bank: the conditioning frame and `memories - 1` recent ones."""
    pointers: int
    """Object pointers read: the conditioning frame's and `pointers - 1` recent ones."""
    max_seq: int | None = None

    @property
    def frame_idx(self) -> int:
        """The analysed frame: the first whose every memory and pointer exists."""
        return max(self.memories, self.pointers)

    def __call__(self, batch: int, seq: int) -> dict[str, TensorSpec]:
        if batch < 1 or seq < 1:
            raise SpecError(f"{self.name}: batch and seq must be >= 1, got {batch} and {seq}")
        return {
            "frame": TensorSpec((1, *self.frame)),
            "memory_features": TensorSpec((self.memories, batch, *self.memory), self.memory_dtype),
            "memory_positions": TensorSpec(
                (self.memories, batch, *self.memory), self.positions_dtype
            ),
            "object_pointers": TensorSpec((self.pointers, batch, *self.pointer)),
        }

    def warnings(self) -> tuple[str, ...]:
        f = self.frame_idx
        return (
            f"video session: analyses the tracking of streamed frame {f} (batch = objects "
            f"tracked in one video, each prompted by one click on frame 0); its memory bank, "
            f"an input, holds frame 0's and frames {f - self.memories + 1}-{f - 1}'s memories "
            f"and the object pointers of frames 0-{f - 1}, the step's steady state",
            "video session: inference only (transformers runs these models' forward under "
            "torch.inference_mode)",
        )


def session_inputs(module: nn.Module, config: Any, name: str) -> SessionInputs:
    """The inputs of `module`'s session step, and its pre-hook (`open_session`) installed."""
    vision = config.vision_config
    side = int(config.image_size)
    hidden = int(vision.fpn_hidden_size)  # the model's `hidden_dim`
    memory, positions = memory_shape(module, side, hidden, vision.backbone_feature_sizes[-1])
    module.register_forward_pre_hook(open_session, with_kwargs=True)
    _without_inference_mode(module)
    return SessionInputs(
        name,
        frame=(int(getattr(vision, "num_channels", 3)), side, side),
        memory=tuple(memory.shape),
        memory_dtype=memory.dtype,
        positions_dtype=positions.dtype,
        pointer=(1, hidden),
        memories=int(config.num_maskmem),
        pointers=int(config.max_object_pointers_in_encoder),
    )


def memory_shape(
    module: nn.Module, side: int, hidden: int, grid: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, positions) of one frame's memory of one object: the model's own
    `_encode_new_memory` run on the meta device."""
    height, width = grid
    encode: Any = module._encode_new_memory
    with torch.no_grad():
        features, positions = encode(
            current_vision_feats=torch.empty(height * width, 1, hidden, device="meta"),
            pred_masks_high_res=torch.empty(1, 1, side, side, device="meta"),
            object_score_logits=torch.empty(1, 1, 1, device="meta"),
            is_mask_from_pts=False,
        )
    return features, positions


def open_session(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """Forward pre-hook: `SessionInputs`' tensors -> the model's session and frame (see the
    module docstring). Calls without them pass unchanged."""
    if "memory_features" not in kwargs:
        return None
    if module.training:
        raise AnalysisError(
            f"{type(module).__name__} is inference only: transformers runs its forward under "
            "torch.inference_mode, and in training mode it leaves out the object scores it "
            "then reads; analyse it in inference mode (`--mode inference`, mode='inference')"
        )
    frame, features = kwargs["frame"], kwargs["memory_features"]
    positions, pointers = kwargs["memory_positions"], kwargs["object_pointers"]
    memories, objects = features.shape[0], features.shape[1]
    frame_idx = max(memories, pointers.shape[0])
    session = _session_class(module)(dtype=frame.dtype)
    for obj in range(objects):
        idx = session.obj_id_to_idx(obj)
        first = {"maskmem_features": features[0, obj], "maskmem_pos_enc": positions[0, obj],
                 "object_pointer": pointers[0, obj]}
        session.store_output(idx, 0, output_value=first, is_conditioning_frame=True)
        for past in range(1, frame_idx):
            out: dict[str, Any] = {}  # index `past` of an input: `past` frames before
            if past < pointers.shape[0]:
                out["object_pointer"] = pointers[past, obj]
            if past < memories:
                out["maskmem_features"] = features[past, obj]
                out["maskmem_pos_enc"] = positions[past, obj]
            session.store_output(idx, frame_idx - past, output_value=out,
                                 is_conditioning_frame=False)
            session.frames_tracked_per_obj[idx][frame_idx - past] = {"reverse": False}
    return args, {"inference_session": session, "frame": frame, "frame_idx": frame_idx}


def _without_inference_mode(module: nn.Module) -> None:
    """`module.forward` without its `torch.inference_mode()` decorator: under inference
    mode, composite ops (`linear`, `layer_norm`, `conv2d`) reach the analysis whole instead
    of as the ops they are made of. The analysed inference step runs under `no_grad`,
    which computes the same."""
    inner = getattr(type(module).forward, "__wrapped__", None)
    if inner is not None:
        module.forward = types.MethodType(inner, module)  # type: ignore[method-assign]


def _session_class(module: nn.Module) -> Any:
    """`Sam2VideoModel` -> `Sam2VideoInferenceSession`, from the model's own module."""
    name = type(module).__name__.replace("Model", "InferenceSession")
    found = getattr(sys.modules[type(module).__module__], name, None)
    if found is None:
        raise SpecError(f"{type(module).__name__}: transformers has no {name}")
    return found
