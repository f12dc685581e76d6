"""Model speed against the memory-bandwidth bound, and what the disk prompt cache does to the first intent.

    .venv/bin/python benchmarks/bench_backend.py                          # smollm2, qwen2.5-coder-0.5b, -1.5b
    .venv/bin/python benchmarks/bench_backend.py --models smollm2,qwen2.5-coder-0.5b
    .venv/bin/python benchmarks/bench_backend.py --models smollm2 --skip-latency --runs 3
    .venv/bin/python benchmarks/bench_backend.py --model ollama:qwen2.5:7b   # any one spec (speed only)

For each model that is here (the Qwen GGUFs once `intentos models pull NAME` has put them in the
model cache; a model that is not is skipped with a note), in a fresh process each:

* prompt tok/s: a short prompt (about 550 tokens: the planner's role and eight functions) read from
  scratch, `--runs` times after a warm-up: prompt tokens / time to the first token;
* decode tok/s, free (no constraint) and with the workflow grammar (the JSON schema of the whole
  Function Table compiled to a llama.cpp grammar, as the planner uses it):
  (completion tokens - 1) / (total - time to first token); for llama.cpp in-process twice: as the
  backend decodes (the grammar asked about the model's best token first) and, "whole vocab", as
  llama-cpp-python does (the grammar filters every token of the vocabulary at each step), with
  whether the two chose the same tokens;
* each as a fraction of the bandwidth bound. Decoding a token reads every weight once, so on a CPU
  decode is bound by memory bandwidth: max tok/s ~= bandwidth / model bytes. Bandwidth is measured
  here with a numpy copy of a 256 MiB array (bytes read + written per second, best of several).
  Prompt reading batches tokens, so it can beat that bound (the column then says by how much);
* first-intent latency with the real planner prompt (the office fixture, the whole Function Table
  shown, two examples, max_attempts=1), each row in its own process:
    cold              a fresh process and an empty prompt cache (it evaluates the static prefix and saves it);
    warm-in-process   the same intent again in that process after another intent (the prefix in memory);
    warm-from-disk    a fresh process, the prompt cache present (the prefix loaded from disk).
  The goal of issue 16: warm-from-disk within 1.5x of warm-in-process.

Threads: llama.cpp gets the physical cores (the backend's default) unless --n-threads says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from intentos.backends import (  # noqa: E402
    GenerateOptions,
    Message,
    default_model_spec,
    load_backend_settings,
    make_backend,
    parse_spec,
)
from intentos.errors import BackendError  # noqa: E402

MODELS = ("smollm2", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
OFFICE = ROOT / "workflows" / "fixtures" / "office.yaml"
DECODE_PROMPT = [Message(role="system", content="You are a helpful assistant."),
                 Message(role="user", content="Plan, step by step, how to repaint a small bedroom. Write at least "
                                              "ten detailed steps.")]
WORKFLOW_PROMPT = [Message(role="system", content="You turn intents into workflows: a JSON object {\"states\": "
                                                  "[...]} of steps calling the desktop's functions."),
                   Message(role="user", content="Find the notes tagged travel, zip them, and mail the zip to Anna "
                                                "with a short friendly message.")]
INTENT_A = "Mail Anna the notes tagged travel"
INTENT_B = "Remind me to call mum on Friday"


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


def find_model(name: str) -> tuple[str | None, str]:
    """(spec, note): the spec of a model that is here, else None and why not."""
    if ":" in name:  # a full spec
        return name, ""
    try:
        spec = parse_spec(f"llamacpp:{name}")
        path = spec.model_path()
        if path.is_file():
            return str(spec), ""
    except BackendError as exc:
        why = str(exc)
    else:
        why = f"no file at {path}"
    # Before the model registry knows the name, look where `intentos models pull` puts the file.
    dirs = [os.environ.get("INTENTOS_MODELS_DIR"),
            os.environ.get("INTENTOS_HOME") and str(Path(os.environ["INTENTOS_HOME"]) / "models"),
            str(Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "intentos" / "models"),
            str(Path("~/.cache/intentos/models").expanduser())]
    for d in dict.fromkeys(x for x in dirs if x):
        path = Path(d) / f"{name}.gguf"
        if path.is_file():
            return f"llamacpp:{path}", ""
    return None, f"{name}: skipped, not here ({why}); `intentos models pull {name}` fetches it"


def worker_settings(spec: str, args: dict[str, Any]) -> Any:
    return load_backend_settings(spec, {"n_ctx": args["n_ctx"], "n_threads": args.get("n_threads"),
                                        "n_gpu_layers": args.get("n_gpu_layers"),
                                        "prompt_cache": args.get("prompt_cache", False),
                                        "prompt_cache_dir": args.get("prompt_cache_dir")})


# -- workers: each runs in a fresh process and prints one JSON line -------------------------------------------------


def office() -> tuple[Any, Any, tempfile.TemporaryDirectory[str]]:
    from intentos.config import load_settings, make_context
    from intentos.fixture import Fixture
    from intentos.table import FunctionTable

    fixture = Fixture.load(OFFICE)
    tmp = tempfile.TemporaryDirectory(prefix="bench-backend-")
    ctx = make_context(load_settings(), sandbox=Path(tmp.name) / "sandbox", fixed_now=fixture.now,
                       timezone=fixture.timezone, user=fixture.user)
    table = FunctionTable.discover()
    fixture.apply(ctx, table)
    return ctx, table, tmp


def speed_worker(spec: str, args: dict[str, Any]) -> dict[str, Any]:
    from intentos.controller import ROLE

    ctx, table, tmp = office()
    backend = make_backend(spec, worker_settings(spec, args))
    load_start = time.perf_counter()
    if hasattr(backend, "load"):
        backend.load()
    out: dict[str, Any] = {"load_s": time.perf_counter() - load_start, "describe": backend.describe()}

    def fresh() -> None:
        if hasattr(backend, "reset"):
            backend.reset()

    # Prompt reading: the planner's role and the first functions of the table, about 300 tokens.
    lines = table.prompt_text().splitlines()
    short = [Message(role="system", content=f"{ROLE}\n\nFunctions:\n" + "\n".join(lines[:args["prompt_lines"]])),
             Message(role="user", content=INTENT_B)]
    one = GenerateOptions(max_tokens=1, temperature=0.0, seed=0)
    backend.generate(short, options=one)  # warm-up
    rates, tokens = [], 0
    for _ in range(args["runs"]):
        fresh()
        gen = backend.generate(short, options=one)
        tokens = gen.prompt_tokens
        rates.append(gen.prompt_tokens / (gen.ttft_s or gen.total_s))
    out["prompt"] = {"tokens": tokens, "tok_s": statistics.median(rates), "runs": rates}

    options = GenerateOptions(max_tokens=args["max_tokens"], temperature=0.0, seed=0)
    schema = table.workflow_schema()
    llm = getattr(backend.load(), "llm", None) if hasattr(backend, "load") else None
    texts: dict[str, str] = {}
    for mode, prompt, use_schema in (("free", DECODE_PROMPT, None), ("grammar", WORKFLOW_PROMPT, schema),
                                     ("grammar-all", WORKFLOW_PROMPT, schema)):
        if mode == "grammar-all":
            if not hasattr(llm, "check_first"):
                continue
            llm.check_first = False  # llama-cpp-python's own: the grammar filters the whole vocabulary each step
        backend.generate(prompt, schema=use_schema, options=options.model_copy(update={"max_tokens": 4}))  # warm-up
        rates, counts, structured = [], [], "none"
        for _ in range(args["runs"]):
            fresh()
            gen = backend.generate(prompt, schema=use_schema, options=options)
            structured = gen.structured
            counts.append(gen.completion_tokens)
            decode = gen.total_s - (gen.ttft_s or 0.0)
            if gen.completion_tokens > 1 and decode > 0:
                rates.append((gen.completion_tokens - 1) / decode)
            texts[mode] = gen.text
        out[mode] = {"tok_s": statistics.median(rates) if rates else float("nan"), "runs": rates,
                     "tokens": statistics.mean(counts), "structured": structured}
    if llm is not None and hasattr(llm, "check_first"):
        llm.check_first = True
        out["grammar-all"]["same_tokens"] = texts["grammar"] == texts["grammar-all"]
    tmp.cleanup()
    return out


def latency_worker(spec: str, args: dict[str, Any]) -> dict[str, Any]:
    """Resolve `args["intents"]` ([intent, minutes after the fixture's time]) in this process, in order; time each."""
    from intentos.controller import Controller, ControllerSettings, ResolutionFailed

    ctx, table, tmp = office()
    backend = make_backend(spec, worker_settings(spec, {**args, "prompt_cache": True}))
    start = time.perf_counter()
    backend.load()
    out: dict[str, Any] = {"load_s": time.perf_counter() - start, "runs": []}
    controller = Controller(backend, table, ctx, ControllerSettings(max_attempts=1, top_k=len(table) + 1,
                                                                    max_tokens=args["max_tokens"]))
    fixed = ctx.fixed_now
    for intent, minutes in args["intents"]:
        ctx.fixed_now = fixed + timedelta(minutes=minutes)  # another minute: another "Now:" line in the context
        started = time.perf_counter()
        try:
            trace = controller.resolve(intent).trace
        except ResolutionFailed as failed:
            trace = failed.trace
        attempt = trace.attempts[0]
        cache = dict(getattr(backend, "last_prompt_cache", {}))
        cache.pop("file", None)
        out["runs"].append({"intent": intent, "wall_s": time.perf_counter() - started, "ttft_s": attempt.ttft_s,
                            "total_s": attempt.total_s, "prompt_tokens": attempt.prompt_tokens,
                            "completion_tokens": attempt.completion_tokens, "raw": attempt.raw, "cache": cache})
    tmp.cleanup()
    return out


def run_worker(kind: str, spec: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", kind, "--spec", spec, "--worker-args", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker for {spec} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the report ---------------------------------------------------------------------------------------------------


def fmt_rate(rate: float, bound: float | None, percent: bool = True) -> str:
    if bound is None or rate != rate:
        return f"{rate:8.1f}"
    share = rate / bound
    return f"{rate:8.1f} ({100 * share:3.0f}%)" if percent and share < 1 else f"{rate:8.1f} ({share:4.1f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated model names or specs (default: {','.join(MODELS)})")
    parser.add_argument("--model", default=None, help="one model spec (overrides --models)")
    parser.add_argument("--n-gpu-layers", type=int, default=None, help="layers to offload (-1 = all)")
    parser.add_argument("--n-ctx", type=int, default=8192, help="context (the whole table is ~5k tokens)")
    parser.add_argument("--n-threads", type=int, default=None, help="CPU threads (default: the physical cores)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per speed figure (median)")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens decoded per speed run")
    parser.add_argument("--prompt-lines", type=int, default=8, help="function lines in the prompt-speed prompt")
    parser.add_argument("--latency-max-tokens", type=int, default=48, help="completion limit for the latency runs")
    parser.add_argument("--skip-latency", action="store_true", help="speed figures only")
    parser.add_argument("--skip-speed", action="store_true", help="latency figures only")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--worker", choices=("speed", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        work = speed_worker if args.worker == "speed" else latency_worker
        print(json.dumps(work(args.spec, json.loads(args.worker_args))))
        return

    names = [default_model_spec(args.model)] if args.model else [n.strip() for n in args.models.split(",") if n.strip()]
    common = {"n_ctx": args.n_ctx, "n_threads": args.n_threads, "n_gpu_layers": args.n_gpu_layers}
    bandwidth = memory_bandwidth()
    print(f"machine          {platform.machine()}, {os.cpu_count()} CPU(s) ({len(os.sched_getaffinity(0))} usable), "
          f"Python {platform.python_version()}")
    print(f"memory bandwidth {bandwidth / 1e9:.1f} GB/s (numpy copy of 256 MiB, read+write, best of 5)")
    print(f"settings         n_ctx={args.n_ctx}, runs={args.runs}, max_tokens={args.max_tokens}, "
          f"latency max_tokens={args.latency_max_tokens}, threads={args.n_threads or 'physical cores'}")
    report: dict[str, Any] = {"bandwidth_bytes_s": bandwidth, "models": {}}
    for name in names:
        spec, note = find_model(name)
        if spec is None:
            print(f"\n{note}")
            continue
        print(f"\n== {name}  ({spec})")
        entry: dict[str, Any] = report["models"].setdefault(name, {"spec": spec})
        bound = None
        if not args.skip_speed:
            speed = run_worker("speed", spec, {**common, "runs": args.runs, "max_tokens": args.max_tokens,
                                               "prompt_lines": args.prompt_lines}, timeout=3600)
            entry["speed"] = speed
            info = speed["describe"]
            size = info.get("size_bytes")
            bound = bandwidth / size if size else None
            if size:
                print(f"model file       {size} bytes ({size / 2**20:.0f} MiB), {info.get('model_name')}, "
                      f"load {speed['load_s']:.2f} s, threads {info.get('n_threads')}, "
                      f"GPU layers {info.get('gpu_layers_effective')}")
                print(f"bandwidth bound  {bound:.1f} tok/s (bandwidth / model bytes)")
            print(f"{'':17}{'tok/s (of bound)':>20}   detail")
            print(f"{'prompt':17}{fmt_rate(speed['prompt']['tok_s'], bound):>20}   "
                  f"{speed['prompt']['tokens']} prompt tokens read from scratch")
            for mode, label in (("free", "decode free"), ("grammar", "decode grammar"),
                                ("grammar-all", "  whole vocab")):
                r = speed.get(mode)
                if r is None:
                    continue
                same = f", same tokens as the row above: {r['same_tokens']}" if "same_tokens" in r else ""
                print(f"{label:17}{fmt_rate(r['tok_s'], bound):>20}   "
                      f"{r['tokens']:.0f} tokens, constrained: {r['structured']}{same}")
        if not args.skip_latency:
            with tempfile.TemporaryDirectory(prefix="bench-prompt-cache-") as cache:
                lat = {**common, "prompt_cache_dir": cache, "max_tokens": args.latency_max_tokens}
                first = run_worker("latency", spec, {**lat, "intents": [[INTENT_B, 0], [INTENT_A, 0], [INTENT_B, 0],
                                                                        [INTENT_B, 1]]}, 7200)
                second = run_worker("latency", spec, {**lat, "intents": [[INTENT_B, 0]]}, 7200)
                files = sorted(Path(cache).glob("*.kvstate"))
                cache_mib = sum(f.stat().st_size for f in files) / 2**20
            cold, _, warm_mem, warm_next = first["runs"]
            warm_disk = second["runs"][0]
            entry["latency"] = {"cold": cold, "warm_in_process": warm_mem, "warm_in_process_next_minute": warm_next,
                                "warm_from_disk": warm_disk, "load_s": [first["load_s"], second["load_s"]],
                                "cache_mib": cache_mib}
            print(f"first intent     {INTENT_B!r}: {cold['prompt_tokens']} prompt tokens, static prefix "
                  f"{cold['cache'].get('prefix_tokens')} (saved state {cache_mib:.0f} MiB), "
                  f"max {args.latency_max_tokens} completion tokens")
            print(f"{'':24}{'TTFT s':>9}{'total s':>9}{'wall s':>9}{'tokens':>8}{'reused':>8}   prefix")
            for label, run in (("cold", cold), ("warm-from-disk", warm_disk), ("warm-in-process", warm_mem),
                               ("warm-in-process, +1 min", warm_next)):
                c = run["cache"]
                how = {"saved": "evaluated + saved", "disk": "loaded from disk", "memory": "in memory"}.get(
                    c.get("source"), c.get("source"))
                extra = "".join(f", {k} {c[k]:.2f} s" for k in ("eval_s", "save_s", "load_s") if k in c)
                print(f"{label:24}{run['ttft_s'] or 0:9.2f}{run['total_s']:9.2f}{run['wall_s']:9.2f}"
                      f"{run['completion_tokens']:8}{c.get('reused_tokens', 0):8}   {how}{extra}")
            same = cold["raw"] == warm_disk["raw"] == warm_mem["raw"]
            for label, warm in (("warm-in-process", warm_mem), ("warm-in-process, +1 min", warm_next)):
                print(f"warm-from-disk / {label + ':':25}{warm_disk['wall_s'] / warm['wall_s']:5.2f}x wall, "
                      f"{(warm_disk['ttft_s'] or 0) / max(warm['ttft_s'] or 0, 1e-9):5.2f}x TTFT (goal: <= 1.5x)")
            print(f"cold / warm-from-disk: {cold['wall_s'] / warm_disk['wall_s']:.1f}x wall; "
                  f"model load {first['load_s']:.2f} s / {second['load_s']:.2f} s (not in these rows); "
                  f"same reply cold, from disk, in process: {same}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
