"""memflops: parameters, FLOPs, MACs and memory of a PyTorch model, exactly,
on meta tensors, before you rent a GPU."""

from memflops import flops as _flops  # noqa: F401  (loads every FLOP rule)
from memflops.api import analyze
from memflops.capture.inputs import TensorSpec
from memflops.conventions import Convention
from memflops.flops.registry import OpCost
from memflops.flops.registry import register as register_formula
from memflops.report.model import Report

__all__ = ["Convention", "OpCost", "Report", "TensorSpec", "analyze", "register_formula"]
__version__ = "0.1.0"
