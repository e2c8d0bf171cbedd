"""What this process and the browsers it started hold in memory, read from ``/proc`` (Linux).

PSS (proportional set size) is summed over the whole process tree: pages shared between Chromium's
processes count once, so the figure is what closing everything would give back. Elsewhere the figures
are ``None``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["TreeMemory", "tree_memory", "tree_pids"]


@dataclass(frozen=True)
class TreeMemory:
    """The process tree's size: how many processes, their summed PSS and RSS in bytes."""

    processes: int
    pss: int | None
    rss: int | None

    def to_dict(self) -> dict[str, int | float | None]:
        mb = 1 << 20
        return {
            "processes": self.processes,
            "pss_mb": round(self.pss / mb, 1) if self.pss is not None else None,
            "rss_mb": round(self.rss / mb, 1) if self.rss is not None else None,
        }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(child) for child in fh.read().split()]
        except OSError:
            continue
    return found


def tree_pids(root: int | None = None) -> list[int]:
    """``root`` (this process by default) and every process below it."""
    root = os.getpid() if root is None else root
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo += _children(pid)
    return seen


def _rollup(pid: int) -> tuple[int, int] | None:
    """PSS and RSS of one process, in bytes (None once it is gone or when it cannot be read)."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("Pss", "Rss"):
                    value = int(rest.split()[0]) * 1024
                    pss, rss = (value, rss) if name == "Pss" else (pss, value)
    except (OSError, ValueError, IndexError):
        return None
    return pss, rss


def tree_memory(root: int | None = None) -> TreeMemory:
    """The memory of the process tree under ``root`` (this process by default)."""
    pids = tree_pids(root)
    if not os.path.isdir("/proc/self"):
        return TreeMemory(len(pids), None, None)
    sizes = [size for size in map(_rollup, pids) if size is not None]
    if not sizes:
        return TreeMemory(len(pids), None, None)
    return TreeMemory(len(pids), sum(s[0] for s in sizes), sum(s[1] for s in sizes))
