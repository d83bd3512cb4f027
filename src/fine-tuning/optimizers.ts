/**
 * Optimizers over named tf.Variables, with PyTorch's update rules so results are comparable:
 * SGD with momentum (dampening 0) and L2 weight decay added to the gradient; AdamW with decoupled
 * weight decay; the step count t of AdamW's bias correction is kept per parameter, as PyTorch does.
 * Learning rate constant or cosine-annealed to 0 over the run.
 */
import * as tf from '../engine/tfjs-core.js';
import { GhnError } from '../errors.js';

export type OptimizerKind = 'sgd' | 'adamw' | 'lamb';
export type LrSchedule = 'constant' | 'cosine';

export interface OptimizerConfig {
  kind: OptimizerKind;
  lr: number;
  /** Defaults: 1e-2 for AdamW (decoupled), 0 for SGD (L2). */
  weightDecay?: number;
  /** SGD momentum, default 0.9. */
  momentum?: number;
  /** AdamW betas, default [0.9, 0.999]. */
  betas?: [number, number];
  /** AdamW epsilon, default 1e-8. */
  eps?: number;
  schedule?: LrSchedule;
  /** Steps the cosine schedule spans; required for 'cosine'. */
  totalSteps?: number;
}

/** Learning rate at (0-based) step `step`. */
export function learningRate(config: OptimizerConfig, step: number): number {
  if ((config.schedule ?? 'constant') === 'constant') return config.lr;
  const total = config.totalSteps;
  if (!total || total <= 0) throw new GhnError('usage', 'cosine schedule needs totalSteps > 0');
  return 0.5 * config.lr * (1 + Math.cos((Math.PI * Math.min(step, total)) / total));
}

export interface Optimizer {
  readonly config: OptimizerConfig;
  /** Applies one update to `params` given gradients keyed the same way. Consumes nothing. */
  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>): void;
  /** Updates applied so far. */
  readonly steps: number;
  dispose(): void;
}

/**
 * One update of a parameter p (any shape) from its gradient and optimizer state, returning the new
 * parameter and state values. Pure tensor math: the same rule runs on one parameter or on all of
 * them concatenated into one flat vector.
 */
type UpdateRule = (p: tf.Tensor, g: tf.Tensor, state: tf.Tensor[], lr: number, t: number) => { p: tf.Tensor; state: tf.Tensor[] };

function sgdRule(config: OptimizerConfig): { slots: number; update: UpdateRule } {
  const momentum = config.momentum ?? 0.9;
  const wd = config.weightDecay ?? 0;
  return {
    slots: momentum > 0 ? 1 : 0,
    update: (p, g, [buf], lr, t) => {
      const grad = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
      // PyTorch initializes the momentum buffer with the first gradient.
      const direction = !buf || t === 1 ? grad : tf.add(tf.mul(buf, momentum), grad);
      return { p: tf.sub(p, tf.mul(direction, lr)), state: buf ? [direction] : [] };
    },
  };
}

function adamwRule(config: OptimizerConfig): { slots: number; update: UpdateRule } {
  const [b1, b2] = config.betas ?? [0.9, 0.999];
  const eps = config.eps ?? 1e-8;
  const wd = config.weightDecay ?? 1e-2;
  return {
    slots: 2,
    update: (p, g, [m, v], lr, t) => {
      const m1 = tf.add(tf.mul(m!, b1), tf.mul(g, 1 - b1));
      const v1 = tf.add(tf.mul(v!, b2), tf.mul(tf.mul(g, g), 1 - b2));
      const stepSize = lr / (1 - b1 ** t);
      const denom = tf.add(tf.sqrt(tf.mul(v1, 1 / (1 - b2 ** t))), eps);
      const decayed = wd > 0 ? tf.mul(p, 1 - lr * wd) : p;
      return { p: tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)), state: [m1, v1] };
    },
  };
}

/**
 * LAMB (You et al. 2020): AdamW's direction, scaled per parameter tensor so that each step changes
 * the tensor by lr relative to its norm. Why here: AdamW moves every weight by ~lr whatever its
 * size, which on a predicted network (features a small spread on a large mean) wipes out the
 * prediction in the first steps; a relative step keeps it while every layer still learns.
 */
function lambRule(config: OptimizerConfig): { slots: number; update: UpdateRule; perTensor: true } {
  const [b1, b2] = config.betas ?? [0.9, 0.999];
  const eps = config.eps ?? 1e-6;
  const wd = config.weightDecay ?? 1e-2;
  return {
    slots: 2,
    perTensor: true,
    update: (p, g, [m, v], lr, t) => {
      const m1 = tf.add(tf.mul(m!, b1), tf.mul(g, 1 - b1));
      const v1 = tf.add(tf.mul(v!, b2), tf.mul(tf.mul(g, g), 1 - b2));
      const adam = tf.div(tf.mul(m1, 1 / (1 - b1 ** t)), tf.add(tf.sqrt(tf.mul(v1, 1 / (1 - b2 ** t))), eps));
      const direction = wd > 0 ? tf.add(adam, tf.mul(p, wd)) : adam;
      const pNorm = tf.sqrt(tf.sum(tf.mul(p, p))), dNorm = tf.sqrt(tf.sum(tf.mul(direction, direction)));
      // A zero tensor (a bias at 0) or a zero step takes the plain step.
      const trust = tf.where(tf.logicalAnd(tf.greater(pNorm, 0), tf.greater(dNorm, 0)), tf.div(pNorm, dNorm), tf.onesLike(pNorm));
      return { p: tf.sub(p, tf.mul(direction, tf.mul(trust, lr))), state: [m1, v1] };
    },
  };
}

const RULES: Record<OptimizerKind, (c: OptimizerConfig) => { slots: number; update: UpdateRule; perTensor?: true }> = {
  sgd: sgdRule,
  adamw: adamwRule,
  lamb: lambRule,
};

/**
 * Optimizer state of a fixed list of parameters held as flat vectors (parameters concatenated in
 * list order), so one step is ~a dozen elementwise ops over all parameters instead of a dozen per
 * parameter: a ResNet's 35 tensors took ~500 small kernel calls per step.
 */
interface FlatGroup {
  names: string[];
  sizes: number[];
  state: tf.Variable[];
  /** Updates applied to the group (its parameters' step count t, as PyTorch keeps per parameter). */
  t: number;
}

export function createOptimizer(config: OptimizerConfig): Optimizer {
  const make = RULES[config.kind];
  if (!make) throw new GhnError('usage', `unknown optimizer '${String(config.kind)}' (expected sgd, adamw or lamb)`);
  if (!(config.lr > 0)) throw new GhnError('usage', `learning rate must be positive, got ${config.lr}`);
  const rule = make(config);
  /** Per-parameter state and step count t, used once a step updates another set than the group. */
  const state = new Map<string, tf.Variable[]>();
  const counts = new Map<string, number>();
  let group: FlatGroup | undefined;
  let steps = 0;

  /** Moves the flat state into per-parameter state (slices), for steps on another parameter set. */
  const ungroup = () => {
    if (!group) return;
    const g = group;
    let offset = 0;
    g.names.forEach((name, i) => {
      const size = g.sizes[i]!;
      state.set(name, g.state.map((s) => tf.variable(tf.slice(s, [offset], [size]), false)));
      counts.set(name, g.t);
      offset += size;
    });
    g.state.forEach((s) => s.dispose());
    group = undefined;
  };

  const stepEach = (params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number) => {
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      let slots = state.get(name);
      if (!slots) {
        slots = Array.from({ length: rule.slots }, () => tf.variable(tf.zeros([p.size]), false));
        state.set(name, slots);
      }
      const t = (counts.get(name) ?? 0) + 1;
      counts.set(name, t);
      const next = rule.update(tf.reshape(p, [p.size]), tf.reshape(g, [p.size]), slots, lr, t);
      p.assign(tf.reshape(next.p, p.shape));
      next.state.forEach((s, i) => slots![i]!.assign(s));
    }
  };

  const stepGrouped = (named: Array<[string, tf.Variable, tf.Tensor]>, lr: number) => {
    if (!group) {
      const sizes = named.map(([, p]) => p.size);
      const total = sizes.reduce((a, b) => a + b, 0);
      group = { names: named.map(([n]) => n), sizes, state: Array.from({ length: rule.slots }, () => tf.variable(tf.zeros([total]), false)), t: 0 };
    }
    group.t += 1;
    const flat = (ts: tf.Tensor[]) => tf.concat(ts.map((t) => tf.reshape(t, [t.size])));
    const next = rule.update(flat(named.map(([, p]) => p)), flat(named.map(([, , g]) => g)), group.state, lr, group.t);
    next.state.forEach((s, i) => group!.state[i]!.assign(s));
    // One slice per parameter (tf.split's wasm kernel copies the whole input out per part).
    let offset = 0;
    named.forEach(([, p]) => {
      p.assign(tf.reshape(tf.slice(next.p, [offset], [p.size]), p.shape));
      offset += p.size;
    });
  };

  return {
    config,
    get steps() { return steps; },
    step(params, grads) {
      steps += 1;
      const lr = learningRate(config, steps - 1);
      tf.tidy(() => {
        const named: Array<[string, tf.Variable, tf.Tensor]> = [];
        for (const [name, p] of params) {
          const g = grads.get(name);
          if (g) named.push([name, p, g]);
        }
        // The flat group is the first step's parameter set; any other set falls back to per-parameter state.
        const sameSet = !rule.perTensor && (group ? named.length === group.names.length && named.every(([n], i) => n === group!.names[i]) : state.size === 0);
        if (sameSet && named.length > 0) stepGrouped(named, lr);
        else {
          ungroup();
          stepEach(params, grads, lr);
        }
      });
    },
    dispose() {
      group?.state.forEach((s) => s.dispose());
      group = undefined;
      for (const slots of state.values()) slots.forEach((s) => s.dispose());
      state.clear();
      counts.clear();
    },
  };
}
