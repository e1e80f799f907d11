"""The models each zoo offers, by name, for `memflops list`.

`list_models("torchvision")` gives the names `torchvision:NAME` accepts
(`torchvision.models.list_models()`), `"timm"` those of `timm.list_models()`,
and `"hf"` the Hugging Face configs shipped with memflops
(`memflops/frontends/hf_configs/*.json`). With no zoo, every installed zoo is
listed, each name written as a full target (`timm:resnet50`). A filter keeps
the names that contain it (case-insensitive), or, when it has a wildcard
(`*`, `?`, `[`), the names that match it as a glob (`resnet*`).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable

from memflops.errors import UsageError

ZOOS = ("torchvision", "timm", "hf")
_INSTALL = {
    "torchvision": "pip install 'memflops[vision]'",
    "timm": "pip install 'memflops[vision]'",
    "hf": "pip install 'memflops[hf]'",
}


def _torchvision() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models())


def _timm() -> list[str]:
    import timm

    return list(timm.list_models())


def _hf() -> list[str]:
    from memflops.frontends.hf import shipped_names

    return shipped_names()


_LISTERS: dict[str, Callable[[], list[str]]] = {
    "torchvision": _torchvision, "timm": _timm, "hf": _hf,
}


def matches(name: str, pattern: str) -> bool:
    """Substring match, or glob match when `pattern` has a wildcard; case-insensitive."""
    name, pattern = name.lower(), pattern.lower()
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _names(zoo: str) -> list[str]:
    try:
        return sorted(_LISTERS[zoo]())
    except ImportError as exc:
        raise UsageError(f"{zoo} is not installed: {_INSTALL[zoo]}") from exc


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
    if key not in _LISTERS:
        close = difflib.get_close_matches(key, ZOOS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"unknown zoo {zoo!r}{hint} (known: {', '.join(ZOOS)})")
    return [n for n in _names(key) if filter is None or matches(n, filter)]
