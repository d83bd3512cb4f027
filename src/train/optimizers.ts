/**
 * Optimizers over named tf.Variables, with PyTorch's update rules so results are comparable:
 * SGD with momentum (dampening 0) and L2 weight decay added to the gradient; AdamW with decoupled
 * weight decay. Learning rate constant or cosine-annealed to 0 over the run.
 */
import * as tf from '@tensorflow/tfjs';
import { GhnError } from '../errors.js';

export type OptimizerKind = 'sgd' | 'adamw';
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

type UpdateRule = (p: tf.Variable, g: tf.Tensor, state: tf.Variable[], lr: number, t: number) => void;

function sgdRule(config: OptimizerConfig): { slots: number; update: UpdateRule } {
  const momentum = config.momentum ?? 0.9;
  const wd = config.weightDecay ?? 0;
  return {
    slots: momentum > 0 ? 1 : 0,
    update: (p, g, [buf], lr, t) => {
      const grad = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
      let direction = grad;
      if (buf) {
        // PyTorch initializes the buffer with the first gradient.
        direction = t === 1 ? grad : tf.add(tf.mul(buf, momentum), grad);
        buf.assign(direction);
      }
      p.assign(tf.sub(p, tf.mul(direction, lr)));
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
      const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
      const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.mul(g, g), 1 - b2));
      m.assign(m1);
      v.assign(v1);
      const stepSize = lr / (1 - b1 ** t);
      const denom = tf.add(tf.sqrt(tf.div(v1, 1 - b2 ** t)), eps);
      const decayed = wd > 0 ? tf.mul(p, 1 - lr * wd) : p;
      p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)));
    },
  };
}

const RULES: Record<OptimizerKind, (c: OptimizerConfig) => { slots: number; update: UpdateRule }> = {
  sgd: sgdRule,
  adamw: adamwRule,
};

export function createOptimizer(config: OptimizerConfig): Optimizer {
  const make = RULES[config.kind];
  if (!make) throw new GhnError('usage', `unknown optimizer '${String(config.kind)}' (expected sgd or adamw)`);
  if (!(config.lr > 0)) throw new GhnError('usage', `learning rate must be positive, got ${config.lr}`);
  const rule = make(config);
  const state = new Map<string, tf.Variable[]>();
  let steps = 0;
  return {
    config,
    get steps() { return steps; },
    step(params, grads) {
      steps += 1;
      const lr = learningRate(config, steps - 1);
      tf.tidy(() => {
        for (const [name, p] of params) {
          const g = grads.get(name);
          if (!g) continue;
          let slots = state.get(name);
          if (!slots) {
            slots = Array.from({ length: rule.slots }, () => tf.variable(tf.zerosLike(p), false));
            state.set(name, slots);
          }
          rule.update(p, g, slots, lr, steps);
        }
      });
    },
    dispose() {
      for (const slots of state.values()) slots.forEach((s) => s.dispose());
      state.clear();
    },
  };
}
