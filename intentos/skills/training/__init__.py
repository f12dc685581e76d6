"""Distributed training jobs: DDP, DiLoCo and DiLoCo with DCT momentum compression on torch.distributed.

Modules, one concept each: `dct` (orthonormal DCT-II on tiles, top-k), `comm` (collectives that count
their bytes), `strategies` (how replicas synchronise), `workloads` (offline LM and CNN tasks), `config`
(the job file), `loop` (the torchrun entry point), `jobs` (background jobs), `app` (the `training` app).
"""
