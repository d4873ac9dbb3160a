"""ImageNet-pretrained MobileNetV2 trunk for the mammography model (train.py --backbone mnv2).

No model hub is reachable from the machines radnode is trained on; the npm registry is. The npm package nsfwjs
(MIT, Infinite Red) ships Keras MobileNetV2 (alpha 1.0, 224 px) inside its tarball as a TensorFlow.js layers model
with uint8-quantised weights. Its topology marks every layer up to block_10 `trainable: false`: those layers were
frozen while nsfwjs fine-tuned the top, so they are Keras's ImageNet weights (quantised to 8 bits per tensor). Only
that frozen part is used here: Conv1 + blocks 0-10, output stride 16, 96 channels, 0.31 M parameters.

    /usr/bin/python3 models/mammo/pretrained.py --check   # the port against TensorFlow.js running the same weights
                                                          # (installs @tensorflow/tfjs into the cache folder)

The weights are fetched at training time (`npm pack`, checked against the tarball's sha256) into a cache folder,
never committed: the ONNX file that training exports holds the fine-tuned network.
"""
import base64
import hashlib
import json
import os
import subprocess
import tarfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PACKAGE = 'nsfwjs@4.4.0'
TARBALL_SHA256 = '585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382'
MODEL = 'package/dist/models/mobilenet_v2/model.min.js'
SHARD = 'package/dist/models/mobilenet_v2/group1-shard1of1.min.js'
FROZEN_UP_TO = 10          # nsfwjs trained blocks 11+; 0-10 are ImageNet's
EPS = 1e-3                 # Keras MobileNetV2 BatchNormalization epsilon
# (expansion, output channels, stride) of Keras MobileNetV2 blocks 0-10 (alpha 1.0)
BLOCKS = [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1),
          (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1), (6, 96, 1)]


def fetch(cache):
    """{name: float32 array} of the dequantised nsfwjs MobileNetV2 weights; the tarball is cached in `cache`."""
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, 'nsfwjs-4.4.0.tgz')
    if not os.path.exists(tgz):
        subprocess.run(['npm', 'pack', PACKAGE, '--pack-destination', cache], check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(open(tgz, 'rb').read()).hexdigest()
    if digest != TARBALL_SHA256:
        raise SystemExit(f'{tgz}: sha256 {digest}, expected {TARBALL_SHA256} (a different package would change the model)')
    with tarfile.open(tgz) as t:
        for member in (MODEL, SHARD):
            t.extract(member, cache)
    # The files are UMD bundles of a JS object literal and a base64 string: let node evaluate them.
    js = ('const m=require(process.argv[1]),s=require(process.argv[2]);'
          'process.stdout.write(JSON.stringify({manifest:m.weightsManifest,shard:s}))')
    out = subprocess.run(['node', '-e', js, os.path.join(cache, MODEL), os.path.join(cache, SHARD)],
                         check=True, capture_output=True).stdout
    doc = json.loads(out)
    raw = np.frombuffer(base64.b64decode(doc['shard']), np.uint8)
    weights, at = {}, 0
    for w in (w for group in doc['manifest'] for w in group['weights']):
        n = int(np.prod(w['shape']))
        q = w['quantization']
        assert q['dtype'] == 'uint8', q
        weights[w['name']] = (q['min'] + q['scale'] * raw[at:at + n].astype(np.float64)).astype(np.float32).reshape(w['shape'])
        at += n
    assert at == raw.size, (at, raw.size)
    return weights


class KerasPad(nn.Module):
    """Keras's correct_pad for a stride-2 3x3 'valid' conv on even input: one row/column after, none before."""

    def forward(self, x):
        return F.pad(x, (0, 1, 0, 1))


def bn(c):
    return nn.BatchNorm2d(c, eps=EPS, momentum=0.01)


class Block(nn.Module):
    def __init__(self, cin, t, cout, stride):
        super().__init__()
        mid = cin * t
        layers = [] if t == 1 else [nn.Conv2d(cin, mid, 1, bias=False), bn(mid), nn.ReLU6()]
        layers += [KerasPad(), nn.Conv2d(mid, mid, 3, stride=2, groups=mid, bias=False)] if stride == 2 else \
            [nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False)]
        layers += [bn(mid), nn.ReLU6(), nn.Conv2d(mid, cout, 1, bias=False), bn(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class Trunk(nn.Module):
    """Keras MobileNetV2 Conv1 + blocks 0-10 on a 1-channel image in [-1, 1] (the RGB Conv1 kernel summed over its
    input channels: a grey image repeated three times). Output: 96 channels at stride 16."""
    out_channels = 96

    def __init__(self, in_ch=1):
        super().__init__()
        self.stem = nn.Sequential(KerasPad(), nn.Conv2d(in_ch, 32, 3, stride=2, bias=False), bn(32), nn.ReLU6())
        blocks, cin = [], 32
        for t, c, s in BLOCKS:
            blocks.append(Block(cin, t, c, s))
            cin = c
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(self.stem(x))

    def load_keras(self, w, rgb=False):
        def conv(mod, key):
            k = w[key]
            if k.ndim == 4 and key.endswith('depthwise_kernel'):
                t = np.transpose(k, (2, 3, 0, 1))                     # [3,3,C,1] -> [C,1,3,3]
            else:
                t = np.transpose(k, (3, 2, 0, 1))                     # [kh,kw,in,out] -> [out,in,kh,kw]
            if mod.weight.shape[1] != t.shape[1] and not rgb:
                t = t.sum(1, keepdims=True)
            assert tuple(mod.weight.shape) == t.shape, (key, tuple(mod.weight.shape), t.shape)
            mod.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(t)))

        def norm(mod, key):
            mod.weight.data.copy_(torch.from_numpy(w[key + '/gamma']))
            mod.bias.data.copy_(torch.from_numpy(w[key + '/beta']))
            mod.running_mean.copy_(torch.from_numpy(w[key + '/moving_mean']))
            mod.running_var.copy_(torch.from_numpy(w[key + '/moving_variance']))

        conv(self.stem[1], 'Conv1/kernel')
        norm(self.stem[2], 'bn_Conv1')
        for i, blk in enumerate(self.blocks):
            name = 'expanded_conv' if i == 0 else f'block_{i}'
            mods = [m for m in blk.body if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
            parts = ([] if i == 0 else ['expand']) + ['depthwise', 'project']
            for part, (c, b) in zip(parts, zip(mods[0::2], mods[1::2])):
                conv(c, f'{name}_{part}/' + ('depthwise_kernel' if part == 'depthwise' else 'kernel'))
                norm(b, f'{name}_{part}_BN')
        return self


def check(cache='/tmp/mammo/pretrained'):
    """Compare the port with TensorFlow.js running nsfwjs's own model up to block_10_project_BN: the largest absolute
    difference on a random image (2026-11-25: 8.3e-06 on outputs ranging -8.9..10.5)."""
    w = fetch(cache)
    tfjs = os.path.join(cache, 'tfjs')
    if not os.path.exists(os.path.join(tfjs, 'node_modules', '@tensorflow', 'tfjs')):
        subprocess.run(['npm', 'install', '--prefix', tfjs, '--no-audit', '--no-fund', '@tensorflow/tfjs@4.22.0'], check=True)
    trunk = Trunk(3).load_keras(w, rgb=True).eval()
    rng = np.random.RandomState(0)
    img = rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    np.save(os.path.join(cache, 'probe.npy'), img)
    js = f"""
const tf=require('@tensorflow/tfjs'); const fs=require('fs');
const m=require('{cache}/{MODEL}'); const s=require('{cache}/{SHARD}');
const buf=Buffer.from(s,'base64');
(async()=>{{
  const model=await tf.loadLayersModel(tf.io.fromMemory(m.modelTopology, m.weightsManifest[0].weights, buf.buffer.slice(buf.byteOffset, buf.byteOffset+buf.length)));
  const sub=tf.model({{inputs:model.inputs, outputs:model.getLayer('block_10_project_BN').output}});
  const raw=fs.readFileSync('{cache}/probe.npy'); const hdr=raw.readUInt16LE(8); const data=new Float32Array(raw.buffer.slice(raw.byteOffset+10+hdr));
  const y=sub.predict(tf.tensor4d(data,[1,224,224,3]));
  fs.writeFileSync('{cache}/probe_out.bin', Buffer.from((await y.data()).buffer));
  console.log(JSON.stringify(y.shape));
}})();"""
    print(subprocess.run(['node', '-e', js], cwd=tfjs, check=True, capture_output=True, text=True).stdout.strip())
    ref = np.fromfile(os.path.join(cache, 'probe_out.bin'), np.float32).reshape(1, 14, 14, 96)
    with torch.no_grad():
        got = trunk(torch.from_numpy(img).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    diff = float(np.abs(got - ref).max())
    print(f'block_10 output: max |torch - tfjs| = {diff:.2e} (output range {ref.min():.2f}..{ref.max():.2f})')
    if diff > 1e-3:
        raise SystemExit('the port does not reproduce TensorFlow.js')
    return diff


if __name__ == '__main__':
    import sys
    if '--check' in sys.argv:
        check()
