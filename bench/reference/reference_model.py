"""The reference ProVP code's image tower, re-typed for same-run baselines.

Shape of the authors' `clip/model.py` (MCG-NJU/ProVP) as METHOD.md section 2
describes it: OpenAI CLIP residual blocks with `nn.MultiheadAttention`,
sequence-first (L, B, D) inside the transformer, LayerNorm computed in fp32,
QuickGELU, prompts inserted after `ln_pre` as [CLS, P_0, patches] and blended
in place before each later layer (alpha 0.01), prompt tokens kept to the end,
CLS pooled through `ln_post` and `proj`. Random weights: the benchmarks time
arithmetic, not accuracy. Shared by bench/gpu and bench/cpu.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.LayerNorm):
    """CLIP's LayerNorm subclass: statistics in fp32, result in the input dtype."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """OpenAI ResidualAttentionBlock: x + attn(ln_1(x)), x + mlp(ln_2(x))."""

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
    """The prompted `visual(images, prompts)` of the reference code."""

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


def frozen(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def half_with_fp32_layernorm(model):
    """clip.model.convert_weights: fp16 weights, LayerNorm parameters stay fp32."""
    model.half()
    for mod in model.modules():
        if isinstance(mod, nn.LayerNorm):
            mod.float()
    return model


def ref_train_step(student, teacher, prompts, opt, xb, yb, text):
    """One ProVP-Ref step as the reference trainer runs it: prompted student,
    frozen teacher under no_grad on the same view, CE + in-batch Ref CE,
    backward to the prompts, SGD."""
    f = F.normalize(student(xb, prompts), dim=-1)
    with torch.no_grad():
        g = F.normalize(teacher(xb), dim=-1).to(f.dtype)
    targets = torch.arange(xb.shape[0], device=xb.device)
    loss = F.cross_entropy(100 * f @ text.t(), yb) + F.cross_entropy(f @ g.t(), targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss
