"""The models each zoo offers, by name, for `memflops list`.

`list_models("torchvision")` gives the names `torchvision:NAME` accepts
(`torchvision.models.list_models()`), `"timm"` those of `timm.list_models()`,
and `"hf"` the Hugging Face configs shipped with memflops
(`memflops/zoo/hf/configs/*.json`). With no zoo, every installed zoo is
listed, each name written as a full target (`timm:resnet50`). A filter keeps
the names that contain it (case-insensitive), or, when it has a wildcard
(`*`, `?`, `[`), the names that match it as a glob (`resnet*`).
"""

from __future__ import annotations

import difflib
import fnmatch

from memflops.errors import UsageError
from memflops.frontends.zoos import ZOOS, not_installed, zoo_module


def matches(name: str, pattern: str) -> bool:
    """Substring match, or glob match when `pattern` has a wildcard; case-insensitive."""
    name, pattern = name.lower(), pattern.lower()
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _names(zoo: str) -> list[str]:
    try:
        names: list[str] = zoo_module(zoo).names()
    except ImportError as exc:
        raise not_installed(zoo) from exc
    return sorted(names)


def list_models(zoo: str | None = None, filter: str | None = None) -> list[str]:
    """Model names of one zoo, or targets (`zoo:NAME`) of every installed zoo; sorted."""
    if zoo is None:
        found = []
        for each in ZOOS:
            try:
                names = _names(each)
            except UsageError:
                continue  # not installed: nothing to list
            found += [f"{each}:{n}" for n in names if filter is None or matches(n, filter)]
        return found
    key = zoo.strip().lower()
    if key not in ZOOS:
        raise UsageError(f"unknown zoo {zoo!r}{_closest(key)} (known: {', '.join(ZOOS)})")
    return [n for n in _names(key) if filter is None or matches(n, filter)]


def _closest(key: str) -> str:
    close = difflib.get_close_matches(key, list(ZOOS), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""
