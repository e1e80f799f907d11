"""Target strings: `torchvision:NAME`, `timm:NAME`, `hf:NAME`,
`path/to/file.py:factory`, `package.module:factory`.

A zoo prefix is looked up in `frontends.zoos` and its module loads the
model (built on the meta device: no weights are allocated or downloaded);
anything else names a user's factory (`frontends.factory`).
"""

from __future__ import annotations

from memflops.analyze_options import TARGET_FORMS
from memflops.errors import TargetNotFoundError, UsageError
from memflops.frontends.factory import load_factory
from memflops.frontends.loaded import Loaded
from memflops.frontends.zoos import ZOOS, zoo_module

ATTENTION_APPLIES = ("attention: it chooses how memflops builds a Hugging Face model (hf: "
                     "targets)")
"""The start of every refusal of `attention=` for a model memflops does not build."""


def load_target(target: str, attention: str | None = None) -> Loaded:
    """Resolve a target string to a module (see the module docstring for the forms);
    `attention`: the attention implementation of a zoo that builds with a choice of them
    (`hf:`), refused for any other target."""
    prefix, sep, rest = target.partition(":")
    if not sep or not prefix or not rest:
        raise TargetNotFoundError(f"bad target {target!r}: expected {TARGET_FORMS}")
    options = {"attention": attention} if attention is not None else {}
    zoo = ZOOS.get(prefix)
    if options and (zoo is None or "attention" not in zoo.options):
        raise UsageError(f"{ATTENTION_APPLIES}; {target} builds its own, so give your model "
                         f"the attention you want")
    if zoo is not None:
        loaded: Loaded = zoo_module(prefix).load(rest, **options)
        return loaded
    if prefix.endswith(".py") or "/" in prefix or "." in prefix or prefix.isidentifier():
        return load_factory(prefix, rest)
    raise TargetNotFoundError(f"bad target {target!r}: expected {TARGET_FORMS}")
