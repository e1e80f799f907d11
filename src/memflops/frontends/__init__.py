"""Frontends turn what the user has (a module, a target string) into a module."""

from memflops.frontends.targets import Loaded, load_target

__all__ = ["Loaded", "load_target"]
