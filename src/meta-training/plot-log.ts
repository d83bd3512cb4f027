/**
 * Meta-training curves of a training log as one self-contained SVG (no script, no fonts or styles
 * fetched): training loss and accuracy per step (raw and smoothed, validation points), learning
 * rate, and throughput in steps per minute, on a shared step axis; a dashed line marks every
 * process start (a resume or a new segment).
 *
 * Long logs are drawn from per-bin summaries (each bin's minimum and maximum, for lines that have
 * to keep their spikes, such as the warm-ups of the learning rate), so the file stays small: the
 * shipped 53,000-step log gives ~150 KB.
 */

/** The fields of a log line this reads (TrainProgress). */
export interface LogRecord {
  step: number;
  loss: number;
  acc: number;
  lr: number;
  elapsedSec?: number;
  stepSec?: number;
  val?: { acc: number; loss: number };
}

export interface PlotOptions {
  title?: string;
  /** Trailing mean over this many steps for the smoothed curves (default: 1% of the steps, at least 1). */
  smooth?: number;
  /** Bins per line at most (default 600): a longer series is drawn from per-bin minima and maxima. */
  maxBins?: number;
  width?: number;
}

interface Panel {
  id: string;
  label: string;
  lines: Array<{ series: string; points: Array<[number, number]>; stroke: string; width: number; opacity?: number }>;
  dots?: { series: string; points: Array<[number, number]>; fill: string };
  /** y range from these series only (raw noise may leave the panel, clipped). */
  rangeFrom: string[];
  format: (v: number) => string;
}

const PANEL_HEIGHT = 170;
const GAP = 42;
const LEFT = 70, RIGHT = 16, TOP = 40;

/**
 * The records a run kept: where a step appears twice (an interrupted run's steps, trained again
 * after the resume), the later line; ordered by step.
 */
export function latestPerStep<T extends { step: number }>(records: T[]): T[] {
  const byStep = new Map<number, T>();
  for (const r of records) if (typeof r?.step === 'number') byStep.set(r.step, r);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Trailing mean over `window` values. */
function trailingMean(values: number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0, count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) { sum += v; count++; }
    const old = i - window;
    if (old >= 0 && Number.isFinite(values[old]!)) { sum -= values[old]!; count--; }
    out.push(count ? sum / count : NaN);
  }
  return out;
}

/** At most 2 × maxBins points: each bin's minimum and maximum, in step order. */
function envelope(xs: number[], ys: number[], maxBins: number): Array<[number, number]> {
  const finite = xs.map((x, i) => [x, ys[i]!] as [number, number]).filter(([, y]) => Number.isFinite(y));
  if (finite.length <= maxBins) return finite;
  const size = Math.ceil(finite.length / maxBins);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < finite.length; i += size) {
    const bin = finite.slice(i, i + size);
    let lo = bin[0]!, hi = bin[0]!;
    for (const p of bin) { if (p[1] < lo[1]) lo = p; if (p[1] > hi[1]) hi = p; }
    if (lo === hi) out.push(lo);
    else out.push(...(lo[0] < hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}

/** Every `size`-th point of a smooth series, and the last. */
function thin(xs: number[], ys: number[], maxBins: number): Array<[number, number]> {
  const size = Math.max(1, Math.ceil(xs.length / maxBins));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < xs.length; i++) {
    if ((i % size === 0 || i === xs.length - 1) && Number.isFinite(ys[i]!)) out.push([xs[i]!, ys[i]!]);
  }
  return out;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
}

/**
 * Wall seconds per step: the elapsed-time difference to the step before in the same process (the
 * log's elapsedSec restarts with every process), or the line's own stepSec when there is none.
 */
export function stepSeconds(records: LogRecord[]): number[] {
  return records.map((r, i) => {
    const prev = records[i - 1];
    if (prev && prev.step === r.step - 1 && r.elapsedSec !== undefined && prev.elapsedSec !== undefined && r.elapsedSec > prev.elapsedSec) {
      return r.elapsedSec - prev.elapsedSec;
    }
    return r.stepSec ?? NaN;
  });
}

/** Steps at which a new process started: elapsedSec went back. */
export function processStarts(records: LogRecord[]): number[] {
  const starts: number[] = [];
  for (let i = 1; i < records.length; i++) {
    const [a, b] = [records[i - 1]!.elapsedSec, records[i]!.elapsedSec];
    if (a !== undefined && b !== undefined && b < a) starts.push(records[i]!.step);
  }
  return starts;
}

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number) => (Math.round(v * 10) / 10).toString();
const compact = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-2 ? v.toExponential(1).replace('e+', 'e') : Number(v.toPrecision(3)).toString());

/** The SVG of a log's records (any order; repeated steps keep their later line). */
export function plotTrainingLog(input: LogRecord[], options: PlotOptions = {}): string {
  const records = latestPerStep(input.filter((r) => r && typeof r.step === 'number'));
  if (!records.length) throw new Error('the log has no step records');
  const width = options.width ?? 960;
  const maxBins = options.maxBins ?? 600;
  const smooth = options.smooth ?? Math.max(1, Math.round(records.length / 100));
  const steps = records.map((r) => r.step);
  const loss = records.map((r) => r.loss);
  const acc = records.map((r) => r.acc);
  const vals = records.filter((r) => r.val && Number.isFinite(r.val.acc));

  // Throughput: the median step time over each bin of `smooth` steps (a pause is one long step and
  // moves a median little).
  const seconds = stepSeconds(records);
  const rate: Array<[number, number]> = [];
  for (let i = 0; i < records.length; i += smooth) {
    const m = median(seconds.slice(i, i + smooth).filter((s) => Number.isFinite(s) && s > 0));
    if (Number.isFinite(m)) rate.push([steps[Math.min(records.length - 1, i + smooth - 1)]!, 60 / m]);
  }

  const panels: Panel[] = [
    {
      id: 'loss', label: 'training loss', format: compact, rangeFrom: ['loss-smoothed', 'val-loss'],
      lines: [
        { series: 'loss', points: envelope(steps, loss, maxBins), stroke: '#4c78a8', width: 0.6, opacity: 0.25 },
        { series: 'loss-smoothed', points: thin(steps, trailingMean(loss, smooth), maxBins), stroke: '#1f4e79', width: 1.6 },
      ],
      dots: { series: 'val-loss', points: vals.map((r) => [r.step, r.val!.loss]), fill: '#e45756' },
    },
    {
      id: 'acc', label: 'training accuracy', format: compact, rangeFrom: ['acc-smoothed', 'val-acc'],
      lines: [
        { series: 'acc', points: envelope(steps, acc, maxBins), stroke: '#54a24b', width: 0.6, opacity: 0.25 },
        { series: 'acc-smoothed', points: thin(steps, trailingMean(acc, smooth), maxBins), stroke: '#2d6a27', width: 1.6 },
      ],
      dots: { series: 'val-acc', points: vals.map((r) => [r.step, r.val!.acc]), fill: '#e45756' },
    },
    {
      id: 'lr', label: 'learning rate', format: compact, rangeFrom: ['lr'],
      lines: [{ series: 'lr', points: envelope(steps, records.map((r) => r.lr), maxBins), stroke: '#b279a2', width: 1.2 }],
    },
    {
      id: 'rate', label: `steps/min (wall; median step time per ${smooth} steps)`, format: compact, rangeFrom: ['steps-per-min'],
      lines: [{ series: 'steps-per-min', points: rate, stroke: '#f58518', width: 1.4 }],
    },
  ];

  const [x0, x1] = [steps[0]!, steps.at(-1)!];
  const plotW = width - LEFT - RIGHT;
  const sx = (x: number) => LEFT + (x1 === x0 ? plotW / 2 : ((x - x0) / (x1 - x0)) * plotW);
  const height = TOP + panels.length * (PANEL_HEIGHT + GAP) + 10;
  const starts = processStarts(records);
  const title = options.title ?? `meta-training log: steps ${x0}–${x1}`;
  const legend = `thin: per step${records.length > maxBins ? ' (per-bin min/max)' : ''}; thick: trailing mean over ${smooth} steps; red dots: validation; dashed: process start`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${LEFT}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${LEFT}" y="32" fill="#555">${esc(legend)}</text>`,
  ];
  panels.forEach((panel, k) => {
    const top = TOP + k * (PANEL_HEIGHT + GAP) + 14;
    const ranged = [...panel.lines, ...(panel.dots ? [panel.dots] : [])].filter((s) => panel.rangeFrom.includes(s.series)).flatMap((s) => s.points.map((p) => p[1]));
    let [lo, hi] = ranged.length ? [Math.min(...ranged), Math.max(...ranged)] : [0, 1];
    if (panel.id === 'lr' || panel.id === 'rate') lo = Math.min(lo, 0);
    if (hi === lo) [lo, hi] = [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
    const pad = (hi - lo) * 0.04;
    [lo, hi] = [lo - (lo === 0 ? 0 : pad), hi + pad];
    const sy = (y: number) => top + PANEL_HEIGHT - ((y - lo) / (hi - lo)) * PANEL_HEIGHT;
    const clip = `clip-${panel.id}`;
    out.push(`<g data-panel="${panel.id}">`);
    out.push(`<clipPath id="${clip}"><rect x="${LEFT}" y="${top}" width="${plotW}" height="${PANEL_HEIGHT}"/></clipPath>`);
    out.push(`<text x="${LEFT}" y="${top - 4}" font-weight="bold">${esc(panel.label)}</text>`);
    out.push(`<rect x="${LEFT}" y="${top}" width="${plotW}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`);
    for (const t of ticks(lo, hi, 4)) {
      if (t < lo || t > hi) continue;
      out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${num(sy(t))}" y2="${num(sy(t))}" stroke="#eee"/>`);
      out.push(`<text x="${LEFT - 4}" y="${num(sy(t) + 4)}" text-anchor="end">${esc(panel.format(t))}</text>`);
    }
    for (const t of ticks(x0, x1, 8)) {
      if (t < x0 || t > x1) continue;
      out.push(`<text x="${num(sx(t))}" y="${top + PANEL_HEIGHT + 13}" text-anchor="middle">${t}</text>`);
    }
    for (const s of starts) out.push(`<line data-series="process-start" x1="${num(sx(s))}" x2="${num(sx(s))}" y1="${top}" y2="${top + PANEL_HEIGHT}" stroke="#bbb" stroke-dasharray="3,3"/>`);
    out.push(`<g clip-path="url(#${clip})">`);
    for (const line of panel.lines) {
      const pts = line.points.map(([x, y]) => `${num(sx(x))},${num(sy(y))}`).join(' ');
      out.push(`<polyline data-series="${line.series}" fill="none" stroke="${line.stroke}" stroke-width="${line.width}"${line.opacity ? ` stroke-opacity="${line.opacity}"` : ''} points="${pts}"/>`);
    }
    if (panel.dots) {
      out.push(`<g data-series="${panel.dots.series}" fill="${panel.dots.fill}">`);
      for (const [x, y] of panel.dots.points) out.push(`<circle cx="${num(sx(x))}" cy="${num(sy(y))}" r="2.2"><title>step ${x}: ${compact(y)}</title></circle>`);
      out.push('</g>');
    }
    out.push('</g></g>');
  });
  out.push(`<text x="${LEFT + plotW / 2}" y="${height - 4}" text-anchor="middle" fill="#555">meta-step</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
