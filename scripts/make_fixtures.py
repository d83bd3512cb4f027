"""Export ghn's test fixtures with the real PyTorch exporter.

    /usr/bin/python3 scripts/make_fixtures.py [--out fixtures] [--only a,b]

For every model in fixture_models.py and every variant (eval13, preserve13, training13,
preserve17) writes fixtures/<model>.<variant>.onnx, plus fixtures/<model>.state.json and
fixtures/<model>.pt, one external-data export, a Fashion-MNIST idx subset, and
fixtures/manifest.json describing all of it. Deterministic: running it twice gives the same bytes.
"""
from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import io
import json
import math
import os
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import onnx
import torch
from torch.onnx import TrainingMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_models import INPUT_SHAPE, MODEL_NAMES, build_model  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    opset: int
    training: TrainingMode
    note: str


VARIANTS = [
    Variant("eval13", 13, TrainingMode.EVAL, "default eval export: BN after conv folded into the conv"),
    Variant("preserve13", 13, TrainingMode.PRESERVE, "BN kept (inference form); identical initializers merged"),
    Variant("training13", 13, TrainingMode.TRAINING, "training form: 5-output BN, Dropout nodes"),
    Variant("preserve17", 17, TrainingMode.PRESERVE, "opset 17: LayerNormalization as one op"),
]

EXTERNAL_MODEL, EXTERNAL_VARIANT = "resnet_small", "preserve13"
FASHION_SRC = "/usr/share/datasets/fashion-mnist"
FASHION_SUBSET = {"train": 4000, "t10k": 1000}
MAX_FIXTURE_BYTES = 1 << 20
# torch.save'd state dicts are committed only below this size; build_model(name) recreates any of them.
MAX_STATE_DICT_PARAMS = 60_000


def export_batch(variant: Variant) -> int:
    # Training-mode BatchNorm1d needs more than one value per channel; the batch axis is dynamic,
    # so the traced batch size does not show in the file.
    return 2 if variant.training == TrainingMode.TRAINING else 1


def export_onnx(model: torch.nn.Module, variant: Variant) -> bytes:
    # Each export gets its own copy: a TRAINING export runs BN in train mode and would update the
    # running statistics of the shared module.
    model = copy.deepcopy(model)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros((export_batch(variant), *INPUT_SHAPE[1:])),
            buffer,
            opset_version=variant.opset,
            training=variant.training,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    return buffer.getvalue()


def shared_initializer_count(model: onnx.ModelProto) -> int:
    """Initializers the exporter fans out through Identity nodes (its dedup of equal tensors)."""
    inits = {t.name for t in model.graph.initializer}
    return sum(1 for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits)


def describe_onnx(data: bytes, state: Dict[str, Any]) -> Dict[str, Any]:
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    ops = Counter(n.op_type for n in model.graph.node)
    inits = {t.name for t in model.graph.initializer}
    via_identity = {n.output[0] for n in model.graph.node if n.op_type == "Identity" and n.input[0] in inits}
    torch_names = set(state["parameters"]) | set(state["buffers"])
    return {
        # Parameters that keep their PyTorch name (as an initializer or an Identity of a shared one).
        # The rest were folded (BN into conv), transposed (Linear on 3-D input -> MatMul) or
        # reshaped (GroupNorm/PReLU/channels-first LN) into initializers named onnx::<Op>_<n>.
        "paramsByName": sum(1 for k in state["parameters"] if k in inits or k in via_identity),
        "renamedInitializers": sum(1 for t in inits if t not in torch_names),
        "nodes": len(model.graph.node),
        "initializers": len(model.graph.initializer),
        "initializerElements": sum(math.prod(t.dims) for t in model.graph.initializer),
        "sharedInitializers": shared_initializer_count(model),
        "ops": dict(sorted(ops.items())),
    }


def write_if_changed(path: str, data: bytes) -> None:
    """Idempotent writes: unchanged files keep their mtime (and git sees nothing)."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def state_description(model: torch.nn.Module) -> Dict[str, Any]:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "parameters": {k: list(p.shape) for k, p in model.named_parameters()},
        "buffers": {k: list(b.shape) for k, b in model.named_buffers()},
        "input": list(INPUT_SHAPE),
    }


def state_dict_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    # The zip format names storages by index (the legacy one by object id): byte-identical reruns.
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def gzip_bytes(raw: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return out.getvalue()


REFERENCE_IMAGES = 2


def reference_input() -> torch.Tensor:
    """The first test images of Fashion-MNIST, normalized as ghn does: (pixel/255 - 0.2860)/0.3530."""
    with gzip.open(os.path.join(FASHION_SRC, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()[16 : 16 + REFERENCE_IMAGES * 784]
    pixels = torch.tensor(list(raw), dtype=torch.float32).reshape(REFERENCE_IMAGES, 1, 28, 28)
    return (pixels / 255 - 0.2860) / 0.3530


def reference_outputs(model: torch.nn.Module) -> Dict[str, Any]:
    """PyTorch's own eval-mode logits, so ONNX runtimes can be checked against the source model."""
    with torch.no_grad():
        logits = model(reference_input())
    return {"input": f"fashion-mnist t10k images [0, {REFERENCE_IMAGES}), normalized (pixel/255 - 0.2860)/0.3530",
            "logits": [[round(float(v), 6) for v in row] for row in logits]}


def fashion_subset(out_dir: str) -> List[Dict[str, Any]]:
    """First N records of each Debian idx file, same file names, so the same loader reads both."""
    entries = []
    for prefix, count in FASHION_SUBSET.items():
        for kind, header_len, record_len in (("images-idx3-ubyte", 16, 784), ("labels-idx1-ubyte", 8, 1)):
            name = f"{prefix}-{kind}.gz"
            with gzip.open(os.path.join(FASHION_SRC, name), "rb") as f:
                raw = f.read()
            header = bytearray(raw[:header_len])
            header[4:8] = count.to_bytes(4, "big")  # first dimension = record count
            data = bytes(header) + raw[header_len : header_len + count * record_len]
            rel = f"fashion-mnist/{name}"
            write_if_changed(os.path.join(out_dir, rel), gzip_bytes(data))
            entries.append({"file": rel, "kind": "idx", "split": "train" if prefix == "train" else "test", "count": count})
    return entries


def save_external(data: bytes, out_dir: str) -> List[Dict[str, Any]]:
    model = onnx.load_from_string(data)
    rel_dir = "external"
    onnx_name = f"{EXTERNAL_MODEL}.{EXTERNAL_VARIANT}.onnx"
    data_name = f"{EXTERNAL_MODEL}.{EXTERNAL_VARIANT}.data"
    path = os.path.join(out_dir, rel_dir, onnx_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # onnx appends to an existing data file: start from scratch every time.
    for name in (onnx_name, data_name):
        if os.path.exists(os.path.join(out_dir, rel_dir, name)):
            os.remove(os.path.join(out_dir, rel_dir, name))
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data_name, size_threshold=0)
    return [
        {"file": f"{rel_dir}/{onnx_name}", "kind": "onnx", "model": EXTERNAL_MODEL, "variant": EXTERNAL_VARIANT, "opset": 13,
         "input": list(INPUT_SHAPE), "externalData": f"{rel_dir}/{data_name}"},
        {"file": f"{rel_dir}/{data_name}", "kind": "external-data", "model": EXTERNAL_MODEL, "variant": EXTERNAL_VARIANT},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    out_dir = os.path.normpath(args.out)
    names = [n for n in args.only.split(",") if n] or MODEL_NAMES

    entries: List[Dict[str, Any]] = []
    failures: List[Dict[str, str]] = []
    for name in names:
        model = build_model(name)
        state = state_description(model)
        for variant in VARIANTS:
            rel = f"{name}.{variant.name}.onnx"
            try:
                data = export_onnx(model, variant)
            except Exception as e:  # the exporter refuses some layer/mode combinations: record why
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                failures.append({"model": name, "variant": variant.name, "error": reason})
                print(f"  {rel}: export failed: {reason}")
                continue
            assert len(data) < MAX_FIXTURE_BYTES, f"{rel} is {len(data)} bytes"
            write_if_changed(os.path.join(out_dir, rel), data)
            info = describe_onnx(data, state)
            entries.append({"file": rel, "kind": "onnx", "model": name, "variant": variant.name, "opset": variant.opset,
                            "training": variant.training.name, "input": list(INPUT_SHAPE), "exportBatch": export_batch(variant), "torchParams": state["params"],
                            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **info})
            print(f"  {rel}: {len(data)} bytes, {info['nodes']} nodes, {info['initializers']} initializers, "
                  f"{info['sharedInitializers']} shared, ops {' '.join(info['ops'])}")
            if name == EXTERNAL_MODEL and variant.name == EXTERNAL_VARIANT:
                for e in save_external(data, out_dir):
                    entries.append({**e, "torchParams": state["params"]} if e["kind"] == "onnx" else e)
        write_if_changed(os.path.join(out_dir, f"{name}.state.json"), (json.dumps(state, indent=1) + "\n").encode())
        write_if_changed(os.path.join(out_dir, f"{name}.reference.json"), (json.dumps(reference_outputs(model)) + "\n").encode())
        entries.append({"file": f"{name}.reference.json", "kind": "reference", "model": name})
        entries.append({"file": f"{name}.state.json", "kind": "state", "model": name, "torchParams": state["params"]})
        if state["params"] <= MAX_STATE_DICT_PARAMS:
            write_if_changed(os.path.join(out_dir, f"{name}.pt"), state_dict_bytes(model))
            entries.append({"file": f"{name}.pt", "kind": "state-dict", "model": name, "torchParams": state["params"]})
        elif os.path.exists(os.path.join(out_dir, f"{name}.pt")):
            os.remove(os.path.join(out_dir, f"{name}.pt"))

    shared = next((e["sharedInitializers"] for e in entries if e["file"] == f"{EXTERNAL_MODEL}.preserve13.onnx"), None)
    if shared is not None and shared == 0:
        raise SystemExit("expected the exporter to merge identical BN initializers in resnet_small.preserve13")

    entries.extend(fashion_subset(out_dir))
    manifest = {
        "generator": "scripts/make_fixtures.py",
        "torch": torch.__version__.split("a")[0],
        "onnx": onnx.__version__,
        "variants": {v.name: {"opset": v.opset, "training": v.training.name, "note": v.note} for v in VARIANTS},
        "files": entries,
        "exportFailures": failures,
    }
    if args.only:
        print("--only: manifest.json left unchanged")
    else:
        write_if_changed(os.path.join(out_dir, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())
    total = sum(os.path.getsize(os.path.join(out_dir, e["file"])) for e in entries)
    print(f"{len(entries)} fixture files, {total / 1e6:.2f} MB, {len(failures)} export failures")


if __name__ == "__main__":
    main()
