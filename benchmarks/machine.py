"""A description of the machine a benchmark ran on, as (field, value) rows."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def describe() -> list[tuple[str, str]]:
    """CPU, cores, RAM, OS, Python, torch, date, git commit and current load."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    mem_kib = _proc_field("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kib.split()[0]) / 2**20:.1f} GiB" if mem_kib else "unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain"):
        commit += " plus uncommitted changes"
    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("RAM", ram),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("torch", _version("torch")),
        ("torchvision", _version("torchvision")),
        ("date", now.strftime("%Y-%m-%d %H:%M UTC")),
        ("git commit", commit),
        ("load average at start (1/5/15 min)", load_average()),
    ]
