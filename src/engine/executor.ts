/**
 * Runs an imported ONNX graph in TensorFlow.js with ONNX semantics, differentiably with respect to
 * parameter tensors supplied per call. Built once per model, run many times (one call per
 * parameter set: fine-tuning steps, or every architecture of a GHN meta-batch).
 *
 * - Values that depend only on constants and input shapes (Shape→Gather→Concat chains, Constant,
 *   ConstantOfShape...) are evaluated on the first call for an input shape and cached; later calls
 *   skip those nodes, and they are never on the gradient path.
 * - Rank-4 activations stay physically NHWC between convolution-friendly ops (see layout.ts).
 * - Derived forms of unchanging tensors (a file weight permuted OIHW→HWIO, a [C,1,1] constant
 *   permuted for NHWC) are cached per input shape; supplied parameters are permuted on every call,
 *   inside the differentiable path.
 * - BatchNormalization obeys `training` (batch statistics, reported in `bnStats`) rather than the
 *   file's mode; Dropout is the identity.
 */
import * as tf from './tfjs-core.js';
import { GhnError } from '../errors.js';
import type { AttributeProto, NodeProto } from '../onnx/types.js';
import { nhwcToNchw } from './layout.js';
import { logicalShape } from './ops/common.js';
import { OPS } from './ops/index.js';
import type { BatchStats, OpContext, OpImpl, OpNode, OpOutput, Value } from './ops/types.js';
import { protoToTensor, type ModelSource } from './tensors.js';

export type { ModelSource } from './tensors.js';
export type { BatchStats } from './ops/types.js';

export interface ExecutorOptions {
  /** How many distinct input shapes keep their cached constant plans (oldest evicted). Default 4. */
  maxShapePlans?: number;
}

export interface RunOptions {
  /** Initializer name → tensor in the file's stored shape; overrides the file's value. */
  params?: ReadonlyMap<string, tf.Tensor>;
  /** BatchNormalization with batch statistics (true) or running statistics (false, default). */
  training?: boolean;
  /** Called after each executed node with logical (ONNX) shapes; for profiling and FLOP counts. */
  observe?: (node: ObservedNode) => void;
  /**
   * Called with each activation a node writes (in the executor's internal layout, which may be
   * NHWC; use it for layout-free statistics); a returned tensor replaces the value for every later
   * node. Used to calibrate layer output scales in one pass.
   */
  onValue?: (name: string, value: tf.Tensor) => tf.Tensor | undefined;
}

export interface ObservedNode {
  opType: string;
  label: string;
  inputShapes: Array<number[] | undefined>;
  outputShapes: number[][];
  attributes: ReadonlyMap<string, AttributeProto>;
}

export interface RunResult {
  /** Graph outputs in ONNX layout, in graph order. Owned by the caller. */
  outputs: tf.Tensor[];
  /** Training runs only: per BatchNormalization node (keyed by node label), its batch statistics. */
  bnStats: Map<string, BatchStats>;
}

/** A BatchNormalization node and the names of the values feeding its slots. */
export interface BatchNormSlots {
  node: string;
  scale: string;
  bias: string;
  mean: string;
  variance: string;
}

interface CompiledNode {
  op: OpNode;
  impl: OpImpl;
  inputs: string[];
  outputs: string[];
  /** Depends only on constants and input shapes. */
  isStatic: boolean;
}

/** Per input-shape cache of static values and derived forms. */
interface ShapePlan {
  statics: Map<string, tf.Tensor>;
  derived: Map<string, tf.Tensor>;
  ints: Map<string, number[]>;
  complete: boolean;
}

interface ExecuteResult {
  outputs: tf.Tensor[];
  stats: Array<{ key: string } & BatchStats>;
}

/** Ops whose output depends on their input's shape only. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);
const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);

function attributeMap(node: NodeProto): Map<string, AttributeProto> {
  return new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
}

function disposePlan(plan: ShapePlan): void {
  for (const t of plan.statics.values()) t.dispose();
  for (const t of plan.derived.values()) t.dispose();
}

export class GraphExecutor {
  /** Graph inputs that are not initializers, in graph order. */
  readonly inputNames: string[];
  readonly outputNames: string[];
  /** Float initializers: the tensors `params` may override. */
  readonly parameterNames: string[];
  readonly batchNorms: BatchNormSlots[];
  readonly opset: number;

  private readonly parameterSet: ReadonlySet<string>;
  private readonly nodes: CompiledNode[];
  private readonly initializers = new Map<string, tf.Tensor>();
  private readonly plans = new Map<string, ShapePlan>();
  private readonly maxPlans: number;
  private disposed = false;

  constructor(model: ModelSource, options: ExecutorOptions = {}) {
    const graph = model.proto.graph;
    if (!graph) throw new GhnError('bad-input', 'model has no graph');
    this.maxPlans = options.maxShapePlans ?? 4;
    const defaultOpset = (model.proto.opsetImport ?? []).find((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
    this.opset = defaultOpset?.version === undefined ? 13
      : typeof defaultOpset.version === 'number' ? defaultOpset.version : defaultOpset.version.toNumber();

    const staticNames = new Set<string>();
    const parameterNames: string[] = [];
    try {
      for (const init of graph.initializer ?? []) {
        const name = init.name ?? '';
        const t = tf.keep(protoToTensor(init, model));
        this.initializers.set(name, t);
        if (t.dtype === 'float32') parameterNames.push(name);
        else staticNames.add(name);
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
    this.parameterNames = parameterNames;
    this.parameterSet = new Set(parameterNames);
    this.inputNames = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !this.initializers.has(n));
    this.outputNames = (graph.output ?? []).map((v) => v.name ?? '');

    this.nodes = (graph.node ?? []).map((node, index) => {
      const opType = node.opType ?? '';
      const label = node.name || node.output?.[0] || `#${index}`;
      const impl = OPS[opType];
      if (!impl || !DEFAULT_DOMAINS.has(node.domain ?? '')) {
        this.dispose();
        const qualified = node.domain && !DEFAULT_DOMAINS.has(node.domain) ? `${node.domain}.${opType}` : opType;
        throw new GhnError('unsupported', `operator ${qualified} (node ${label}) is not supported by the executor`);
      }
      const inputs = node.input ?? [];
      const outputs = node.output ?? [];
      const isStatic = SHAPE_ONLY.has(opType) || inputs.every((n) => n === '' || staticNames.has(n));
      if (isStatic) outputs.forEach((n) => staticNames.add(n));
      const op: OpNode = { opType, label, attributes: attributeMap(node), outputCount: outputs.length, opset: this.opset };
      return { op, impl, inputs, outputs, isStatic };
    });
    this.batchNorms = this.nodes
      .filter((n) => n.op.opType === 'BatchNormalization')
      .map((n) => ({ node: n.op.label, scale: n.inputs[1], bias: n.inputs[2], mean: n.inputs[3], variance: n.inputs[4] }));
  }

  /** The file's value of an initializer (owned by the executor; do not dispose). */
  initializer(name: string): tf.Tensor | undefined {
    return this.initializers.get(name);
  }

  run(inputs: tf.Tensor | Record<string, tf.Tensor>, options: RunOptions = {}): RunResult {
    if (this.disposed) throw new GhnError('usage', 'executor used after dispose()');
    const feeds = this.bindInputs(inputs);
    const key = this.inputNames.map((n) => `${feeds.get(n)!.shape.join('x')}:${feeds.get(n)!.dtype}`).join('|');
    let plan = this.plans.get(key);
    if (!plan) {
      plan = { statics: new Map(), derived: new Map(), ints: new Map(), complete: false };
      this.plans.set(key, plan);
      this.evictPlans();
    }
    const params = options.params ?? new Map<string, tf.Tensor>();
    for (const name of params.keys()) {
      if (!this.parameterSet.has(name)) {
        throw new GhnError('usage', `params: '${name}' is not a float initializer of the model (only those can be supplied)`);
      }
    }
    const training = options.training ?? false;
    const activePlan = plan;
    try {
      // tidy frees every intermediate; outputs and batch statistics survive it.
      const raw = tf.tidy(() => this.execute(feeds, params, training, activePlan, options) as unknown as tf.TensorContainer) as unknown as ExecuteResult;
      activePlan.complete = true;
      return { outputs: raw.outputs, bnStats: new Map(raw.stats.map((s) => [s.key, { mean: s.mean, variance: s.variance, count: s.count }])) };
    } catch (err) {
      if (!activePlan.complete) {
        disposePlan(activePlan);
        this.plans.delete(key);
      }
      throw err;
    }
  }

  /** Frees the converted initializers and all cached plans. */
  dispose(): void {
    this.disposed = true;
    for (const t of this.initializers.values()) t.dispose();
    this.initializers.clear();
    for (const plan of this.plans.values()) disposePlan(plan);
    this.plans.clear();
  }

  private bindInputs(inputs: tf.Tensor | Record<string, tf.Tensor>): Map<string, tf.Tensor> {
    const feeds = new Map<string, tf.Tensor>();
    if (inputs instanceof tf.Tensor) {
      if (this.inputNames.length !== 1) {
        throw new GhnError('usage', `model has ${this.inputNames.length} inputs (${this.inputNames.join(', ')}); pass them by name`);
      }
      feeds.set(this.inputNames[0], inputs);
      return feeds;
    }
    for (const name of this.inputNames) {
      const t = inputs[name];
      if (!t) throw new GhnError('usage', `input '${name}' was not given`);
      feeds.set(name, t);
    }
    return feeds;
  }

  private evictPlans(): void {
    while (this.plans.size > this.maxPlans) {
      const [oldest, plan] = this.plans.entries().next().value as [string, ShapePlan];
      disposePlan(plan);
      this.plans.delete(oldest);
    }
  }

  private execute(
    feeds: Map<string, tf.Tensor>, params: ReadonlyMap<string, tf.Tensor>, training: boolean, plan: ShapePlan,
    hooks: Pick<RunOptions, 'observe' | 'onValue'>,
  ): ExecuteResult {
    const { observe, onValue } = hooks;
    const env = new Map<string, Value>();
    for (const [name, t] of feeds) env.set(name, { t, nhwc: false, stable: false, name });
    const lookup = (name: string): Value | undefined => {
      const v = env.get(name);
      if (v) return v;
      const supplied = params.get(name);
      if (supplied) return { t: supplied, nhwc: false, stable: false, name };
      const t = plan.statics.get(name) ?? this.initializers.get(name);
      return t ? { t, nhwc: false, stable: true, name } : undefined;
    };
    const stats: Array<{ key: string } & BatchStats> = [];

    for (const node of this.nodes) {
      if (node.isStatic && plan.complete) continue;
      const values = node.inputs.map((n) => (n === '' ? undefined : lookup(n)));
      node.inputs.forEach((n, i) => {
        if (n !== '' && !values[i]) throw new GhnError('bad-input', `node ${node.op.label} reads '${n}', which no node, input or initializer provides`);
      });
      const ctx = this.context(node, values, training, plan, stats);
      let outs: OpOutput[];
      try {
        outs = node.impl(ctx);
      } catch (err) {
        if (err instanceof GhnError) throw err;
        throw new GhnError('bad-input', `${node.op.opType} node ${node.op.label} failed: ${(err as Error).message}`, { cause: err });
      }
      const stable = values.every((v) => !v || v.stable);
      node.outputs.forEach((name, i) => {
        const out = outs[i];
        if (!out || name === '') return;
        if (node.isStatic) plan.statics.set(name, tf.keep(out.t));
        const replaced = node.isStatic ? undefined : onValue?.(name, out.t);
        // A replaced value is this call's own: never cache forms derived from it.
        env.set(name, replaced ? { t: replaced, nhwc: out.nhwc, stable: false, name } : { t: out.t, nhwc: out.nhwc, stable, name });
      });
      if (observe) {
        observe({
          opType: node.op.opType, label: node.op.label, attributes: node.op.attributes,
          inputShapes: values.map((v) => (v ? logicalShape(v) : undefined)),
          outputShapes: outs.map((o) => (o.nhwc ? logicalShape({ ...o, stable: false, name: '' }) : o.t.shape)),
        });
      }
    }

    const outputs = this.outputNames.map((name) => {
      const v = lookup(name);
      if (!v) throw new GhnError('bad-input', `graph output '${name}' is not produced by any node`);
      const t = v.nhwc ? nhwcToNchw(v.t) : v.t;
      // Cached tensors must not be handed out: the caller disposes outputs.
      return v.stable || t === feeds.get(name) ? tf.clone(t) : t;
    });
    return { outputs, stats };
  }

  private context(node: CompiledNode, values: Array<Value | undefined>, training: boolean, plan: ShapePlan, stats: Array<{ key: string } & BatchStats>): OpContext {
    const required = (i: number): Value => {
      const v = values[i];
      if (!v) throw new GhnError('bad-input', `${node.op.opType} node ${node.op.label}: input ${i} is missing`);
      return v;
    };
    const numbers = (i: number, kind: 'ints' | 'floats'): number[] => {
      const v = required(i);
      const key = `${v.name}|${kind}`;
      const cached = v.stable ? plan.ints.get(key) : undefined;
      if (cached) return cached;
      const data = Array.from(v.t.dataSync() as ArrayLike<number>);
      if (v.stable) plan.ints.set(key, data);
      return data;
    };
    return {
      node: node.op,
      training,
      inputCount: node.inputs.length,
      input: (i) => values[i],
      required,
      ints: (i) => numbers(i, 'ints'),
      floats: (i) => numbers(i, 'floats'),
      derive: (i, tag, make) => {
        const v = required(i);
        if (!v.stable) return make(v.t);
        const key = `${v.name}|${tag}`;
        let t = plan.derived.get(key);
        if (!t) {
          t = tf.keep(make(v.t));
          plan.derived.set(key, t);
        }
        return t;
      },
      reportBatchStats: (s) => stats.push({ key: node.op.label, ...s }),
    };
  }
}
