/**
 * Visits every TensorProto a model holds: graph initializers, sparse initializers, tensors inside
 * node attributes, and everything inside subgraphs, training-info graphs and local functions.
 */
import type { AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto } from './types.js';

export type TensorVisitor = (tensor: TensorProto, where: string) => void;

export function forEachTensor(model: ModelProto, visit: TensorVisitor): void {
  if (model.graph) visitGraph(model.graph, visit, 'graph');
  model.trainingInfo?.forEach((info, i) => {
    if (info.initialization) visitGraph(info.initialization, visit, `trainingInfo[${i}].initialization`);
    if (info.algorithm) visitGraph(info.algorithm, visit, `trainingInfo[${i}].algorithm`);
  });
  model.functions?.forEach((fn, i) => {
    const where = `function ${fn.name ?? i}`;
    fn.node?.forEach((node) => visitNode(node, visit, where));
    fn.attributeProto?.forEach((attr) => visitAttribute(attr, visit, where));
  });
}

/** All tensors of the model in visiting order. */
export function allTensors(model: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  forEachTensor(model, (t) => out.push(t));
  return out;
}

function visitGraph(graph: GraphProto, visit: TensorVisitor, where: string): void {
  graph.initializer?.forEach((t) => visit(t, where));
  graph.sparseInitializer?.forEach((s) => visitSparse(s, visit, where));
  graph.node?.forEach((node) => visitNode(node, visit, where));
}

function visitNode(node: NodeProto, visit: TensorVisitor, where: string): void {
  const inner = `${where} / node ${node.name || node.opType || '?'}`;
  node.attribute?.forEach((attr) => visitAttribute(attr, visit, inner));
}

function visitAttribute(attr: AttributeProto, visit: TensorVisitor, where: string): void {
  if (attr.t) visit(attr.t, where);
  attr.tensors?.forEach((t) => visit(t, where));
  if (attr.sparseTensor) visitSparse(attr.sparseTensor, visit, where);
  attr.sparseTensors?.forEach((s) => visitSparse(s, visit, where));
  if (attr.g) visitGraph(attr.g, visit, `${where}.${attr.name}`);
  attr.graphs?.forEach((g, i) => visitGraph(g, visit, `${where}.${attr.name}[${i}]`));
}

function visitSparse(s: SparseTensorProto, visit: TensorVisitor, where: string): void {
  if (s.values) visit(s.values, where);
  if (s.indices) visit(s.indices, where);
}
