// Draws the canonical-op graph from /v1/inspect?graph=1 as SVG with a layered layout: each op sits
// one row below its deepest input (longest path from the inputs), and rows are ordered by the mean
// position of their inputs so edges mostly run straight down.

const NODE_W = 112;
const NODE_H = 24;
const GAP_X = 14;
const GAP_Y = 30;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Colour family by op kind, so convolutions, norms, activations and heads read at a glance. */
function family(kind) {
  if (/conv/.test(kind)) return 'conv';
  if (/norm/.test(kind)) return 'norm';
  if (/linear|attention|embedding|matmul/.test(kind)) return 'linear';
  if (/relu|gelu|silu|sigmoid|tanh|swish|softmax|activation|clip/.test(kind)) return 'act';
  if (/pool/.test(kind)) return 'pool';
  return 'other';
}

export function layout(graph) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const inputs = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const [s, t] of graph.edges) if (byId.has(s) && byId.has(t)) inputs.get(t).push(s);
  const order = [...graph.nodes].sort((a, b) => a.index - b.index); // topological
  const layer = new Map();
  for (const n of order) layer.set(n.id, Math.max(-1, ...inputs.get(n.id).map((s) => layer.get(s) ?? -1)) + 1);
  const rows = [];
  for (const n of order) (rows[layer.get(n.id)] ??= []).push(n.id);
  const column = new Map();
  for (const row of rows) {
    const mean = (id) => {
      const ins = inputs.get(id).filter((s) => column.has(s));
      return ins.length ? ins.reduce((a, s) => a + column.get(s), 0) / ins.length : 0;
    };
    row.sort((a, b) => mean(a) - mean(b));
    row.forEach((id, i) => column.set(id, i - (row.length - 1) / 2));
  }
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = widest * (NODE_W + GAP_X) + GAP_X;
  const positions = new Map();
  for (const [id, c] of column) {
    positions.set(id, { x: width / 2 + c * (NODE_W + GAP_X) - NODE_W / 2, y: GAP_Y / 2 + layer.get(id) * (NODE_H + GAP_Y) });
  }
  return { positions, width, height: rows.length * (NODE_H + GAP_Y) };
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function drawGraph(container, graph) {
  const { positions, width, height } = layout(graph);
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `graph of ${graph.nodes.length} operations` });
  for (const [s, t] of graph.edges) {
    const a = positions.get(s);
    const b = positions.get(t);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y;
    const bend = Math.max(12, (y2 - y1) / 2);
    svg.append(el('path', { class: 'edge', d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}` }));
  }
  for (const n of graph.nodes) {
    const p = positions.get(n.id);
    const g = el('g', { class: `node ${family(n.kind)}`, transform: `translate(${p.x},${p.y})` });
    g.append(el('title', {}, `${n.label}\n${n.kind} (${n.onnxOps.join(', ')})${n.params ? `\n${n.params.toLocaleString()} parameters` : ''}`));
    g.append(el('rect', { width: NODE_W, height: NODE_H, rx: 5 }));
    g.append(el('text', { x: NODE_W / 2, y: NODE_H / 2 + 4, 'text-anchor': 'middle' }, n.kind.length > 16 ? `${n.kind.slice(0, 15)}…` : n.kind));
    svg.append(g);
  }
  container.replaceChildren(svg);
}
