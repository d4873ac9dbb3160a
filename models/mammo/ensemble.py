#!/usr/bin/python3
"""Combine mammo-mias runs trained on the same folds (train.py --seed-offset N --out DIR) into one model.

    /usr/bin/python3 models/mammo/ensemble.py --members /tmp/mammo/e80,/tmp/mammo/s1,/tmp/mammo/s2 --out /tmp/mammo/ens

Each member folder holds train.py's final.pt (the model trained on all films) and oof.npz (its out-of-fold
predictions on the 5 folds of women, which are the same for every seed offset). The ensemble is the mean of the
members' logits, image and cells alike, so its out-of-fold figures are computed from the members' out-of-fold
predictions exactly as the shipped graph combines them, and one ONNX file with the same inputs and outputs as a
single model is written (inference cost: one network per member, a few ms each).
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn

import train as T


class MeanOfLogits(nn.Module):
    def __init__(self, nets):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x):
        outs = [n(x) for n in self.nets]
        image = torch.stack([o[0] for o in outs]).mean(0)
        cells = torch.stack([o[1] for o in outs]).mean(0)
        return image, cells


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--members', required=True, help='comma-separated train.py output folders (final.pt, oof.npz)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--version', required=True)
    args = ap.parse_args()
    members = args.members.split(',')
    X, M, geo, meta = T.load()
    women = np.array([m['woman'] for m in meta])
    oofs = [np.load(os.path.join(d, 'oof.npz')) for d in members]
    for o in oofs[1:]:
        assert (o['fold'] == oofs[0]['fold']).all(), 'members were trained on different folds'
    sig = lambda z: 1 / (1 + np.exp(-z))
    oof_p = sig(np.mean([logit(o['p']) for o in oofs], axis=0))
    oof_c = sig(np.mean([logit(o['c']) for o in oofs], axis=0))
    res, loc, ops = T.evaluate_oof(meta, geo, women, oof_p, oof_c)
    print(json.dumps({k: v for k, v in res.items() if k != 'byTissue'}), json.dumps(ops), 'loc', loc['rate'], loc['strictRate'], flush=True)

    nets = []
    for d in members:
        net = T.MammoNet(1)
        net.load_state_dict(torch.load(os.path.join(d, 'final.pt')))
        nets.append(net.eval())
    ens = MeanOfLogits(nets).eval()
    mean, std = round(float(X.mean()), 3), round(float(X.std()), 3)
    os.makedirs(args.out, exist_ok=True)
    # golden.json says whether the tests' films were left out of the model: only if every member left out the same women.
    held = {tuple(json.load(open(os.path.join(d, 'metrics.json'))).get('finalHeldOutWomen', ())) for d in members}
    held_out = held.pop() if len(held) == 1 else ()
    T.export_all(ens, X, meta, mean, std, ops, quick=False, out=args.out, version=args.version, held_out=held_out)
    metrics = {'ensembleOf': members, 'params': sum(p.numel() for p in ens.parameters()),
               'onnxBytes': os.path.getsize(os.path.join(args.out, 'model.onnx')), 'normalise': {'mean': mean, 'std': std},
               'cv': res, 'operatingPoints': ops, 'massPeakInCircle': loc, 'folds': [int((oofs[0]['fold'] == k).sum()) for k in range(5)],
               'oof': [{'ref': m['ref'], 'p': round(float(pp), 4)} for m, pp in zip(meta, oof_p)]}
    json.dump(metrics, open(os.path.join(args.out, 'metrics.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
