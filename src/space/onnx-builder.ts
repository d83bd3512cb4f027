/**
 * A small ModelProto builder that names things the way PyTorch 1.13's ONNX exporter does:
 *
 * - node names are module scopes plus op type: `/layer1/layer1.0/conv1/Conv`; a numeric module
 *   name (a Sequential index) is shown with its parent's prefix (`layer1.0`), a module called a
 *   second time gets `_1` (`relu_1`), a second op of one type in a scope gets `_1` (`Add_1`);
 * - node outputs are `<node name>_output_<i>`; the graph input is `input`, the output `logits`;
 * - parameters are initializers named by their state-dict key (`layer1.0.conv1.weight`); tensors
 *   the exporter computes itself (folded BN weights, transposed MatMul weights) are `onnx::Op_N`;
 * - initializers with identical values (fresh BN scales, running statistics, zero biases) are
 *   merged: the first keeps its initializer, later ones become `Identity` nodes at the top.
 *
 * Parameter values are described by an `Init` and only materialized in `build`, so a sampler can
 * cost a candidate architecture (FLOPs, parameters) before paying for its weights.
 */
import {
  AttributeType,
  DataType,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/types.js';
import { gaussian, type Rng } from '../util/random.js';

export type Opset = 13 | 17;

/** IR version the exporter writes for each opset. */
const IR_VERSION: Record<Opset, number> = { 13: 7, 17: 8 };

/**
 * An activation flowing through the graph. `shape` is the full shape for a batch of one
 * (the graph itself keeps the batch dimension dynamic).
 */
export interface Value {
  readonly name: string;
  readonly shape: readonly number[];
}

/** How a parameter tensor is filled when the model is materialized. */
export type Init =
  /** U(-bound, bound), times `scale` (folded BN multiplies by 1/√(1+eps)). */
  | { readonly kind: 'uniform'; readonly bound: number; readonly scale?: number }
  | { readonly kind: 'constant'; readonly value: number }
  /** N(0, std²) redrawn outside ±2 std. */
  | { readonly kind: 'truncNormal'; readonly std: number };

interface ParamEntry {
  readonly name: string;
  readonly dims: readonly number[];
  readonly init: Init;
  /** Learnable parameter (counts in `params`) as opposed to a buffer such as running_mean. */
  readonly trainable: boolean;
  /** Exporter-made tensor (`onnx::Conv_N`): listed after the named ones. */
  readonly anonymous: boolean;
  /** Index into the random stream; random inits never merge with each other. */
  readonly serial: number;
}

/** Attribute constructors; the builder adds the name. */
export const attr = {
  int: (i: number): AttributeProto => ({ type: AttributeType.INT, i }),
  ints: (ints: readonly number[]): AttributeProto => ({ type: AttributeType.INTS, ints: [...ints] }),
  float: (f: number): AttributeProto => ({ type: AttributeType.FLOAT, f }),
  string: (s: string): AttributeProto => ({ type: AttributeType.STRING, s: new TextEncoder().encode(s) }),
  tensor: (t: TensorProto): AttributeProto => ({ type: AttributeType.TENSOR, t }),
};

interface Scope {
  /** Module name as in the state dict (`0`, `conv1`). */
  readonly module: string;
  /** Name shown in node names (`layer1.0`, `relu_1`). */
  readonly display: string;
  /** Calls of child modules seen so far, by module name (for the `_1` suffix). */
  readonly childCalls: Map<string, number>;
  /** Ops of each type emitted directly in this scope (for `Conv_1`). */
  readonly opCounts: Map<string, number>;
}

export function int64Tensor(values: readonly number[], scalar = false): TensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { dims: scalar ? [] : [values.length], dataType: DataType.INT64, rawData: raw };
}

export function floatScalarTensor(value: number): TensorProto {
  const raw = new Uint8Array(4);
  new DataView(raw.buffer).setFloat32(0, value, true);
  return { dims: [], dataType: DataType.FLOAT, rawData: raw };
}

export class ModelBuilder {
  readonly opset: Opset;
  /** Multiply-accumulates ×2 of Conv/Gemm/MatMul for one image. */
  flops = 0;
  private readonly nodes: NodeProto[] = [];
  private readonly params: ParamEntry[] = [];
  private readonly scopes: Scope[];
  private anonymousCounter = 0;
  private inputValue: Value | undefined;

  constructor(opset: Opset = 13) {
    this.opset = opset;
    this.scopes = [{ module: '', display: '', childCalls: new Map(), opCounts: new Map() }];
  }

  /** The graph input `input`, [batch, C, H, W] with a dynamic batch. */
  input(chw: readonly [number, number, number]): Value {
    this.inputValue = { name: 'input', shape: [1, ...chw] };
    return this.inputValue;
  }

  /** Run `fn` inside a module's scope. A dotted path enters several modules. */
  within<T>(modulePath: string, fn: () => T): T {
    const parts = modulePath.split('.');
    for (const module of parts) this.enter(module);
    try {
      return fn();
    } finally {
      for (let i = 0; i < parts.length; i++) this.scopes.pop();
    }
  }

  private enter(module: string): void {
    const parent = this.scopes[this.scopes.length - 1];
    const calls = parent.childCalls.get(module) ?? 0;
    parent.childCalls.set(module, calls + 1);
    const isIndex = /^\d+$/.test(module);
    let display = isIndex && parent.display !== '' ? `${parent.display}.${module}` : module;
    if (calls > 0) display = `${display}_${calls}`;
    this.scopes.push({ module, display, childCalls: new Map(), opCounts: new Map() });
  }

  private get scope(): Scope {
    return this.scopes[this.scopes.length - 1];
  }

  /** State-dict prefix of the current module, with a trailing dot (empty at the root). */
  private get modulePrefix(): string {
    const names = this.scopes.slice(1).map((s) => s.module);
    return names.length === 0 ? '' : `${names.join('.')}.`;
  }

  /** Register a named parameter (or buffer) of the current module; returns its initializer name. */
  param(local: string, dims: readonly number[], init: Init, trainable = true): string {
    const name = `${this.modulePrefix}${local}`;
    if (this.params.some((p) => p.name === name)) throw new Error(`duplicate parameter ${name}`);
    this.params.push({ name, dims: [...dims], init, trainable, anonymous: false, serial: this.params.length });
    return name;
  }

  /** A tensor the exporter computed itself, named `onnx::<consumer>_<n>`. */
  anonymousParam(consumerOp: string, dims: readonly number[], init: Init): string {
    const name = `onnx::${consumerOp}_${++this.anonymousCounter}`;
    this.params.push({ name, dims: [...dims], init, trainable: true, anonymous: true, serial: this.params.length });
    return name;
  }

  /**
   * Emit one node in the current scope. `attributes` are written in name order, as the exporter
   * does. Returns the output tensor names.
   */
  node(opType: string, inputs: readonly string[], attributes: Record<string, AttributeProto> = {}, outputs = 1): string[] {
    const count = this.scope.opCounts.get(opType) ?? 0;
    this.scope.opCounts.set(opType, count + 1);
    const path = this.scopes.slice(1).map((s) => `/${s.display}`).join('');
    const name = `${path}/${opType}${count > 0 ? `_${count}` : ''}`;
    const outputNames = Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    const attribute = Object.keys(attributes)
      .sort()
      .map((key) => ({ name: key, ...attributes[key] }));
    const node: NodeProto = { input: [...inputs], output: outputNames, name, opType };
    if (attribute.length > 0) node.attribute = attribute;
    this.nodes.push(node);
    return outputNames;
  }

  /** One-output node whose result shape the caller knows. */
  op(opType: string, inputs: readonly string[], shape: readonly number[], attributes?: Record<string, AttributeProto>): Value {
    return { name: this.node(opType, inputs, attributes)[0], shape: [...shape] };
  }

  /** A `Constant` node holding a float32 scalar. */
  floatConstant(value: number): string {
    return this.node('Constant', [], { value: attr.tensor(floatScalarTensor(value)) })[0];
  }

  /** A `Constant` node holding int64 values (a 1-D tensor, or a scalar). */
  intConstant(values: readonly number[], scalar = false): string {
    return this.node('Constant', [], { value: attr.tensor(int64Tensor(values, scalar)) })[0];
  }

  /** Trainable parameter count (buffers excluded, merged tensors counted once per slot). */
  get paramCount(): number {
    return this.params.reduce((sum, p) => sum + (p.trainable ? numel(p.dims) : 0), 0);
  }

  /**
   * Finish the model: `logits` becomes the graph output, initializers are materialized from
   * `rng` (in registration order) and merged where equal.
   */
  build(logits: Value, rng: Rng): ModelProto {
    if (this.inputValue === undefined) throw new Error('ModelBuilder: no input');
    const producer = this.nodes.find((n) => n.output?.[0] === logits.name);
    if (producer === undefined) throw new Error(`ModelBuilder: ${logits.name} is not a node output`);
    producer.output = ['logits'];
    for (const n of this.nodes) n.input = n.input?.map((i) => (i === logits.name ? 'logits' : i));

    const ordered = [...this.params.filter((p) => !p.anonymous), ...this.params.filter((p) => p.anonymous)];
    // Values are drawn in registration order so that naming order does not change the weights.
    const data = new Map<string, Float32Array>();
    for (const p of this.params) data.set(p.name, materialize(p.dims, p.init, rng));

    const keptByKey = new Map<string, string>();
    const initializer: TensorProto[] = [];
    const aliases: { source: string; target: string }[] = [];
    for (const p of ordered) {
      const key = mergeKey(p);
      const kept = keptByKey.get(key);
      if (kept !== undefined) {
        aliases.push({ source: kept, target: p.name });
        continue;
      }
      keptByKey.set(key, p.name);
      const values = data.get(p.name)!;
      initializer.push({
        dims: [...p.dims],
        dataType: DataType.FLOAT,
        name: p.name,
        rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      });
    }
    // The exporter lists the Identity nodes first, latest parameter first.
    const identities: NodeProto[] = aliases.reverse().map((a, i) => ({
      input: [a.source],
      output: [a.target],
      name: `Identity_${i}`,
      opType: 'Identity',
    }));

    const [, c, h, w] = this.inputValue.shape;
    return {
      irVersion: IR_VERSION[this.opset],
      producerName: 'ghn-space',
      producerVersion: '1',
      opsetImport: [{ version: this.opset }],
      graph: {
        node: [...identities, ...this.nodes],
        name: 'torch_jit',
        initializer,
        input: [tensorInfo('input', ['batch', c, h, w])],
        output: [tensorInfo('logits', ['batch', ...logits.shape.slice(1)])],
      },
    };
  }
}

function tensorInfo(name: string, dims: readonly (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Equal keys ⇔ equal tensors: constants by value, random tensors never. */
function mergeKey(p: ParamEntry): string {
  const what = p.init.kind === 'constant' ? `c${Math.fround(p.init.value)}` : `r${p.serial}`;
  return `${p.dims.join('x')}|${what}`;
}

function materialize(dims: readonly number[], init: Init, rng: Rng): Float32Array {
  const out = new Float32Array(numel(dims));
  switch (init.kind) {
    case 'constant':
      out.fill(init.value);
      break;
    case 'uniform': {
      const scale = init.scale ?? 1;
      for (let i = 0; i < out.length; i++) out[i] = (rng() * 2 - 1) * init.bound * scale;
      break;
    }
    case 'truncNormal':
      for (let i = 0; i < out.length; i++) {
        let z = gaussian(rng);
        while (Math.abs(z) > 2) z = gaussian(rng);
        out[i] = z * init.std;
      }
      break;
  }
  return out;
}
