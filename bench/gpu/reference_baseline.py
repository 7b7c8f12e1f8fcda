#!/usr/bin/env python3
"""Same-run baselines for the GPU benchmarks: the reference ProVP code's shape
(bench/reference/reference_model.py: OpenAI CLIP blocks with
nn.MultiheadAttention, sequence-first, fp16 student with in-place prompt
blending, fp32 frozen teacher for the Ref loss), random ViT-B/16 weights, and
the same model in bf16 under torch.compile (the strongest plain-PyTorch
figure). Prints one JSON line per measurement so the C++ benchmarks' figures
can be compared by ratio on the same GPU.

Usage: reference_baseline.py [--prompts 50] [--infer-batch 1,32,256]
                             [--train-batch 32] [--iters 20] [--no-compile]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import reference_model as ref  # noqa: E402


def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def latency(fn, n=200, skip=20):
    lat = []
    for i in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        if i >= skip:
            lat.append(time.perf_counter() - t0)
    lat.sort()
    return lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--infer-batch", default="1,32,256")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    student = ref.frozen(ref.half_with_fp32_layernorm(ref.ViT().to(dev)))
    teacher = ref.frozen(ref.ViT().to(dev).float())
    prompts = nn.Parameter(torch.empty(12, a.prompts, 768, device=dev).uniform_(-0.0665, 0.0665))
    text = F.normalize(torch.randn(100, 512, device=dev), dim=-1).half()
    gpu = torch.cuda.get_device_name(0)
    common = {"system": "reference-shape pytorch", "gpu": gpu, "torch": torch.__version__,
              "prompts": a.prompts}
    batches = [int(b) for b in a.infer_batch.split(",") if b]

    with torch.no_grad():
        for b in batches:
            img = torch.randn(b, 3, 224, 224, device=dev)
            for dtype, model in (("fp16", student), ("fp32", teacher)):
                if dtype == "fp32" and b != max(batches):
                    continue
                s = timed(lambda: model(img, prompts), a.iters)
                print(json.dumps({**common, "what": "prompted_forward", "dtype": dtype, "batch": b,
                                  "ms_per_batch": s * 1e3, "images_per_s": b / s}), flush=True)
        img1 = torch.randn(1, 3, 224, 224, device=dev)
        p50, p99 = latency(lambda: student(img1, prompts))
        print(json.dumps({**common, "what": "batch1_latency", "dtype": "fp16", "p50_ms": p50,
                          "p99_ms": p99}), flush=True)

        if not a.no_compile:
            # The same model in bf16 (LayerNorm fp32) under torch.compile.
            compiled_model = ref.frozen(ref.ViT().to(dev).to(torch.bfloat16))
            for mod in compiled_model.modules():
                if isinstance(mod, nn.LayerNorm):
                    mod.float()
            compiled = torch.compile(compiled_model, mode="max-autotune-no-cudagraphs")
            pb = prompts.detach().to(torch.bfloat16)
            for b in batches:
                img = torch.randn(b, 3, 224, 224, device=dev)
                s = timed(lambda: compiled(img, pb), a.iters)
                print(json.dumps({**common, "system": "same model, torch.compile", "what": "prompted_forward",
                                  "dtype": "bf16", "batch": b, "ms_per_batch": s * 1e3,
                                  "images_per_s": b / s}), flush=True)

    opt = torch.optim.SGD([prompts], lr=0.1, momentum=0.9, weight_decay=5e-4)
    xb = torch.randn(a.train_batch, 3, 224, 224, device=dev)
    yb = torch.randint(0, 100, (a.train_batch,), device=dev)
    torch.cuda.reset_peak_memory_stats()
    s = timed(lambda: ref.ref_train_step(student, teacher, prompts, opt, xb, yb, text), a.iters)
    print(json.dumps({**common, "what": "train_step_ref", "dtype": "fp16 student / fp32 teacher",
                      "batch": a.train_batch, "ms_per_step": s * 1e3, "images_per_s": a.train_batch / s,
                      "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30}), flush=True)


if __name__ == "__main__":
    main()
