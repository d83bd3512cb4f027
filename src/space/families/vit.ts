/**
 * Vision transformer (timm layout, token counts kept as Python ints so reshapes are constant):
 * root `cls_token` [1,1,D] and `pos_embed` [1,N(+1),D] (trunc-normal std 0.02);
 * `patch_embed.proj` p×p stride-p conv, Reshape [-1,D,N] and Transpose; class token by the
 * exporter's dynamic Expand + Concat; Add of pos_embed; `blocks.i` pre-norm blocks (norm1,
 * attn.qkv/proj with MatMul·Softmax·MatMul attention, Add, norm2, mlp.fc1/act(GELU)/fc2, Add);
 * final `norm`; class-token Gather (or token mean via ReduceMean when there is no class token);
 * `head` Gemm.
 */
import type { Rng } from '../../util/random.js';
import { chance, intBetween, pick } from '../choice.js';
import { defineFamily, type TaskShape } from '../family.js';
import { meanOverTokens, prependClassToken, selfAttention, takeFirstToken } from '../attention.js';
import { activation, add, conv2d, layerNorm, linear, linearNd, reshape, transpose } from '../layers.js';
import type { ModelBuilder, Value } from '../onnx-builder.js';

const EPS = 1e-6;
const EMBED_INIT = { kind: 'truncNormal', std: 0.02 } as const;

export interface VitConfig {
  readonly patch: number;
  readonly width: number;
  readonly depth: number;
  readonly heads: number;
  readonly mlpRatio: number;
  readonly pool: 'token' | 'mean';
}

function sample(rng: Rng, task: TaskShape): VitConfig {
  const [, h, w] = task.input;
  // Patch sizes that tile the image into 9–64 tokens.
  const patches = [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16].filter((p) => h % p === 0 && w % p === 0 && (h / p) * (w / p) <= 64 && (h / p) * (w / p) >= 9);
  const patch = patches.length > 0 ? pick(rng, patches) : 1;
  const heads = pick(rng, [1, 2, 4]);
  return {
    patch,
    width: heads * pick(rng, [8, 12, 16, 24]),
    depth: intBetween(rng, 1, 4),
    heads,
    mlpRatio: pick(rng, [2, 3, 4]),
    pool: chance(rng, 0.7) ? 'token' : 'mean',
  };
}

function block(b: ModelBuilder, x: Value, config: VitConfig): Value {
  const normed1 = b.within('norm1', () => layerNorm(b, x, EPS));
  const attended = b.within('attn', () => selfAttention(b, normed1, config.heads));
  const x1 = add(b, x, attended);
  const normed2 = b.within('norm2', () => layerNorm(b, x1, EPS));
  const mixed = b.within('mlp', () => {
    let y = b.within('fc1', () => linearNd(b, normed2, config.width * config.mlpRatio));
    y = b.within('act', () => activation(b, y, 'gelu'));
    return b.within('fc2', () => linearNd(b, y, config.width));
  });
  return add(b, x1, mixed);
}

function build(b: ModelBuilder, input: Value, config: VitConfig, task: TaskShape): Value {
  const [, h, w] = task.input;
  const tokens = (h / config.patch) * (w / config.patch);
  const useToken = config.pool === 'token';
  const clsToken = useToken ? b.param('cls_token', [1, 1, config.width], EMBED_INIT) : '';
  const posEmbed = b.param('pos_embed', [1, tokens + (useToken ? 1 : 0), config.width], EMBED_INIT);
  let x = b.within('patch_embed', () => {
    const grid = b.within('proj', () =>
      conv2d(b, input, { out: config.width, kernel: config.patch, stride: config.patch, padding: 0, bias: true }));
    return transpose(b, reshape(b, grid, [-1, config.width, tokens]), [0, 2, 1]);
  });
  if (useToken) x = prependClassToken(b, x, clsToken);
  x = b.op('Add', [x.name, posEmbed], x.shape);
  b.within('blocks', () => {
    for (let i = 0; i < config.depth; i++) x = b.within(String(i), () => block(b, x, config));
  });
  x = b.within('norm', () => layerNorm(b, x, EPS));
  x = useToken ? takeFirstToken(b, x) : meanOverTokens(b, x);
  return b.within('head', () => linear(b, x, task.classes));
}

export const vitFamily = defineFamily<VitConfig>({ name: 'vit', sample, build });
