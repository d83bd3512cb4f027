/**
 * Cheap check of a computed Q: random probes x ~ N(0, I) give E‖(QᵀQ − I)x‖² = ‖QᵀQ − I‖_F², so a
 * few of them bound the error in 2·m·n multiply-adds each instead of the m·n² of forming QᵀQ.
 * Accumulates in float64 whatever the precision Q was computed in.
 */
import { createRng, gaussian } from '../util/random.js';

export const PROBES = 3;
/** Safety factor on the probe estimate: three Gaussian probes rarely undershoot ‖·‖_F by more than this. */
export const PROBE_SAFETY = 4;

/** Probe estimate of ‖QᵀQ − I‖_F (times a safety factor) for column-major m×n Q with leading dimension ld. */
export function orthogonalityError(q: Float32Array | Float64Array, ld: number, m: number, n: number): number {
  // Fixed seed: the check is part of a deterministic algorithm, not a source of randomness.
  const rng = createRng(0x5eed);
  const x = new Float64Array(n);
  const y = new Float64Array(m);
  let worst = 0;
  for (let p = 0; p < PROBES; p++) {
    for (let j = 0; j < n; j++) x[j] = gaussian(rng);
    y.fill(0);
    for (let j = 0; j < n; j++) {
      const xj = x[j], o = j * ld;
      for (let i = 0; i < m; i++) y[i] += q[o + i] * xj;
    }
    let squared = 0;
    for (let j = 0; j < n; j++) {
      const o = j * ld;
      let s = 0;
      for (let i = 0; i < m; i++) s += q[o + i] * y[i];
      const e = s - x[j];
      squared += e * e;
    }
    if (!(squared <= Infinity)) return Infinity; // NaN: treat as a failure
    worst = Math.max(worst, squared);
  }
  return PROBE_SAFETY * Math.sqrt(worst);
}


/** The probes as an n×PROBES row-major matrix (column k = probe k), same fixed seed. */
export function probeVectors(n: number): Float64Array {
  const rng = createRng(0x5eed);
  const p = new Float64Array(n * PROBES);
  for (let k = 0; k < PROBES; k++) for (let j = 0; j < n; j++) p[j * PROBES + k] = gaussian(rng);
  return p;
}
