#!/usr/bin/env python3
"""Ratios of the GPU run (scripts/gpu/run-gpu-checks.sh): provp's JSON lines
(clip_bench.jsonl) beside the same-run baselines (baseline.jsonl).
Usage: summarize.py OUT_DIR"""
import json
import os
import sys

out = sys.argv[1]
rows = []
for name in ("baseline.jsonl", "clip_bench.jsonl"):
    path = os.path.join(out, name)
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))


def rate(system, what, batch, dtype=None):
    for r in rows:
        if (r.get("system") == system and r.get("what") == what and r.get("batch") == batch
                and (dtype is None or r.get("dtype") == dtype)):
            return r["images_per_s"]
    return None


for b in (1, 32, 256):
    p = rate("provp", "prompted_forward", b, "bf16")
    r = rate("reference-shape pytorch", "prompted_forward", b, "fp16")
    c = rate("same model, torch.compile", "prompted_forward", b)
    if p and r:
        line = f"prompted batch {b}: provp {p:.0f}/s, reference {r:.0f}/s ({p / r:.2f}x)"
        if c:
            line += f", torch.compile {c:.0f}/s ({p / c:.2f}x)"
        print(line)
m = rate("provp", "mixed_sets_forward", 256, "bf16")
s = rate("provp", "prompted_forward", 256, "bf16")
if m and s:
    print(f"256 images / 256 prompt sets: {m:.0f}/s = {m / s:.2f} of the single-set rate")
