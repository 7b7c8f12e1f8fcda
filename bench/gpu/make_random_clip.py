#!/usr/bin/env python3
"""Writes a CLIP checkpoint in OpenAI's layout with random weights, for
speed measurements where no real weights can travel (the GPU host has no
network; ViT-B/16's 300 MB are over the carry limit). Shapes decide
speed, not values: the server and the benchmarks run it like the real
model. Default ViT-B/16 (vision 768 wide, 12 layers, 16 px patches at
224 px; text 512 wide, 12 layers, 77 tokens), fp16, safetensors.

Usage: make_random_clip.py OUT.safetensors [--seed 0]
"""
import argparse

import torch
from safetensors.torch import save_file


def block(prefix, width, out, gen):
    def rand(*shape, std=0.02):
        return torch.randn(*shape, generator=gen) * std

    out[prefix + "attn.in_proj_weight"] = rand(3 * width, width)
    out[prefix + "attn.in_proj_bias"] = torch.zeros(3 * width)
    out[prefix + "attn.out_proj.weight"] = rand(width, width)
    out[prefix + "attn.out_proj.bias"] = torch.zeros(width)
    out[prefix + "ln_1.weight"] = torch.ones(width)
    out[prefix + "ln_1.bias"] = torch.zeros(width)
    out[prefix + "mlp.c_fc.weight"] = rand(4 * width, width)
    out[prefix + "mlp.c_fc.bias"] = torch.zeros(4 * width)
    out[prefix + "mlp.c_proj.weight"] = rand(width, 4 * width)
    out[prefix + "mlp.c_proj.bias"] = torch.zeros(width)
    out[prefix + "ln_2.weight"] = torch.ones(width)
    out[prefix + "ln_2.bias"] = torch.zeros(width)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-width", type=int, default=768)
    ap.add_argument("--vision-layers", type=int, default=12)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--text-width", type=int, default=512)
    ap.add_argument("--text-layers", type=int, default=12)
    ap.add_argument("--embed-dim", type=int, default=512)
    a = ap.parse_args()
    gen = torch.Generator().manual_seed(a.seed)
    vw, tw = a.vision_width, a.text_width
    grid = a.resolution // a.patch
    w = {}
    w["visual.conv1.weight"] = torch.randn(vw, 3, a.patch, a.patch, generator=gen) * 0.02
    w["visual.class_embedding"] = torch.randn(vw, generator=gen) * vw**-0.5
    w["visual.positional_embedding"] = torch.randn(grid * grid + 1, vw, generator=gen) * vw**-0.5
    w["visual.ln_pre.weight"] = torch.ones(vw)
    w["visual.ln_pre.bias"] = torch.zeros(vw)
    for i in range(a.vision_layers):
        block(f"visual.transformer.resblocks.{i}.", vw, w, gen)
    w["visual.ln_post.weight"] = torch.ones(vw)
    w["visual.ln_post.bias"] = torch.zeros(vw)
    w["visual.proj"] = torch.randn(vw, a.embed_dim, generator=gen) * vw**-0.5
    w["token_embedding.weight"] = torch.randn(49408, tw, generator=gen) * 0.02
    w["positional_embedding"] = torch.randn(77, tw, generator=gen) * 0.01
    for i in range(a.text_layers):
        block(f"transformer.resblocks.{i}.", tw, w, gen)
    w["ln_final.weight"] = torch.ones(tw)
    w["ln_final.bias"] = torch.zeros(tw)
    w["text_projection"] = torch.randn(tw, a.embed_dim, generator=gen) * tw**-0.5
    w["logit_scale"] = torch.tensor(4.6052)
    save_file({k: v.half().contiguous() for k, v in w.items()}, a.out)


if __name__ == "__main__":
    main()
