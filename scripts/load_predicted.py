"""Load ghn-predicted ONNX initializers into the PyTorch module that produced the export.

    /usr/bin/python3 scripts/load_predicted.py MODEL PREDICTED.onnx [ORIGINAL.onnx]

MODEL is a fixture model name (scripts/fixture_models.py); ORIGINAL defaults to
fixtures/MODEL.preserve13.onnx. Parameters are taken by name; the few the exporter renamed
(e.g. a Linear weight on a 3-D input becomes a transposed `onnx::MatMul_<n>`) are found by matching the
original export's values against the module's own, then read from the prediction under that name.
Prints one JSON line: {"parameters", "loaded", "by_name", "by_value", "missing", "logits_std"}.
This is also the recipe for users: `load_predicted(module, original_onnx, predicted_onnx)`.
"""
import json
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def initializers(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def load_predicted(module, original_path, predicted_path):
    original = initializers(original_path)
    predicted = initializers(predicted_path)
    state = {}
    by_name, by_value, missing = 0, 0, []
    for name, param in module.named_parameters():
        target = param.detach().numpy()
        if name in predicted and predicted[name].size == target.size:
            state[name] = torch.from_numpy(predicted[name].reshape(target.shape).copy())
            by_name += 1
            continue
        found = None
        for onnx_name, value in original.items():
            if value.size != target.size or onnx_name not in predicted:
                continue
            if np.array_equal(value.reshape(target.shape), target):
                found = predicted[onnx_name].reshape(target.shape)
            elif target.ndim == 2 and value.ndim == 2 and np.array_equal(value.T, target):
                found = predicted[onnx_name].T
            if found is not None:
                break
        if found is None:
            missing.append(name)
        else:
            state[name] = torch.from_numpy(np.ascontiguousarray(found))
            by_value += 1
    module.load_state_dict(state, strict=False)
    return by_name, by_value, missing


def main():
    sys.path.insert(0, "scripts")
    from fixture_models import build_model  # only the command line needs the fixture modules

    model_name, predicted_path = sys.argv[1], sys.argv[2]
    original_path = sys.argv[3] if len(sys.argv) > 3 else f"fixtures/{model_name}.preserve13.onnx"
    module = build_model(model_name)
    by_name, by_value, missing = load_predicted(module, original_path, predicted_path)
    module.eval()
    with torch.no_grad():
        logits = module(torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    print(json.dumps({
        "parameters": sum(1 for _ in module.parameters()),
        "loaded": by_name + by_value, "by_name": by_name, "by_value": by_value,
        "missing": missing, "logits_std": float(logits.std()),
    }))


if __name__ == "__main__":
    main()
