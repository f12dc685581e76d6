"""DDP vs DiLoCo vs DiLoCo-DCT on the offline byte-level LM, with 2 and 4 processes (gloo on CPU).

For each process count it runs, one job at a time (so jobs do not compete for cores):
DDP, DiLoCo (H) and DiLoCo-DCT (H, tile, k) for each k, through the same job launcher as
`intentos skills training start`. It prints the final eval loss and the total bytes each rank passed to
collectives, and the ratio DiLoCo bytes ÷ DiLoCo-DCT bytes, marking the DiLoCo-DCT runs whose
eval loss is within --tolerance (default 2 %) of DiLoCo's ("matched loss").

    .venv/bin/python benchmarks/bench_diloco.py                       # default: ~10-15 min on 2 cores
    .venv/bin/python benchmarks/bench_diloco.py --nproc 2 --steps 2000 --d-model 128 --layers 4 --ks 1 2 4 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from intentos.skills.training import jobs
from intentos.skills.training.compare import human_bytes
from intentos.skills.training.config import parse_config


def job(name: str, strategy: dict, args: argparse.Namespace) -> dict:
    return {"name": name, "steps": args.steps, "eval_every": args.eval_every, "seed": args.seed,
            "workload": {"kind": "lm", "seq_len": args.seq_len, "d_model": args.d_model, "n_layers": args.layers,
                         "n_heads": args.heads, "batch_size": args.batch, "eval_windows": args.eval_windows},
            "strategy": strategy, "optimizer": {"lr": args.lr, "warmup": args.warmup, "weight_decay": 0.0}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, nargs="+", default=[2, 4])
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--H", type=int, default=16)
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--feedback", choices=["add_back", "residual"], default="add_back")
    p.add_argument("--no-ddp", action="store_true", help="skip the DDP baseline")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=32)
    p.add_argument("--eval-windows", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=0.02, help="relative eval-loss gap that counts as matched")
    p.add_argument("--out", type=Path, default=None, help="jobs folder (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    if args.eval_every % args.H:
        p.error("--eval-every must be a multiple of --H")
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-diloco-"))
    results = []
    for nproc in args.nproc:
        methods = [] if args.no_ddp else [("ddp", {"kind": "ddp"})]
        methods.append((f"diloco-H{args.H}", {"kind": "diloco", "H": args.H}))
        methods += [(f"dct-H{args.H}-t{args.tile}-k{k}", {"kind": "diloco_dct", "H": args.H, "tile": args.tile, "k": k,
                                                          "feedback": args.feedback}) for k in args.ks]
        for name, strategy in methods:
            cfg = parse_config(job(name, strategy, args))
            started = time.monotonic()
            jobs.start(cfg, root / f"n{nproc}", nproc=nproc)
            status = jobs.wait(root / f"n{nproc}", name, timeout=24 * 3600)
            if status.state != "finished":
                print(f"{name} with {nproc} processes {status.state}:\n{status.log_tail}", file=sys.stderr)
                return 1
            row = {"nproc": nproc, "method": name, "strategy": status.strategy, "eval_loss": status.eval_loss,
                   "bytes": status.bytes, "seconds": round(time.monotonic() - started, 1)}
            results.append(row)
            print(f"  n={nproc} {name:<22} eval loss {status.eval_loss:.4f}  {human_bytes(status.bytes):>10}/rank"
                  f"  ({row['seconds']} s)", flush=True)
    print(f"\nLM: {args.steps} steps, d_model {args.d_model}, {args.layers} layers, seq {args.seq_len}, "
          f"batch {args.batch}/rank; H={args.H}, tile={args.tile}, feedback={args.feedback}; jobs in {root}\n")
    header = f"{'n':>2} {'method':<22} {'eval loss':>9} {'vs DiLoCo':>9} {'bytes/rank':>12} {'DiLoCo÷this':>11} matched"
    print(header)
    print("-" * len(header))
    for nproc in args.nproc:
        base = next(r for r in results if r["nproc"] == nproc and r["method"].startswith("diloco"))
        best = None
        for r in (r for r in results if r["nproc"] == nproc):
            gap = (r["eval_loss"] - base["eval_loss"]) / base["eval_loss"]
            ratio = base["bytes"] / r["bytes"]
            matched = r["method"].startswith("dct") and gap <= args.tolerance
            r |= {"gap": gap, "ratio_vs_diloco": ratio, "matched": matched}
            if matched and (best is None or ratio > best["ratio_vs_diloco"]):
                best = r
            print(f"{nproc:>2} {r['method']:<22} {r['eval_loss']:>9.4f} {gap:>+8.2%} {human_bytes(r['bytes']):>12} "
                  f"{ratio:>10.1f}x {'yes' if matched else ''}")
        if best:
            print(f"   n={nproc}: DiLoCo bytes ÷ DiLoCo-DCT bytes at matched loss (within {args.tolerance:.0%}): "
                  f"{best['ratio_vs_diloco']:.1f}x ({best['method']}, {best['gap']:+.2%})")
        else:
            print(f"   n={nproc}: no DiLoCo-DCT run within {args.tolerance:.0%} of DiLoCo's eval loss")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
