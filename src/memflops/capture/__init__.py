"""Capture: run a model once on fake tensors and record every ATen op."""
