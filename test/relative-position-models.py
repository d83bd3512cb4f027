"""Writes tiny torchvision Swin and MaxViT exports (PyTorch 1.13, opset 13) into argv[1] for
test/relative-position-bias.test.ts, and tables.json: every relative_position_bias_table's
shape per export, from the modules themselves.

Without constant folding the exporter keeps Gather(relative_position_bias_table, index); with it
(torch.onnx.export's default) the Gather is folded into a constant [1, heads, N, N] bias.
"""
import json
import os
import sys
import warnings

import torch
from torchvision.models.maxvit import MaxVit
from torchvision.models.swin_transformer import SwinTransformer

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

models = {
    # Two stages, windows of 4 (7x7 tables) on 8x8 and 4x4 tokens: the second block of the first stage
    # attends in shifted windows (its logits get the shift mask added after the bias).
    'swin': SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 1], num_heads=[1, 2], window_size=[4, 4],
                            num_classes=10),
    # Window and grid attention per block, partitions of 2 (3x3 tables).
    'maxvit': MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[16, 32], block_layers=[1, 1],
                     head_dim=8, stochastic_depth_prob=0.0, num_classes=10),
}
variants = {  # name -> (training mode, constant folding)
    'preserve13nofold': (torch.onnx.TrainingMode.PRESERVE, False),
    'eval13nofold': (torch.onnx.TrainingMode.EVAL, False),
    'preserve13': (torch.onnx.TrainingMode.PRESERVE, True),
}
tables = {}
for name, model in models.items():
    model.eval()
    params = {k: list(p.shape) for k, p in model.named_parameters()}
    for variant, (mode, fold) in variants.items():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, torch.zeros(1, 3, 32, 32), os.path.join(out, f'{name}.{variant}.onnx'), opset_version=13,
                              training=mode, do_constant_folding=fold, input_names=['input'], output_names=['logits'],
                              dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    tables[name] = {
        'tables': {k: s for k, s in params.items() if k.endswith('relative_position_bias_table')},
        'params': sum(p.numel() for p in model.parameters()),
    }
with open(os.path.join(out, 'tables.json'), 'w') as f:
    json.dump(tables, f, indent=1)
