"""`path/to/file.py:factory` and `package.module:factory`: a user's own model.

The factory is called as it is (or, when the name is a module instance,
that instance is taken); the user's file is imported under a private name.
While it is imported and called, the file's directory (or, for
`package.module:factory`, the working directory) is on `sys.path`, so the
same target works from the console script and from `python -m memflops`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from torch import nn

from memflops.analyze_options import TARGET_FORMS
from memflops.errors import FactoryError, TargetNotFoundError, did_you_mean
from memflops.frontends.loaded import Loaded, call_factory, raised


@contextmanager
def _on_path(directory: Path) -> Iterator[None]:
    """`directory` first on `sys.path` while the user's code is imported and run, as
    `python file.py` and `python -m pkg` have it, whichever way memflops was started
    (the console script's path holds only its own directory); taken off after."""
    entry = str(directory)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def load_factory(location: str, attr: str) -> Loaded:
    """`location:attr`: a file's or an importable module's factory, called; the file's
    directory (a file) or the working directory (a module) is importable meanwhile."""
    home = Path(location).resolve().parent if location.endswith(".py") else Path.cwd()
    with _on_path(home):
        return _load(location, attr)


def _load(location: str, attr: str) -> Loaded:
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise TargetNotFoundError(f"no such file: {location} (target {location}:{attr})")
        mod_name = f"_memflops_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise TargetNotFoundError(f"cannot import {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise FactoryError(f"importing {location} {raised(exc)}") from exc
    else:
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as exc:
            raise TargetNotFoundError(
                f"cannot import module {location!r} ({exc}); expected {TARGET_FORMS}"
            ) from exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise FactoryError(f"importing {location} {raised(exc)}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise TargetNotFoundError(
            f"{location} has no attribute {attr!r}{did_you_mean(attr, names)}"
        )
    if isinstance(factory, nn.Module):
        return Loaded(factory, attr)
    if not callable(factory):
        raise TargetNotFoundError(f"{location}:{attr} is not callable")
    return Loaded(call_factory(factory, f"{location}:{attr}"), attr)
