#!/usr/bin/python3
"""Train, cross-validate and export the radnode mammography model 'mammo-mias' (issue 6).

    /usr/bin/python3 models/mammo/train.py --lesion-patches --seed-offset 1 --version 1.2.0
                                                      # the shipped 1.2.0: 5-fold CV + final model, ~27 min on 2 cores
    /usr/bin/python3 models/mammo/train.py --seed-offset 0 --final-on-all --version 1.1.0   # the recipe of 1.1.0
    /usr/bin/python3 models/mammo/train.py --quick    # 1 epoch each: a smoke test of the pipeline
    /usr/bin/python3 models/mammo/train.py --bilateral --threads 1   # experiment: 2-channel input (this film +
                                                      # the same woman's other-side film); writes to /tmp/mammo/bilateral

Data: ../shared/data/mg/mini-mias (322 MLO films, 161 women, 512x512, lesion centre/radius in labels.csv).
Writes next to this script (or to --out; --bilateral defaults to /tmp/mammo/bilateral, so an experiment never
replaces the shipped files): model.onnx, manifest.json (operating points from the out-of-fold predictions),
metrics.json, golden.json. CARD.md is written by hand from metrics.json.

Preprocessing contract (identical here and in src/inference/mammogram.ts):
  display  = clip((x - p_lo) / max(1, p_hi - p_lo), 0, 1), p_lo/p_hi the 0.5/99.5th nearest-rank percentiles of
             the whole image (src/dicom percentileWindow); MONOCHROME1 inverted by the imaging core
  orient   = chest wall at column 0: Patient Orientation when the image has it, else the content rule below
  crop     = bounding box of the largest 4-connected group of 64x64 grid cells whose mean display > 0.12
             (the breast; drops film labels and padding)
  content  = inside that box (on the stored image), the side whose outer 10% of columns is brighter is the chest wall
  resize   = crop stretched to 256x256 (triangle filter, antialiased when shrinking)
  tensor   = (display - MEAN) / STD, float32 [N,1,256,256]
Model: a fully convolutional net -> per-cell lesion logits on a 16x16 grid (trained against the lesion circles,
so the map is a localiser, not only a saliency map); image logit = log-sum-exp pooling of the cells.
Exported outputs: prob [N,1] = sigmoid(image logit), cam [N,16,16] = sigmoid(cell logits).
"""
import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import pretrained

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
DATA = os.path.abspath(os.path.join(REPO, '..', 'shared', 'data', 'mg', 'mini-mias'))
SEED = 20261124
SIZE = 256
GRID = 64
TISSUE = 0.12
CELLS = 16
LSE_R = 4.0
MASS = ('CIRC', 'SPIC', 'MISC')
MAIN = MASS + ('ARCH', 'ASYM')
# The women of golden.json's films (mdb001, mdb003, mdb028) and the tests' films: left out of the shipped model.
GOLDEN_WOMEN = (1, 2, 14)
PRETRAINED = None  # --backbone mnv2: the dequantised Keras MobileNetV2 weights (pretrained.fetch)
TRUNK_LR = 5e-4


# ---------------------------------------------------------------------------------------------------- preprocess
def percentile_window(a):
    s = np.sort(a.ravel())
    n = s.size
    lo, hi = float(s[math.floor(0.005 * (n - 1))]), float(s[math.ceil(0.995 * (n - 1))])
    return np.clip((a - lo) / max(1.0, hi - lo), 0, 1).astype(np.float32)


def breast_box(d):
    """(r0, r1, c0, c1) pixel box of the largest tissue component on a 64x64 grid (same as mammogram.ts)."""
    R, C = d.shape
    rb = [math.floor(i * R / GRID) for i in range(GRID + 1)]
    cb = [math.floor(j * C / GRID) for j in range(GRID + 1)]
    m = np.zeros((GRID, GRID), bool)
    for i in range(GRID):
        for j in range(GRID):
            blk = d[rb[i]:rb[i + 1], cb[j]:cb[j + 1]]
            m[i, j] = blk.size > 0 and blk.mean() > TISSUE
    seen = np.zeros_like(m)
    best = None
    for i in range(GRID):
        for j in range(GRID):
            if not m[i, j] or seen[i, j]:
                continue
            stack, cells = [(i, j)], []
            seen[i, j] = True
            while stack:
                a, b = stack.pop()
                cells.append((a, b))
                for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    x, y = a + da, b + db
                    if 0 <= x < GRID and 0 <= y < GRID and m[x, y] and not seen[x, y]:
                        seen[x, y] = True
                        stack.append((x, y))
            if best is None or len(cells) > len(best):
                best = cells
    if best is None:
        return 0, R, 0, C
    rs = [a for a, _ in best]
    cs = [b for _, b in best]
    return rb[min(rs)], rb[max(rs) + 1], cb[min(cs)], cb[max(cs) + 1]


def chest_wall_right(d):
    r0, r1, c0, c1 = breast_box(d)
    band = max(1, math.floor(0.1 * (c1 - c0)))
    return float(d[r0:r1, c1 - band:c1].mean()) > float(d[r0:r1, c0:c0 + band].mean())


def preprocess(u8):
    """uint8 image -> (256x256 float display, geometry dict to map input coords back to the stored image)."""
    d = percentile_window(u8.astype(np.float32))
    flip = chest_wall_right(d)
    if flip:
        d = d[:, ::-1].copy()
    r0, r1, c0, c1 = breast_box(d)
    crop = Image.fromarray(d[r0:r1, c0:c1], mode='F').resize((SIZE, SIZE), Image.BILINEAR)
    g = {'flip': flip, 'W': d.shape[1], 'r0': r0, 'c0': c0, 'sy': (r1 - r0) / SIZE, 'sx': (c1 - c0) / SIZE}
    return np.asarray(crop, np.float32), g


def to_input(g, x, y):
    xo = g['W'] - x if g['flip'] else x
    return (xo - g['c0']) / g['sx'], (y - g['r0']) / g['sy']


def to_source(g, xi, yi):
    xo = xi * g['sx'] + g['c0']
    return (g['W'] - xo if g['flip'] else xo), yi * g['sy'] + g['r0']


def load():
    rows = list(csv.DictReader(open(os.path.join(DATA, 'labels.csv'))))
    refs = sorted({r['refnum'] for r in rows})
    by = {ref: [r for r in rows if r['refnum'] == ref] for ref in refs}
    X, masks, geo, meta = [], [], [], []
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    for ref in refs:
        u8 = np.asarray(Image.open(os.path.join(DATA, ref + '.png')).convert('L'))
        d, g = preprocess(u8)
        classes = sorted({r['class'] for r in by[ref]} - {'NORM'})
        mask = np.zeros((SIZE, SIZE), np.float32)
        has_coords = True
        circles = []
        for r in by[ref]:
            if r['class'] == 'NORM':
                continue
            if not r['x']:
                has_coords = False
                continue
            cx, cy = to_input(g, float(r['x']), float(r['y']))
            rad = float(r['radius'])
            circles.append({'class': r['class'], 'x': float(r['x']), 'y': float(r['y']), 'r': rad})
            # An ellipse in the stretched input (the crop scales x and y differently); minimum 6 input px so a tiny
            # calcification cluster still marks a cell.
            rx, ry = max(rad / g['sx'], 6), max(rad / g['sy'], 6)
            mask[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = 1
        X.append(d)
        masks.append(mask)
        geo.append(g)
        meta.append({'ref': ref, 'woman': math.ceil(int(ref[3:]) / 2), 'classes': classes, 'coords': has_coords and bool(classes), 'circles': circles,
                     'tissue': by[ref][0]['tissue']})
    X = torch.from_numpy(np.stack(X)).unsqueeze(1)
    M = torch.from_numpy(np.stack(masks)).unsqueeze(1)
    return X, M, geo, meta


# ---------------------------------------------------------------------------------------------------------- model
def cbr(i, o, stride=1, k=3):
    return [nn.Conv2d(i, o, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]


class MammoNet(nn.Module):
    """1x256x256 (or 2x256x256 with --bilateral) -> 16x16 lesion logits. Small on purpose: 2 CPU cores, 322 films."""

    def __init__(self, in_ch=1):
        super().__init__()
        self.features = nn.Sequential(
            *cbr(in_ch, 16, stride=2, k=5), nn.MaxPool2d(2),        # 64
            *cbr(16, 32), nn.MaxPool2d(2),                           # 32
            *cbr(32, 48), *cbr(48, 48), nn.MaxPool2d(2),             # 16
            *cbr(48, 96),
            nn.Conv2d(96, 96, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(96), nn.ReLU(inplace=True),  # 16, wider context per cell
        )
        self.drop = nn.Dropout2d(0.2)
        self.head = nn.Conv2d(96, 1, 1)

    def forward(self, x):
        cells = self.head(self.drop(self.features(x)))              # [N,1,16,16]
        flat = cells.flatten(1)
        # Log-sum-exp pooling: between mean and max, so one hot cell counts but a single noisy cell counts less.
        image = (torch.logsumexp(LSE_R * flat, dim=1, keepdim=True) - math.log(flat.shape[1])) / LSE_R
        return image, cells


class PretrainedNet(nn.Module):
    """--backbone mnv2: ImageNet MobileNetV2 blocks 0-10 (models/mammo/pretrained.py; stride 16, so the same 16x16
    cells at 256 px) + a 3x3 neck and the 1x1 cell head of MammoNet. Input and outputs as MammoNet's: the manifest's
    normalised tensor in, so the runtime contract does not change; the trunk sees the display range mapped to
    Keras's [-1, 1]."""

    def __init__(self, mean, std):
        super().__init__()
        self.trunk = pretrained.Trunk(1).load_keras(PRETRAINED)
        self.neck = nn.Sequential(*cbr(pretrained.Trunk.out_channels, 64))
        self.drop = nn.Dropout2d(0.2)
        self.head = nn.Conv2d(64, 1, 1)
        self.scale, self.shift = 2.0 * std, 2.0 * mean - 1.0

    def forward(self, x):
        cells = self.head(self.drop(self.neck(self.trunk(x * self.scale + self.shift))))
        flat = cells.flatten(1)
        image = (torch.logsumexp(LSE_R * flat, dim=1, keepdim=True) - math.log(flat.shape[1])) / LSE_R
        return image, cells


class Exported(nn.Module):
    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net

    def forward(self, x):
        image, cells = self.net(x)
        return torch.sigmoid(image), torch.sigmoid(cells[:, 0])


def augment(x, m, g):
    b = x.shape[0]
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=g)
    scale, ang = r(0.88, 1.12), r(-10, 10) * math.pi / 180
    asp = torch.exp(r(-0.12, 0.12))
    tx, ty = r(-0.06, 0.06), r(-0.06, 0.06)
    sx, sy = scale * torch.sqrt(asp), scale / torch.sqrt(asp)
    th = torch.zeros(b, 2, 3)
    th[:, 0, 0], th[:, 0, 1] = sx * torch.cos(ang), -sy * torch.sin(ang)
    th[:, 1, 0], th[:, 1, 1] = sx * torch.sin(ang), sy * torch.cos(ang)
    th[:, 0, 2], th[:, 1, 2] = tx, ty
    # Vertical flip half the time: CC views (lateral at the top) and MLO (head at the top) both reach the model.
    vf = torch.rand(b, generator=g) < 0.5
    th[vf, 1, :] *= -1
    grid = F.affine_grid(th, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, padding_mode='zeros', align_corners=False)
    m = F.grid_sample(m, grid, padding_mode='zeros', align_corners=False)
    return intensity(x, g), m


def intensity(x, g):
    b = x.shape[0]
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=g)
    gamma = torch.exp(r(-0.3, 0.3)).view(b, 1, 1, 1)
    x = x.clamp(min=1e-6) ** gamma
    x = (x - 0.5) * r(0.85, 1.15).view(b, 1, 1, 1) + 0.5 + r(-0.05, 0.05).view(b, 1, 1, 1)
    x = x + r(0, 0.02).view(b, 1, 1, 1) * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1)


PATCH = 128        # --lesion-patches: crop side in input px (8x8 cells)
PATCH_BATCH = 16


def lesion_patches(X, M, lesion_films, tissue_films, g, hard=None):
    """--lesion-patches (1.2.0's recipe, CARD.md): a batch of PATCH-px crops, half centred on a random pixel of a
    lesion circle (so the lesion sits anywhere near the middle), half on a random breast pixel of any film, each turned
    by any angle and mirrored: a mass or distortion has no preferred orientation, so a crop can use every rotation
    where a whole film cannot. With `hard` (--hard-negatives: cell weights [len(tissue_films), CELLS, CELLS]), half of
    the breast crops are centred in a lesion-free cell drawn in proportion to its weight instead. Returns crops and
    their lesion masks."""
    n = PATCH_BATCH
    n_hard = 0 if hard is None else (n - n // 2) // 2
    films = np.concatenate([lesion_films[torch.randint(len(lesion_films), (n // 2,), generator=g).numpy()],
                            tissue_films[torch.randint(len(tissue_films), (n - n // 2 - n_hard,), generator=g).numpy()]])
    cells = []
    if n_hard:
        picks = torch.multinomial(hard.flatten(), n_hard, replacement=True, generator=g)
        films = np.concatenate([films, tissue_films[(picks // (CELLS * CELLS)).numpy()]])
        cells = [divmod(int(c) % (CELLS * CELLS), CELLS) for c in picks]
    centres = []
    for k, f in enumerate(films):
        if k >= n - n_hard:
            # a tissue pixel of the drawn cell
            ci, cj = cells[k - (n - n_hard)]
            px = SIZE // CELLS
            rows, cols = slice(ci * px, (ci + 1) * px), slice(cj * px, (cj + 1) * px)
            where = torch.zeros_like(X[f, 0], dtype=torch.bool)
            where[rows, cols] = X[f, 0, rows, cols] > TISSUE
            if not where.any():
                where = X[f, 0] > TISSUE
        else:
            where = (M[f, 0] > 0.5) if k < n // 2 else (X[f, 0] > TISSUE)
        ys, xs = torch.nonzero(where, as_tuple=True)
        j = int(torch.randint(len(ys), (1,), generator=g))
        centres.append((float(xs[j]) + 0.5, float(ys[j]) + 0.5))
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)
    ang, scale = r(0, 2 * math.pi), r(0.88, 1.12) * PATCH / SIZE
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    th = torch.zeros(n, 2, 3)
    th[:, 0, 0], th[:, 0, 1] = scale * torch.cos(ang) * flip, -scale * torch.sin(ang)
    th[:, 1, 0], th[:, 1, 1] = scale * torch.sin(ang) * flip, scale * torch.cos(ang)
    th[:, 0, 2] = torch.tensor([c[0] for c in centres]) / SIZE * 2 - 1
    th[:, 1, 2] = torch.tensor([c[1] for c in centres]) / SIZE * 2 - 1
    grid = F.affine_grid(th, (n, 1, PATCH, PATCH), align_corners=False)
    x = F.grid_sample(X[films], grid, padding_mode='zeros', align_corners=False)
    m = F.grid_sample(M[films], grid, padding_mode='zeros', align_corners=False)
    return intensity(x, g), m


PASTE_P = 0.3      # --copy-paste: share of the normal films in a batch that receive a lesion


def paste_lesions(X, M, y, b, donors, g):
    """--copy-paste (tried 2026-11-25, CARD.md): for PASTE_P of the normal films in batch b, add one lesion of a
    random donor film (a training film with one circle of a mass, distortion or asymmetry) at a random place inside
    the breast, and label that film positive with the moved circle as its mask. The lesion is added as its excess over
    the donor's own surroundings (mean of the ring 1-1.6 radii out), fading from 0.7 to 1.3 radii: film density is
    roughly a sum of attenuations, so a lesion adds to whatever tissue lies under it, and no sharp seam is pasted.
    Returns the batch's films, masks and labels (copies where changed)."""
    x, m, yb = X[b].clone(), M[b].clone(), y[b].copy()
    yy, xx = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing='ij')
    for k, f in enumerate(b):
        if y[f] != 0 or float(torch.rand(1, generator=g)) >= PASTE_P:
            continue
        d = donors[int(torch.randint(len(donors), (1,), generator=g))]
        ys, xs = torch.nonzero(M[d, 0] > 0.5, as_tuple=True)
        cy, cx = float(ys.float().mean()) + 0.5, float(xs.float().mean()) + 0.5
        ry, rx = (float(ys.max() - ys.min()) + 1) / 2, (float(xs.max() - xs.min()) + 1) / 2
        rho = torch.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        ring = (rho > 1) & (rho < 1.6) & (X[d, 0] > TISSUE)
        if not ring.any():
            continue
        field = ((1.3 - rho) / 0.6).clamp(0, 1) * (X[d, 0] - X[d, 0][ring].mean())
        disc = (M[d, 0] > 0.5).float()
        tissue = X[f, 0] > TISSUE
        ty, tx = torch.nonzero(tissue, as_tuple=True)
        for _ in range(10):
            j = int(torch.randint(len(ty), (1,), generator=g))
            dy, dx = int(ty[j]) - round(cy - 0.5), int(tx[j]) - round(cx - 0.5)
            # the faded support (1.3 radii) must stay on the image and the lesion itself on breast tissue
            if not (1.3 * ry <= cy + dy <= SIZE - 1.3 * ry and 1.3 * rx <= cx + dx <= SIZE - 1.3 * rx):
                continue
            moved = torch.roll(disc, (dy, dx), (0, 1))
            if float(tissue[moved > 0].float().mean()) < 0.9:
                continue
            x[k, 0] = (x[k, 0] + torch.roll(field, (dy, dx), (0, 1))).clamp(0, 1)
            m[k, 0] = torch.maximum(m[k, 0], moved)
            yb[k] = 1
            break
    return x, m, yb


def jitter(x, g):
    """--bilateral: the contralateral channel's own mild shift/scale (so registration with channel 0 is never exact)."""
    b = x.shape[0]
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=g)
    sx, sy = r(0.94, 1.06), r(0.94, 1.06)
    th = torch.zeros(b, 2, 3)
    th[:, 0, 0], th[:, 1, 1] = sx, sy
    th[:, 0, 2], th[:, 1, 2] = r(-0.05, 0.05), r(-0.05, 0.05)
    grid = F.affine_grid(th, x.shape, align_corners=False)
    return F.grid_sample(x, grid, padding_mode='zeros', align_corners=False)


SOLO = 0.15  # --bilateral: share of training samples whose contralateral channel is a copy of channel 0


def stack(X, partner, b, g=None):
    """Batch input: [B,1,..] as before, or with a partner index [B,2,..] = this film + the other breast's film.
    Training (g given): the other film gets its own jitter, and for SOLO of the samples channel 1 is replaced by
    channel 0 (after all augmentation, so it is an exact copy, as at inference without a contralateral)."""
    if partner is None:
        return X[b]
    c = X[partner[b]]
    if g is not None:
        c = jitter(c, g)
    return torch.cat([X[b], c], 1)


def hard_negative_weights(net, X, M, films, mean, std):
    """--hard-negatives: the current network's lesion probability per cell of each film, zero where a cell holds any
    lesion pixel or is mostly outside the breast: where it now sees a lesion that is not one."""
    net.eval()
    with torch.no_grad():
        w = torch.cat([torch.sigmoid(net((X[films[i:i + 64]] - mean) / std)[1][:, 0]) for i in range(0, len(films), 64)])
    net.train()
    lesion = F.adaptive_max_pool2d(M[films], CELLS)[:, 0] > 0
    breast = F.adaptive_avg_pool2d((X[films] > TISSUE).float(), CELLS)[:, 0] > 0.5
    return w * (~lesion & breast)


HARD_FROM = 0.2    # --hard-negatives: share of the epochs before the first mining (the one-cycle warm-up)
HARD_EVERY = 4     # epochs between minings


def train(X, M, y, coords, idx, epochs, mean, std, seed, partner=None, patches=False, hard_negatives=False, copy_paste=False, meta=None):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    bs = 16
    steps = math.ceil(len(idx) / bs)
    if PRETRAINED is not None:
        net = PretrainedNet(mean, std)
        # The pretrained trunk learns slower than the new neck and head, so fine-tuning adapts it rather than erasing it.
        groups = [{'params': net.trunk.parameters(), 'lr': TRUNK_LR},
                  {'params': [p for n, p in net.named_parameters() if not n.startswith('trunk.')], 'lr': 3e-3}]
        opt = torch.optim.AdamW(groups, weight_decay=1e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[TRUNK_LR, 3e-3], total_steps=max(1, epochs * steps), pct_start=0.2)
    else:
        net = MammoNet(1 if partner is None else 2)
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(1, epochs * steps), pct_start=0.2)
    n_neg, n_pos = float((y[idx] == 0).sum()), float((y[idx] == 1).sum())
    if copy_paste:
        # pasted films turn negatives into positives: weight by the expected balance after pasting
        n_neg, n_pos = n_neg * (1 - PASTE_P), n_pos + n_neg * PASTE_P
        donors = idx[[coords[i] and y[i] == 1 and len(meta[i]['circles']) == 1 and meta[i]['circles'][0]['class'] in MAIN for i in idx]]
    pos_w = torch.tensor(n_neg / max(1.0, n_pos))
    lesion_films = idx[coords[idx] & (y[idx] == 1)]
    tissue_films = idx[coords[idx] | (y[idx] == 0)]  # films whose mask is complete (no lesion without coordinates)
    hard = None
    for ep in range(epochs):
        net.train()
        first = math.ceil(HARD_FROM * epochs)
        if hard_negatives and ep >= first and (ep - first) % HARD_EVERY == 0:
            hard = hard_negative_weights(net, X, M, tissue_films, mean, std)
        perm = idx[torch.randperm(len(idx), generator=g).numpy()]
        tot = 0.0
        for i in range(0, len(perm), bs):
            b = np.sort(perm[i:i + bs])
            if copy_paste:
                xb, mb, yb = paste_lesions(X, M, y, b, donors, g)
            else:
                xb, mb, yb = stack(X, partner, b, g), M[b], y[b]
            x, m = augment(xb, mb, g)
            if partner is not None:
                solo = torch.rand(len(b), generator=g) < SOLO
                x[solo, 1] = x[solo, 0]
            img, cells = net((x - mean) / std)
            yt = torch.from_numpy(yb).float().unsqueeze(1)
            loss = F.binary_cross_entropy_with_logits(img, yt, pos_weight=pos_w)
            # Cell targets: lesion area per cell (normal films: all zero); lesion films without coordinates only
            # train the image logit.
            mt = F.adaptive_avg_pool2d(m, CELLS)
            mt = (mt > 0.15).float()
            use = torch.from_numpy(coords[b] | (y[b] == 0)).float().view(-1, 1, 1, 1)  # a pasted normal film's mask is complete
            cl = F.binary_cross_entropy_with_logits(cells, mt, reduction='none', pos_weight=torch.tensor(8.0))
            loss = loss + (cl * use).sum() / max(1.0, float(use.sum()) * CELLS * CELLS)
            if patches:
                px, pm = lesion_patches(X, M, lesion_films, tissue_films, g, hard)
                pimg, pcells = net((px - mean) / std)
                pt = (F.adaptive_avg_pool2d(pm, PATCH // 16) > 0.15).float()
                loss = loss + F.binary_cross_entropy_with_logits(pimg, pt.flatten(1).amax(1, keepdim=True)) \
                    + F.binary_cross_entropy_with_logits(pcells, pt, pos_weight=torch.tensor(8.0))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(b)
        if ep % 5 == 4 or ep == epochs - 1:
            print(f'  epoch {ep + 1} loss {tot / len(idx):.4f}', flush=True)
    return net.eval()


def predict(net, X, mean, std, partner=None, idx=None):
    """Scores of films idx (default all); partner: other-side index per film (-> 2 channels), or 'solo' (channel 0
    twice: the fallback without a contralateral film)."""
    idx = np.arange(len(X)) if idx is None else np.asarray(idx)
    with torch.no_grad():
        def inp(b):
            if partner is None:
                return X[b]
            if isinstance(partner, str):
                return torch.cat([X[b], X[b]], 1)
            return stack(X, partner, b)
        out = [net((inp(idx[i:i + 64]) - mean) / std) for i in range(0, len(idx), 64)]
    p = torch.sigmoid(torch.cat([o[0] for o in out])).squeeze(1).numpy().astype(np.float64)
    c = torch.sigmoid(torch.cat([o[1] for o in out]))[:, 0].numpy()
    return p, c


# -------------------------------------------------------------------------------------------------------- metrics
def auc(y, p):
    y, p = np.asarray(y), np.asarray(p)
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (len(pos) * len(neg)))


def boot(y, p, women, reps=2000):
    """95% interval resampling women (both films of a woman together)."""
    rng = np.random.RandomState(SEED)
    up = np.unique(women)
    idx_of = {w: np.where(women == w)[0] for w in up}
    out = []
    for _ in range(reps):
        idx = np.concatenate([idx_of[w] for w in rng.choice(up, len(up), replace=True)])
        a = auc(y[idx], p[idx])
        if not math.isnan(a):
            out.append(a)
    return [round(float(np.percentile(out, 2.5)), 3), round(float(np.percentile(out, 97.5)), 3)]


def subset_auc(meta, p, women, pick):
    sel = np.array([len(m['classes']) == 0 or pick(m) for m in meta])
    y = np.array([1 if m['classes'] else 0 for m in meta])[sel]
    return {'auc': round(auc(y, p[sel]), 3), 'ci95': boot(y, p[sel], women[sel]), 'positives': int(y.sum()), 'normals': int((y == 0).sum())}


def peak_in_circle(meta, geo, cams, sel):
    hits, n, detail = 0, 0, []
    for i in sel:
        m = meta[i]
        circ = [c for c in m['circles'] if c['class'] in MASS]
        if not circ:
            continue
        k = int(np.argmax(cams[i]))
        xi, yi = (k % CELLS + 0.5) * SIZE / CELLS, (k // CELLS + 0.5) * SIZE / CELLS
        x, y = to_source(geo[i], xi, yi)
        # One CAM cell is 16 input px (~8-14 px of the 512 film): a peak within the circle or less than half a cell
        # outside it counts, since the cell centre cannot be nearer than that.
        half = 0.5 * math.hypot(geo[i]['sx'], geo[i]['sy']) * SIZE / CELLS
        hit = any(math.hypot(x - c['x'], y - c['y']) <= c['r'] + half for c in circ)
        strict = any(math.hypot(x - c['x'], y - c['y']) <= c['r'] for c in circ)
        hits += hit
        n += 1
        detail.append({'ref': m['ref'], 'peak': [round(x, 1), round(y, 1)], 'hit': bool(hit), 'strictHit': bool(strict)})
    strict = sum(d['strictHit'] for d in detail)
    return {'n': n, 'rate': round(hits / max(1, n), 3), 'strictRate': round(strict / max(1, n), 3), 'items': detail}


def evaluate_oof(meta, geo, women, oof_p, oof_c):
    """Out-of-fold figures: AUCs with bootstrap intervals, mass peak-in-circle, and the operating points."""
    y = np.array([1 if m['classes'] else 0 for m in meta])
    res = {
        'allAbnormal': subset_auc(meta, oof_p, women, lambda m: True),
        'massDistortionAsymmetry': subset_auc(meta, oof_p, women, lambda m: any(c in MAIN for c in m['classes'])),
        'calcification': subset_auc(meta, oof_p, women, lambda m: m['classes'] == ['CALC']),
        'byClass': {c: subset_auc(meta, oof_p, women, lambda m, c=c: c in m['classes']) for c in ('CALC', 'CIRC', 'SPIC', 'MISC', 'ARCH', 'ASYM')},
        'byTissue': {t: subset_auc([m for m in meta if m['tissue'] == t], oof_p[[m['tissue'] == t for m in meta]], women[[m['tissue'] == t for m in meta]], lambda m: True) for t in 'FGD'},
    }
    loc = peak_in_circle(meta, geo, oof_c, range(len(meta)))
    # Operating points on the out-of-fold scores for the main target (masses, distortions, asymmetries vs normal).
    sel = np.array([not m['classes'] or any(c in MAIN for c in m['classes']) for m in meta])
    ys, ps = y[sel], oof_p[sel]
    pos_sorted = np.sort(ps[ys == 1])
    t_pos = float(pos_sorted[int(math.floor(0.2 * len(pos_sorted)))])       # ~80% sensitivity
    neg_sorted = np.sort(ps[ys == 0])
    t_urg = float(neg_sorted[int(math.ceil(0.95 * len(neg_sorted))) - 1])    # ~95% specificity
    t_urg = max(t_urg, t_pos + 1e-4)

    def ss(t):
        return {'threshold': round(t, 4), 'sensitivity': round(float((ps[ys == 1] >= t).mean()), 3), 'specificity': round(float((ps[ys == 0] < t).mean()), 3)}

    ops = {'positive': ss(t_pos), 'urgent': ss(t_urg)}
    return res, loc, ops


def export_all(final_net, X, meta, mean, std, ops, quick, out=HERE, partner=None, version='1.0.0', held_out=()):
    exp = Exported(final_net, mean, std).eval()
    ch = 1 if partner is None else 2
    onnx_path = os.path.join(out, 'model.onnx')
    torch.onnx.export(exp, torch.zeros(1, ch, SIZE, SIZE), onnx_path, input_names=['input'], output_names=['prob', 'cam'],
                      dynamic_axes={'input': {0: 'batch'}, 'prob': {0: 'batch'}, 'cam': {0: 'batch'}}, opset_version=13)
    sha = hashlib.sha256(open(onnx_path, 'rb').read()).hexdigest()
    manifest = {
        'id': 'mammo-mias', 'version': version, 'sha256': sha, 'detector': 'mammo', 'file': 'model.onnx',
        'routing': {'modality': ['MG']},
        'input': {'name': 'input', 'shape': ['batch', ch, SIZE, SIZE], 'layout': 'NCHW', 'dtype': 'float32'},
        'preprocess': {'window': {'kind': 'percentile', 'low': 0.5, 'high': 99.5}, 'size': [SIZE, SIZE], 'normalise': {'mean': mean, 'std': std}, 'resize': 'stretch'},
        'outputs': [{'name': 'prob', 'kind': 'probabilities', 'shape': ['batch', 1]}, {'name': 'cam', 'kind': 'cam', 'shape': ['batch', CELLS, CELLS]}],
        'labels': [{'index': 0, 'code': {'scheme': '99RADNODE', 'value': 'RN-MG-SUSPICIOUS', 'meaning': 'Suspicious breast lesion'}}],
        'operatingPoints': ops, 'card': 'CARD.md',
    }
    json.dump(manifest, open(os.path.join(out, 'manifest.json'), 'w'), indent=2)
    # Golden: the exported graph on three films, preprocessed here (the TS test re-preprocesses the PNGs).
    items = []
    for ref in ('mdb001', 'mdb003', 'mdb028'):
        i = [m['ref'] for m in meta].index(ref)
        xin = (stack(X, partner, np.array([i])) - mean) / std
        with torch.no_grad():
            p, c = exp(xin)
        item = {'file': f'mg/mini-mias/{ref}.png', 'classes': meta[i]['classes'], 'heldOutFromModel': meta[i]['woman'] in held_out, 'tensorSum': float(xin[0, 0].sum()),
                'prob': float(p[0, 0]), 'camArgmax': int(c[0].argmax()), 'camSum': float(c[0].sum())}
        if partner is not None:
            item['contralateral'] = f'mg/mini-mias/{meta[partner[i]]["ref"]}.png'
            with torch.no_grad():
                ps, _ = exp(torch.cat([xin[:, :1], xin[:, :1]], 1))
            item['probSolo'] = float(ps[0, 0])
        items.append(item)
    json.dump({'model': {'id': 'mammo-mias', 'version': version, 'sha256': sha}, 'items': items}, open(os.path.join(out, 'golden.json'), 'w'), indent=1)
    return sha


def main():
    global SIZE, CELLS, PRETRAINED
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=80)  # 1.1.0; 1.0.0 was 40
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bilateral', action='store_true', help='2-channel input: this film + the same woman\'s other-side film')
    ap.add_argument('--out', help='where model.onnx, manifest.json, golden.json, metrics.json go '
                    '(default: next to this script; with --bilateral: /tmp/mammo/bilateral)')
    ap.add_argument('--version', default='dev', help='written into the manifest; releases name theirs (1.2.0: see the docstring)')
    ap.add_argument('--size', type=int, default=SIZE,
                    help='model input side in pixels (a multiple of 16; the cell map is size/16 square). 1.1.0: 256')
    ap.add_argument('--seed-offset', type=int, default=0,
                    help='added to the training seeds (initialisation, batches, augmentation), never to the fold split: '
                         'ensemble members trained on the same folds (tried 2026-11-25, see CARD.md)')
    ap.add_argument('--final-only', action='store_true',
                    help='train and export only the shipped model; the cross-validation figures and operating points in --out stay')
    ap.add_argument('--final-on-all', action='store_true',
                    help='train the shipped model on all 322 films, as 1.1.0 did (default: without GOLDEN_WOMEN)')
    ap.add_argument('--lesion-patches', action='store_true',
                    help='add a batch of rotated lesion-centred and random breast crops to every training step (1.2.0)')
    ap.add_argument('--hard-negatives', action='store_true',
                    help='with --lesion-patches: half of the breast crops centred where the network (re-run every '
                         f'{HARD_EVERY} epochs) sees a lesion that is not one (tried 2026-11-25, CARD.md)')
    ap.add_argument('--copy-paste', action='store_true',
                    help=f'add a lesion of another training film to {PASTE_P:.0%} of the normal films in each batch '
                         '(labelled positive; tried 2026-11-25, CARD.md)')
    ap.add_argument('--backbone', choices=['small', 'mnv2'], default='small',
                    help='small: MammoNet from scratch (1.2.0); mnv2: ImageNet MobileNetV2 blocks 0-10 fine-tuned (pretrained.py)')
    ap.add_argument('--cv-only', action='store_true',
                    help='only the 5-fold cross-validation (metrics.json in --out); --final-only then trains the shipped model')
    args = ap.parse_args()
    if args.cv_only and args.final_only:
        sys.exit('--cv-only and --final-only exclude each other')
    if args.backbone == 'mnv2':
        if args.bilateral or args.size != 256:
            sys.exit('--backbone mnv2 is for single-film input at 256 px')
        PRETRAINED = pretrained.fetch('/tmp/mammo/pretrained')
    if args.copy_paste and args.bilateral:
        sys.exit('--copy-paste is for single-film input')
    if args.hard_negatives and not args.lesion_patches:
        sys.exit('--hard-negatives needs --lesion-patches')
    if args.size % 16 or not 128 <= args.size <= 1024:
        sys.exit(f'--size {args.size}: expected a multiple of 16 in 128..1024')
    SIZE, CELLS = args.size, args.size // 16
    out = args.out or ('/tmp/mammo/bilateral' if args.bilateral else HERE)
    scratch = '/tmp/mammo' if out == HERE else out
    os.makedirs(out, exist_ok=True)
    os.makedirs(scratch, exist_ok=True)
    epochs = 1 if args.quick else args.epochs
    torch.set_num_threads(args.threads)
    t0 = time.time()
    X, M, geo, meta = load()
    print(f'loaded {len(meta)} films in {time.time() - t0:.0f}s', flush=True)
    y = np.array([1 if m['classes'] else 0 for m in meta])
    coords = np.array([m['coords'] for m in meta])
    women = np.array([m['woman'] for m in meta])
    mean, std = round(float(X.mean()), 3), round(float(X.std()), 3)
    partner = None
    if args.bilateral:
        # mdbNNN odd/even = right/left MLO of woman ceil(NNN/2): the partner is the other film of the same woman.
        pos = {m['ref']: i for i, m in enumerate(meta)}
        partner = np.array([pos['mdb%03d' % (int(m['ref'][3:]) + (1 if int(m['ref'][3:]) % 2 else -1))] for m in meta])
        assert all(women[partner] == women) and all(partner != np.arange(len(meta))) and all(partner[partner] == np.arange(len(meta)))

    # Final model on every film but those of the women whose films the tests and golden.json use (GOLDEN_WOMEN), so that
    # `radnode analyze` in the tests reads mini-MIAS films the shipped model has not seen (issue 6). 1.1.0 and earlier
    # trained on all 322 (--final-on-all reproduces them).
    t1 = time.time()
    final_idx = np.array([i for i, m in enumerate(meta) if args.final_on_all or m['woman'] not in GOLDEN_WOMEN])
    print(f'final model: {len(final_idx)} films ({len(meta) - len(final_idx)} held out for the tests)', flush=True)
    final_net, final_s = None, 0.0
    if not args.cv_only:
        final_net = train(X, M, y, coords, final_idx, epochs, mean, std, SEED + 99 + 1000 * args.seed_offset, partner, args.lesion_patches, args.hard_negatives, args.copy_paste, meta)
        final_s = time.time() - t1
        torch.save(final_net.state_dict(), os.path.join(scratch, 'final.pt'))
    held_out = () if args.final_on_all else GOLDEN_WOMEN
    if args.final_only:
        # The cross-validation does not depend on the final model: keep its figures and operating points (metrics.json,
        # manifest.json in --out, from the full run of the same recipe) and replace only the shipped network.
        prev = json.load(open(os.path.join(out, 'metrics.json')))
        ops = prev['operatingPoints']
        export_all(final_net, X, meta, mean, std, ops, quick=args.quick, out=out, partner=partner, version=args.version, held_out=held_out)
        prev.update({'finalModelSeconds': round(final_s), 'onnxBytes': os.path.getsize(os.path.join(out, 'model.onnx')),
                     'finalHeldOutWomen': list(held_out), 'finalFilms': int(len(final_idx))})
        json.dump(prev, open(os.path.join(out, 'metrics.json'), 'w'), indent=1)
        print('final model only: done', round(time.time() - t0), 's', flush=True)
        return
    if final_net is not None:
        export_all(final_net, X, meta, mean, std, {'positive': {'threshold': 0.5}}, quick=args.quick, out=out, partner=partner, version=args.version, held_out=held_out)
    # 5 folds of women, stratified by whether the woman has any lesion.
    rng = np.random.RandomState(SEED)
    wpos = sorted({w for w, yy in zip(women, y) if yy})
    wneg = sorted(set(women) - set(wpos))
    rng.shuffle(wpos)
    rng.shuffle(wneg)
    fold_of = {w: k % 5 for k, w in enumerate(wpos)}
    fold_of.update({w: k % 5 for k, w in enumerate(wneg)})
    fold = np.array([fold_of[w] for w in women])
    if partner is not None:
        assert all(fold[partner] == fold), 'a contralateral film in another fold would leak'
    oof_solo = np.zeros(len(meta))
    oof_p = np.zeros(len(meta))
    oof_c = np.zeros((len(meta), CELLS, CELLS), np.float32)
    for k in range(5):
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        t1 = time.time()
        net = train(X, M, y, coords, tr, epochs, mean, std, SEED + k + 1000 * args.seed_offset, partner, args.lesion_patches, args.hard_negatives, args.copy_paste, meta)
        p, c = predict(net, X, mean, std, partner, te)
        oof_p[te], oof_c[te] = p, c
        if partner is not None:
            oof_solo[te] = predict(net, X, mean, std, 'solo', te)[0]
            torch.save(net.state_dict(), os.path.join(scratch, f'fold{k}.pt'))
        print(f'fold {k}: auc {auc(y[te], p):.3f} ({time.time() - t1:.0f}s)', flush=True)

    np.savez(os.path.join(scratch, 'oof.npz'), p=oof_p, c=oof_c, fold=fold, solo=oof_solo)
    res, loc, ops = evaluate_oof(meta, geo, women, oof_p, oof_c)
    print(json.dumps({k: v for k, v in res.items() if k != 'byTissue'}), json.dumps(ops), 'loc', loc['rate'], loc['strictRate'], flush=True)

    if final_net is not None:
        export_all(final_net, X, meta, mean, std, ops, quick=args.quick, out=out, partner=partner, version=args.version, held_out=held_out)
    n_params = sum(p.numel() for p in net.parameters())
    metrics = {'epochs': epochs, 'backbone': args.backbone, 'params': n_params,
               'onnxBytes': os.path.getsize(os.path.join(out, 'model.onnx')) if final_net is not None else None, 'normalise': {'mean': mean, 'std': std}, 'finalHeldOutWomen': list(held_out), 'finalFilms': int(len(final_idx)),
               'trainSecondsTotal': round(time.time() - t0), 'finalModelSeconds': round(final_s), 'cv': res, 'operatingPoints': ops,
               'massPeakInCircle': loc, 'folds': [int((fold == k).sum()) for k in range(5)],
               'oof': [{'ref': m['ref'], 'p': round(float(pp), 4)} for m, pp in zip(meta, oof_p)]}
    if partner is not None:
        fold_auc = lambda p: [round(auc(y[fold == k], p[fold == k]), 3) for k in range(5)]
        metrics['bilateral'] = {'soloShare': SOLO, 'foldAuc': fold_auc(oof_p), 'foldAucSolo': fold_auc(oof_solo),
                                'solo': {'massDistortionAsymmetry': subset_auc(meta, oof_solo, women, lambda m: any(c in MAIN for c in m['classes'])),
                                         'calcification': subset_auc(meta, oof_solo, women, lambda m: m['classes'] == ['CALC'])}}
        print('bilateral', json.dumps(metrics['bilateral']), flush=True)
    json.dump(metrics, open(os.path.join(out, 'metrics.json'), 'w'), indent=1)
    print('done', round(time.time() - t0), 's', flush=True)


if __name__ == '__main__':
    main()
