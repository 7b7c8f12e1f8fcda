#!/usr/bin/python3
"""CPU same-run baseline: the reference ProVP image tower (bench/reference/
reference_model.py) in fp32 on Debian's python3-torch 1.13, the LibTorch
generation provp links. Prints one JSON line per measurement with the
process's user/system CPU seconds and minor page faults spent in it, so
bench/cpu/run.sh can set provp's figures beside it by ratio.

Usage: reference_cpu.py [--threads 2] [--prompts 50] [--batch 1,8]
                        [--train-batch 8] [--iters 3] [--warmup 1]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import reference_model as ref  # noqa: E402


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def measure(fn, warmup, iters):
    """Best and mean seconds per call, and CPU use over the timed calls."""
    for _ in range(warmup):
        fn()
    u0, s0, f0 = usage()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    u1, s1, f1 = usage()
    return {"best_s": min(times), "mean_s": sum(times) / len(times),
            "user_s": (u1 - u0) / iters, "sys_s": (s1 - s0) / iters,
            "minor_faults": (f1 - f0) // iters}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--train-batch", type=int, default=8, help="0 skips the training step")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    student = ref.frozen(ref.ViT())
    prompts = nn.Parameter(torch.empty(12, a.prompts, 768).uniform_(-0.0665, 0.0665))
    common = {"system": "reference", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "prompts": a.prompts, "dtype": "fp32"}
    with torch.no_grad():
        for b in [int(s) for s in a.batch.split(",") if s]:
            img = torch.randn(b, 3, 224, 224)
            r = measure(lambda: student(img, prompts), a.warmup, a.iters)
            print(json.dumps({**common, "what": "prompted_forward", "batch": b, **r,
                              "images_per_s": b / r["best_s"]}), flush=True)
    if a.train_batch > 0:
        # The reference trains against a second, fp32 frozen CLIP (METHOD.md Q18).
        teacher = ref.frozen(ref.ViT())
        teacher.load_state_dict(student.state_dict())
        opt = torch.optim.SGD([prompts], lr=0.1, momentum=0.9, weight_decay=5e-4)
        b = a.train_batch
        xb = torch.randn(b, 3, 224, 224)
        yb = torch.randint(0, 100, (b,))
        text = nn.functional.normalize(torch.randn(100, 512), dim=-1)
        r = measure(lambda: ref.ref_train_step(student, teacher, prompts, opt, xb, yb, text),
                    a.warmup, a.iters)
        print(json.dumps({**common, "what": "train_step_ref", "batch": b, **r,
                          "images_per_s": b / r["best_s"]}), flush=True)


if __name__ == "__main__":
    main()
