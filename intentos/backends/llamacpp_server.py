"""`python -m intentos.backends.llamacpp_server ARGS`: llama-cpp-python's OpenAI-compatible server
(`python -m llama_cpp.server ARGS`), with the same CPU guard as the in-process backend."""

from __future__ import annotations

import runpy

from intentos.backends import llamacpp_cpu

if __name__ == "__main__":
    llamacpp_cpu.apply()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
