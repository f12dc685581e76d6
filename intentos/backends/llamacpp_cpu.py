"""A guard against a llama.cpp crash on CPUs with AMX: no weight repacking there.

llama-cpp-python 0.3.36, built natively on a CPU with AMX tiles (Sapphire Rapids and later), dies
with a segmentation fault in the first decode of a Q4_1 model when llama.cpp repacks the weights into
its "extra" buffer types (the AMX and CPU-repack kernels). Loading with `use_extra_bufts = false`
decodes correctly. llama-cpp-python has no argument for that field, so the default model parameters
it starts from are wrapped once per process. `INTENTOS_LLAMA_REPACK=1` turns repacking back on
(a fixed build), `=0` turns it off on any CPU.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

_APPLIED = threading.Lock()
_done = False


def repack_is_safe() -> bool:
    """Whether llama.cpp may repack weights here (the env var decides; else: not on an AMX CPU)."""
    choice = os.environ.get("INTENTOS_LLAMA_REPACK", "").strip()
    if choice in ("0", "1"):
        return choice == "1"
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return True
    return "amx_tile" not in flags


def apply() -> None:
    """Make every model this process loads skip weight repacking when that is not safe here."""
    global _done
    with _APPLIED:
        if _done:
            return
        _done = True
        if repack_is_safe():
            return
        import llama_cpp
        import llama_cpp.llama

        original = llama_cpp.llama_model_default_params

        @functools.wraps(original)
        def without_repacking():  # type: ignore[no-untyped-def]
            params = original()
            params.use_extra_bufts = False
            return params

        # llama.py calls it through its own reference to the module, so one assignment covers both.
        llama_cpp.llama_model_default_params = without_repacking
        llama_cpp.llama.llama_cpp.llama_model_default_params = without_repacking
