/**
 * TEST AND BENCHMARK SUPPORT ONLY. A minimal ONNX (protobuf) writer for small hand-built graphs, so that the
 * registry, the worker and the cxr detector can be tested without torch or the trained model. Field numbers are
 * those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto).
 * radnode itself never writes ONNX.
 */

class Pb {
  private readonly parts: Uint8Array[] = [];
  private varint(v: bigint): void {
    const out: number[] = [];
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      out.push(Number((x & 0x7fn) | 0x80n));
      x >>= 7n;
    }
    out.push(Number(x));
    this.parts.push(Uint8Array.from(out));
  }
  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(b.length));
    this.parts.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }
  float(field: number, f: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, f, true);
    this.parts.push(b);
    return this;
  }
  finish(): Uint8Array {
    const n = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) out.set(p, (o += p.length) - p.length);
    return out;
  }
}

export type OnnxAttr = { name: string } & ({ i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string });
export type OnnxNode = { op: string; inputs: string[]; outputs: string[]; attrs?: OnnxAttr[] };
export type OnnxTensor = { name: string; dims: number[] } & ({ float: Float32Array | number[] } | { int64: number[] });
export type OnnxValue = { name: string; shape: (number | string)[]; elemType?: 'float' | 'int64' };

const ELEM = { float: 1, int64: 7 } as const;

function tensor(t: OnnxTensor): Pb {
  const m = new Pb();
  for (const d of t.dims) m.int(1, d);
  if ('float' in t) {
    m.int(2, ELEM.float).str(8, t.name);
    const f = Float32Array.from(t.float);
    m.bytes(9, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  } else {
    m.int(2, ELEM.int64).str(8, t.name);
    const b = new BigInt64Array(t.int64.map((x) => BigInt(x)));
    m.bytes(9, new Uint8Array(b.buffer));
  }
  return m;
}

function valueInfo(v: OnnxValue): Pb {
  const shape = new Pb();
  for (const d of v.shape) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, ELEM[v.elemType ?? 'float']).msg(2, shape);
  return new Pb().str(1, v.name).msg(2, new Pb().msg(1, tensorType));
}

function attribute(a: OnnxAttr): Pb {
  const m = new Pb().str(1, a.name);
  if ('i' in a) return m.int(3, a.i).int(20, 2);
  if ('f' in a) return m.float(2, a.f).int(20, 1);
  if ('s' in a) return m.str(4, a.s).int(20, 3);
  if ('ints' in a) {
    for (const x of a.ints) m.int(8, x);
    return m.int(20, 7);
  }
  for (const x of a.floats) m.float(7, x);
  return m.int(20, 6);
}

/** Serialises a graph as an ONNX ModelProto (IR version 8, default opset 17). */
export function onnxModel(g: { nodes: OnnxNode[]; initializers: OnnxTensor[]; inputs: OnnxValue[]; outputs: OnnxValue[]; opset?: number }): Uint8Array {
  const graph = new Pb();
  g.nodes.forEach((n, i) => {
    const node = new Pb();
    for (const x of n.inputs) node.str(1, x);
    for (const x of n.outputs) node.str(2, x);
    node.str(3, `${n.op.toLowerCase()}_${i}`).str(4, n.op);
    for (const a of n.attrs ?? []) node.msg(5, attribute(a));
    graph.msg(1, node);
  });
  graph.str(2, 'radnode_test_graph');
  for (const t of g.initializers) graph.msg(5, tensor(t));
  for (const v of g.inputs) graph.msg(11, valueInfo(v));
  for (const v of g.outputs) graph.msg(12, valueInfo(v));
  return new Pb().int(1, 8).str(2, 'radnode-test').msg(7, graph).msg(8, new Pb().str(1, '').int(2, g.opset ?? 17)).finish();
}

/** A deterministic pseudo-random generator (mulberry32), so fixture weights are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A tiny chest-radiograph-shaped model with the cxr manifest's interface: input [N,1,size,size], outputs `prob`
 * [N,1] and `cam` [N,size/8,size/8]. A stride-8 convolution makes 8 feature maps, a 1×1 convolution makes the
 * class map, its global average is the logit (the CAM construction of Zhou et al. 2016, inside the graph), and
 * the CAM is the sigmoid of the class map. The weights are fixed so it responds to local brightness: a bright
 * patch raises both the CAM there and the probability.
 */
export function tinyCxrModel(size = 224, seed = 7): Uint8Array {
  const rnd = seededRandom(seed);
  const k = 8;
  const feats = 8;
  const w1 = new Float32Array(feats * 1 * k * k).map(() => (rnd() - 0.3) * 0.05);
  const b1 = new Float32Array(feats).map(() => (rnd() - 0.5) * 0.1);
  const w2 = new Float32Array(feats).map(() => 0.5 + rnd());
  const h = size / k;
  return onnxModel({
    inputs: [{ name: 'input', shape: ['batch', 1, size, size] }],
    outputs: [
      { name: 'prob', shape: ['batch', 1] },
      { name: 'cam', shape: ['batch', h, h] },
    ],
    initializers: [
      { name: 'w1', dims: [feats, 1, k, k], float: w1 },
      { name: 'b1', dims: [feats], float: b1 },
      { name: 'w2', dims: [1, feats, 1, 1], float: w2 },
      { name: 'bias', dims: [1], float: [-1.5] },
      { name: 'probShape', dims: [2], int64: [-1, 1] },
      { name: 'camShape', dims: [3], int64: [-1, h, h] },
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w1', 'b1'], outputs: ['f1'], attrs: [{ name: 'strides', ints: [k, k] }, { name: 'kernel_shape', ints: [k, k] }] },
      { op: 'Relu', inputs: ['f1'], outputs: ['f2'] },
      { op: 'Conv', inputs: ['f2', 'w2'], outputs: ['classMap'], attrs: [{ name: 'kernel_shape', ints: [1, 1] }] },
      { op: 'GlobalAveragePool', inputs: ['classMap'], outputs: ['gap'] },
      { op: 'Reshape', inputs: ['gap', 'probShape'], outputs: ['logit0'] },
      { op: 'Add', inputs: ['logit0', 'bias'], outputs: ['logit'] },
      { op: 'Sigmoid', inputs: ['logit'], outputs: ['prob'] },
      { op: 'Sigmoid', inputs: ['classMap'], outputs: ['camS'] },
      { op: 'Reshape', inputs: ['camS', 'camShape'], outputs: ['cam'] },
    ],
  });
}

/**
 * A small multi-label network with `labels` sigmoid outputs and no CAM, standing in for a site's own model (e.g. a
 * torchvision DenseNet-121 with 18 outputs) when torch is not installed: conv → relu → global pool → linear.
 */
export function tinyMultiLabelModel(labels = 18, size = 224, seed = 11): Uint8Array {
  const rnd = seededRandom(seed);
  const feats = 16;
  return onnxModel({
    inputs: [{ name: 'x', shape: [1, 1, size, size] }],
    outputs: [{ name: 'scores', shape: [1, labels] }],
    initializers: [
      { name: 'w1', dims: [feats, 1, 7, 7], float: new Float32Array(feats * 49).map(() => (rnd() - 0.5) * 0.2) },
      { name: 'fc', dims: [feats, labels], float: new Float32Array(feats * labels).map(() => (rnd() - 0.5) * 2) },
      { name: 'flat', dims: [2], int64: [-1, feats] },
    ],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['f1'], attrs: [{ name: 'strides', ints: [4, 4] }, { name: 'kernel_shape', ints: [7, 7] }] },
      { op: 'Relu', inputs: ['f1'], outputs: ['f2'] },
      { op: 'GlobalAveragePool', inputs: ['f2'], outputs: ['g'] },
      { op: 'Reshape', inputs: ['g', 'flat'], outputs: ['g2'] },
      { op: 'MatMul', inputs: ['g2', 'fc'], outputs: ['logits'] },
      { op: 'Sigmoid', inputs: ['logits'], outputs: ['scores'] },
    ],
  });
}

/** A square MatMul graph [n,n]×[n,n], for measuring the machine's attainable FLOP rate inside onnxruntime. */
export function matmulModel(n: number): Uint8Array {
  return onnxModel({
    inputs: [{ name: 'a', shape: [n, n] }, { name: 'b', shape: [n, n] }],
    outputs: [{ name: 'c', shape: [n, n] }],
    initializers: [],
    nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] }],
  });
}
