#!/usr/bin/env python3
"""Same-run baseline for the GPU benchmarks: the reference ProVP code's shape
in plain PyTorch (OpenAI CLIP blocks with nn.MultiheadAttention, sequence-
first, fp16 student with in-place prompt blending, fp32 frozen teacher for the
Ref loss), random ViT-B/16 weights. Prints one JSON line per measurement so
the C++ benchmarks' figures can be compared by ratio on the same GPU.

Usage: reference_baseline.py [--prompts 50] [--infer-batch 256] [--train-batch 32]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), QuickGELU(), nn.Linear(4 * d, d))
        self.ln_2 = LayerNorm(d)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    def __init__(self, width=768, layers=12, heads=12, patch=16, res=224, out=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        g = res // patch
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.positional_embedding = nn.Parameter(torch.randn(g * g + 1, width) * 0.01)
        self.ln_pre = LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * width ** -0.5)

    def forward(self, img, prompts=None, alpha=0.01):
        x = self.conv1(img.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)  # LND, as the reference
        m = 0
        if prompts is not None:
            p = prompts.to(x.dtype)
            m = p.shape[1]
            x = torch.cat([x[:1], p[0].unsqueeze(1).expand(-1, x.shape[1], -1), x[1:]], 0)
        for i, blk in enumerate(self.blocks):
            if prompts is not None and 0 < i < p.shape[0]:
                x[1:m + 1] = alpha * x[1:m + 1] + (1 - alpha) * p[i].unsqueeze(1)  # in place (Q15)
            x = blk(x)
        return self.ln_post(x[0]) @ self.proj.to(x.dtype)


def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    student = ViT().to(dev).half().eval()
    for mod in student.modules():  # as clip.model.convert_weights: LayerNorm stays fp32
        if isinstance(mod, nn.LayerNorm):
            mod.float()
    for p in student.parameters():
        p.requires_grad_(False)
    teacher = ViT().to(dev).float().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    prompts = nn.Parameter(torch.empty(12, a.prompts, 768, device=dev).uniform_(-0.0665, 0.0665))
    text = F.normalize(torch.randn(100, 512, device=dev), dim=-1).half()
    gpu = torch.cuda.get_device_name(0)

    with torch.no_grad():
        img = torch.randn(a.infer_batch, 3, 224, 224, device=dev)
        for dtype, model in (("fp16", student), ("fp32", teacher)):
            s = timed(lambda: model(img, prompts), a.iters)
            print(json.dumps({"system": "reference-shape pytorch", "what": "prompted_forward", "dtype": dtype,
                              "batch": a.infer_batch, "prompts": a.prompts, "ms_per_batch": s * 1e3,
                              "images_per_s": a.infer_batch / s, "gpu": gpu, "torch": torch.__version__}))
        img1 = torch.randn(1, 3, 224, 224, device=dev)
        lat = []
        for i in range(200):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            student(img1, prompts)
            torch.cuda.synchronize()
            if i >= 20:
                lat.append(time.perf_counter() - t0)
        lat.sort()
        print(json.dumps({"system": "reference-shape pytorch", "what": "batch1_latency", "dtype": "fp16",
                          "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "gpu": gpu}))

    opt = torch.optim.SGD([prompts], lr=0.1, momentum=0.9, weight_decay=5e-4)
    xb = torch.randn(a.train_batch, 3, 224, 224, device=dev)
    yb = torch.randint(0, 100, (a.train_batch,), device=dev)

    def step():
        f = F.normalize(student(xb, prompts), dim=-1)
        with torch.no_grad():
            g = F.normalize(teacher(xb), dim=-1).to(f.dtype)
        loss = F.cross_entropy(100 * f @ text.t(), yb) + F.cross_entropy(f @ g.t(), torch.arange(a.train_batch, device=dev))
        opt.zero_grad()
        loss.backward()
        opt.step()

    torch.cuda.reset_peak_memory_stats()
    s = timed(step, a.iters)
    print(json.dumps({"system": "reference-shape pytorch", "what": "train_step_ref", "dtype": "fp16 student / fp32 teacher",
                      "batch": a.train_batch, "prompts": a.prompts, "ms_per_step": s * 1e3,
                      "images_per_s": a.train_batch / s,
                      "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "gpu": gpu}))


if __name__ == "__main__":
    main()
