"""Writes exports with BatchNorm preserved (PyTorch 1.13, opset 13, training=PRESERVE, as
scripts/export_torchvision.py's preserve13) into argv[1] for test/bn-calibration.test.ts:
torchvision mobilenet_v3_small(num_classes=10), one per input size in argv[2:] (e.g. 224):
mobilenet_v3_small.<size>.onnx, input [batch, 3, size, size]; and tiny_bn.onnx, conv → BN → ReLU →
pool → Linear on [batch, 3, 16, 16], whose one BN sees the same inputs however the batch is split.
"""
import os
import sys
import warnings

import torch
from torchvision.models import mobilenet_v3_small

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = mobilenet_v3_small(num_classes=10).eval()
exports = [(model, size, f'mobilenet_v3_small.{size}.onnx') for size in map(int, sys.argv[2:])]
tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
exports.append((tiny, 16, 'tiny_bn.onnx'))
for module, size, name in exports:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(module, torch.zeros(1, 3, size, size), os.path.join(out, name), opset_version=13,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True, input_names=['input'],
                          output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
