"""Accelerator facts (memory, bandwidth, dense peak FLOP/s per dtype) with sources."""
