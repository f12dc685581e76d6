"""Decode speed and time to first token of a model backend, with and without schema-constrained decoding.

    python benchmarks/bench_backend.py                       # the embedded SmolLM2 on this machine
    python benchmarks/bench_backend.py --n-gpu-layers -1     # offload every layer (a GPU build of llama.cpp)
    python benchmarks/bench_backend.py --model ollama:qwen2.5:7b --runs 5

For each mode a fixed prompt is generated `--runs` times after one warm-up; for llama.cpp the
prompt cache is cleared before every run so TTFT includes evaluating the whole prompt.
decode tok/s = (completion tokens - 1) / (total - ttft): the first token is part of TTFT.

Decoding a token reads every weight once, so on a CPU it is bound by memory bandwidth:
max tok/s ~= bandwidth / model bytes. Bandwidth is measured with a numpy copy of a 256 MiB
array (bytes read + bytes written per second, best of several).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from intentos.backends import GenerateOptions, Message, default_model_spec, load_backend_settings, make_backend  # noqa: E402

PROMPT = [Message(role="system", content="You are a helpful assistant."),
          Message(role="user", content="Plan, step by step, how to repaint a small bedroom. Answer as JSON with "
                                       "a title and a list of steps.")]
SCHEMA = {"type": "object",
          "properties": {"title": {"type": "string"}, "steps": {"type": "array", "items": {"type": "string"}}},
          "required": ["title", "steps"]}


def memory_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Bytes per second moved by a large array copy (read + write), best of `repeats`."""
    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def run_mode(backend: Any, schema: dict[str, Any] | None, runs: int, max_tokens: int) -> dict[str, Any]:
    options = GenerateOptions(max_tokens=max_tokens, temperature=0.0, seed=0)
    backend.generate(PROMPT, schema=schema, options=options)  # warm-up (load, caches)
    ttfts, rates, tokens, structured = [], [], [], "none"
    for _ in range(runs):
        if hasattr(backend, "reset"):
            backend.reset()
        gen = backend.generate(PROMPT, schema=schema, options=options)
        structured = gen.structured
        ttfts.append(gen.ttft_s or 0.0)
        tokens.append(gen.completion_tokens)
        decode = gen.total_s - (gen.ttft_s or 0.0)
        if gen.completion_tokens > 1 and decode > 0:
            rates.append((gen.completion_tokens - 1) / decode)
    return {"structured": structured, "ttft_ms": 1000 * statistics.mean(ttfts),
            "decode_tok_s": statistics.mean(rates) if rates else float("nan"),
            "completion_tokens": statistics.mean(tokens), "prompt_tokens": gen.prompt_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model spec (default: the configured model)")
    parser.add_argument("--n-gpu-layers", type=int, default=None, help="layers to offload (-1 = all)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--n-threads", type=int, default=None, help="CPU threads (default: llama.cpp's choice)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    spec = default_model_spec(args.model)
    settings = load_backend_settings(spec, {"n_gpu_layers": args.n_gpu_layers, "n_ctx": args.n_ctx,
                                                "n_threads": args.n_threads})
    backend = make_backend(spec, settings)
    ok, why = backend.reachable()
    if not ok:
        sys.exit(f"{spec}: {why}")

    print(f"model            {spec}")
    print(f"machine          {platform.machine()}, {os.cpu_count()} CPU(s), {platform.python_version()}")
    results = {"plain": run_mode(backend, None, args.runs, args.max_tokens),
               "schema": run_mode(backend, SCHEMA, args.runs, args.max_tokens)}
    info = backend.describe()
    if "size_bytes" in info:
        print(f"model file       {info['path']}")
        print(f"model size       {info['size_bytes']} bytes ({info['size_bytes'] / 2**20:.1f} MiB)")
        print(f"n_gpu_layers     {info['n_gpu_layers']} (GPU offload supported by this llama.cpp build: "
              f"{info['gpu_offload_supported']}; effective {info['gpu_layers_effective']})")
        print(f"n_ctx, threads   {info['n_ctx']}, {info['n_threads']}")
    print(f"prompt           {results['plain']['prompt_tokens']} tokens; {args.runs} runs per mode after a warm-up, "
          f"max_tokens={args.max_tokens}")
    print()
    print(f"{'mode':<24}{'TTFT ms':>10}{'decode tok/s':>14}{'tokens':>8}")
    for name, r in results.items():
        label = f"{name} ({r['structured']})"
        print(f"{label:<24}{r['ttft_ms']:>10.1f}{r['decode_tok_s']:>14.1f}{r['completion_tokens']:>8.1f}")
    print()
    bandwidth = memory_bandwidth()
    print(f"memory bandwidth {bandwidth / 1e9:.1f} GB/s (numpy copy of 256 MiB, read+write)")
    if "size_bytes" in info and info["size_bytes"]:
        bound = bandwidth / info["size_bytes"]
        measured = results["plain"]["decode_tok_s"]
        print(f"bandwidth bound  {bound:.0f} tok/s max decode (bandwidth / model bytes); "
              f"measured plain decode is {100 * measured / bound:.0f}% of it")


if __name__ == "__main__":
    main()
