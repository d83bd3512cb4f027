"""Writes small real ONNX models for test/onnx-*.test.ts into the directory given as argv[1].

PyTorch 1.13 exports (CNN with BatchNorm kept, a tiny ViT at opsets 13 and 17, one saved with
external data) plus a model built with onnx.helper that sets every optional field onnx 1.12 knows.
expected.json records values the tests compare against.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))

    def forward(self, x):
        return self.body(x)


class TinyVit(torch.nn.Module):
    def __init__(self, dim=32, heads=4, patch=4, image=16):
        super().__init__()
        self.heads = heads
        self.patch = torch.nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.norm1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim))
        self.head = torch.nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        x = x + self.mlp(self.norm2(x))
        return self.head(x[:, 0])


def export(model, shape, name, opset, training=torch.onnx.TrainingMode.EVAL):
    model.eval()
    torch.onnx.export(model, torch.randn(*shape), os.path.join(out, name), opset_version=opset,
                      training=training, input_names=['input'], output_names=['output'])


cnn = SmallCnn()
for bn in cnn.modules():  # non-trivial running statistics, so the BN nodes compute something
    if isinstance(bn, torch.nn.BatchNorm2d):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
export(cnn, (2, 1, 16, 16), 'cnn_bn13.onnx', 13, torch.onnx.TrainingMode.PRESERVE)
vit = TinyVit()
export(vit, (2, 1, 16, 16), 'vit13.onnx', 13)
export(vit, (2, 1, 16, 16), 'vit17.onnx', 17)

# The CNN again, every tensor in one external data file.
os.makedirs(os.path.join(out, 'external'), exist_ok=True)
m = onnx.load(os.path.join(out, 'cnn_bn13.onnx'))
onnx.save_model(m, os.path.join(out, 'external', 'model.onnx'), save_as_external_data=True,
                all_tensors_to_one_file=True, location='weights.bin', size_threshold=0)
ext = onnx.load(os.path.join(out, 'external', 'model.onnx'), load_external_data=False)
expected = {'external': {t.name: float(numpy_helper.to_array(t, os.path.join(out, 'external')).astype(np.float64).sum())
                         for t in ext.graph.initializer if t.data_location == TensorProto.EXTERNAL}}

# Every optional field onnx 1.12 can set, and tensors in every storage form.
f32 = helper.make_tensor('w_float_data', TensorProto.FLOAT, [2, 3], [0.5, -1.25, 2, 3, 4, 5])
f32_raw = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) / 4, 'w_raw')
f32_raw.doc_string = 'a raw float tensor'
f64 = helper.make_tensor('w_double', TensorProto.DOUBLE, [3], [1.5, -2.25, 1e-3])
f16 = helper.make_tensor('w_half', TensorProto.FLOAT16, [4], [1, -0.5, 65504, 1e-4])  # stored as int32_data bit patterns
f16_raw = numpy_helper.from_array(np.array([0.1, 0.2, -3], np.float16), 'w_half_raw')
i64 = helper.make_tensor('shape_i64', TensorProto.INT64, [3], [1, -1, 2 ** 40])
i8 = helper.make_tensor('q_i8', TensorProto.INT8, [3], [-128, 5, 127])
strs = helper.make_tensor('labels', TensorProto.STRING, [2], [b'cat', b'dog'])
seg = numpy_helper.from_array(np.ones(2, np.float32), 'segmented')
seg.segment.begin, seg.segment.end = 0, 2
sparse = helper.make_sparse_tensor(helper.make_tensor('sp_values', TensorProto.FLOAT, [2], [7, 8]),
                                   helper.make_tensor('sp_indices', TensorProto.INT64, [2], [1, 4]), [6])
body = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'then_body', [],
                         [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 3])])
nodes = [
    helper.make_node('Add', ['input', 'w_raw'], ['a'], name='add0', doc_string='adds', domain=''),
    helper.make_node('Constant', [], ['c'], name='const0', value=helper.make_tensor('cval', TensorProto.FLOAT, [1], [2.0])),
    helper.make_node('Mul', ['a', 'c'], ['b'], name='mul0'),
    helper.make_node('LeakyRelu', ['b'], ['lr'], name='lrelu', alpha=0.2),
    helper.make_node('Transpose', ['lr'], ['t'], name='tr', perm=[1, 0]),
    helper.make_node('MyFn', ['t'], ['output'], name='fn0', domain='local.fns', scale=1.5, tags=['x', 'y'],
                     ratios=[0.25, 0.5], mode='fast'),
]
graph = helper.make_graph(
    nodes, 'full', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['batch', 3])],
    [helper.make_tensor_value_info('output', TensorProto.FLOAT, [3, 'batch'])],
    initializer=[f32_raw, f32, f64, f16, f16_raw, i64, i8, strs, seg], doc_string='graph doc',
    value_info=[helper.make_tensor_value_info('a', TensorProto.FLOAT, ['batch', 3])],
    sparse_initializer=[sparse])
qa = graph.quantization_annotation.add()
qa.tensor_name = 'a'
qa.quant_parameter_tensor_names.add(key='SCALE_TENSOR', value='w_double')
graph.value_info.append(helper.make_value_info('seq', helper.make_sequence_type_proto(
    helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))))
graph.value_info.append(helper.make_value_info('opt', helper.make_optional_type_proto(
    helper.make_tensor_type_proto(TensorProto.INT64, None))))
fn = helper.make_function('local.fns', 'MyFn', ['X'], ['Y'],
                          [helper.make_node('Identity', ['X'], ['Y'])],
                          [helper.make_opsetid('', 17)], attributes=['scale', 'tags', 'ratios', 'mode'],
                          doc_string='a local function')
model = helper.make_model(graph, producer_name='ghn-test', producer_version='1', domain='test.domain',
                          model_version=7, doc_string='model doc', functions=[fn],
                          opset_imports=[helper.make_opsetid('', 17), helper.make_opsetid('local.fns', 1)])
helper.set_model_props(model, {'author': 'ghn', 'purpose': 'round trip'})
ti = model.training_info.add()
ti.initialization.CopyFrom(helper.make_graph([], 'init', [], [], initializer=[numpy_helper.from_array(np.zeros(2, np.float32), 'step')]))
ti.algorithm.CopyFrom(helper.make_graph([helper.make_node('If', ['cond'], ['y'], then_branch=body, else_branch=body)],
                                        'algo', [helper.make_tensor_value_info('cond', TensorProto.BOOL, [])], []))
ti.initialization_binding.add(key='step', value='step')
ti.update_binding.add(key='w_raw', value='step')
onnx.save(model, os.path.join(out, 'full_fields.onnx'))

expected['full'] = {
    'w_float_data': [0.5, -1.25, 2, 3, 4, 5], 'w_raw': (np.arange(6) / 4).tolist(), 'w_double': [1.5, -2.25, 1e-3],
    'w_half': np.array([1, -0.5, 65504, 1e-4], np.float16).astype(np.float64).tolist(),
    'w_half_raw': np.array([0.1, 0.2, -3], np.float16).astype(np.float64).tolist(),
    'shape_i64': ['1', '-1', str(2 ** 40)], 'q_i8': [-128, 5, 127],
}
# Rounding references for float16 (numpy) and bfloat16 (torch): ties, subnormals, overflow, random.
rng = np.random.default_rng(0)
cases = np.concatenate([
    rng.standard_normal(2000).astype(np.float32) * np.float32(10) ** rng.integers(-9, 6, 2000).astype(np.float32),
    np.array([0, -0.0, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 5.96e-8, 6.1e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11,
              3.4e38, -3.4e38, 1 + 2 ** -8, 1 + 3 * 2 ** -8], np.float32)])
expected['rounding'] = {
    'values': cases.tolist(),
    'half': cases.astype(np.float16).view(np.uint16).tolist(),
    'bfloat16': torch.from_numpy(cases).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).tolist(),
}
with open(os.path.join(out, 'expected.json'), 'w') as f:
    json.dump(expected, f)
