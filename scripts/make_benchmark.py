"""Export the accuracy benchmark's architectures (benchmark_models.py) with the real PyTorch exporter.

    /usr/bin/python3 scripts/make_benchmark.py [--out fixtures/benchmark] [--models a,b] [--no-check]

Per model, two files, both opset 13 with input `input` [batch, 1, 28, 28] (batch dynamic) and output
`logits` [batch, 10]:
  <name>.preserve13.onnx  TrainingMode.PRESERVE of the eval-mode module: BatchNorm nodes kept on
                          their running statistics, PyTorch's parameter names kept;
  <name>.eval13.onnx      the default export (TrainingMode.EVAL): BatchNorm folded into the convs.
and DIR/index.json (name, family, description, parameter count, files, what `ghn inspect` found).
The weights are PyTorch's default initialization: the benchmark's default-init baseline.

Deterministic and idempotent: unchanged files are not rewritten. Each export is checked with
`npx ghn inspect --json` (it must exit 0 with nothing unsupported) unless --no-check.
The output directory is git-ignored: these architectures must never reach meta-training.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import warnings
from typing import Any, Dict, List

import onnx
import torch
from torch.onnx import TrainingMode

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
from benchmark_models import INPUT_SHAPE, MODEL_NAMES, MODELS_BY_NAME, build_model, parameter_count  # noqa: E402

OPSET = 13
VARIANTS = {"preserve13": TrainingMode.PRESERVE, "eval13": TrainingMode.EVAL}


def export_onnx(model: torch.nn.Module, training: TrainingMode) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic; the graph is checked below
        torch.onnx.export(
            model,
            torch.zeros(INPUT_SHAPE),
            buffer,
            opset_version=OPSET,
            training=training,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def write_if_changed(path: str, data: bytes) -> bool:
    """Idempotent writes: an unchanged file keeps its bytes and mtime. Returns whether it was written."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return True


def ghn_inspect(path: str) -> Dict[str, Any]:
    """What ghn's importer sees in the file; raises unless it exits 0 with nothing unsupported."""
    result = subprocess.run(["npx", "--no-install", "ghn", "inspect", path, "--json"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"ghn inspect {path} exited {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(result.stdout)
    if summary["unsupported"]:
        raise SystemExit(f"ghn inspect {path}: unsupported {summary['unsupported']}")
    return {"ops": summary["ops"], "params": summary["params"]["elements"], "tensors": summary["params"]["tensors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "fixtures", "benchmark"))
    parser.add_argument("--models", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--no-check", action="store_true", help="skip the `ghn inspect` check of every export")
    args = parser.parse_args()
    out_dir = os.path.normpath(args.out)
    names = [n for n in args.models.split(",") if n] or MODEL_NAMES
    unknown = [n for n in names if n not in MODELS_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_NAMES)}")

    index_path = os.path.join(out_dir, "index.json")
    # --models refreshes those entries and keeps the others.
    previous: Dict[str, Any] = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            previous = {m["name"]: m for m in json.load(f)["models"]}

    entries: Dict[str, Any] = dict(previous)
    for name in names:
        spec = MODELS_BY_NAME[name]
        model = build_model(name)
        files: Dict[str, Any] = {}
        for variant, training in VARIANTS.items():
            rel = f"{name}.{variant}.onnx"
            data = export_onnx(model, training)
            written = write_if_changed(os.path.join(out_dir, rel), data)
            files[variant] = {"file": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            earlier = previous.get(name, {}).get("files", {}).get(variant, {})
            if not args.no_check:
                files[variant]["ghn"] = ghn_inspect(os.path.join(out_dir, rel))
            elif earlier.get("sha256") == files[variant]["sha256"] and "ghn" in earlier:
                files[variant]["ghn"] = earlier["ghn"]  # the same bytes were inspected before
            print(f"  {rel}: {len(data):,} bytes{' (written)' if written else ' (unchanged)'}", flush=True)
        entries[name] = {"name": name, "family": spec.family, "description": spec.description,
                         "params": parameter_count(model), "files": files}

    index = {
        "generator": "scripts/make_benchmark.py",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": OPSET,
        "input": list(INPUT_SHAPE),
        "models": [entries[n] for n in MODEL_NAMES if n in entries],
    }
    write_if_changed(index_path, (json.dumps(index, indent=1) + "\n").encode())
    print(f"{len(names)} models exported to {out_dir}; index lists {len(index['models'])}")


if __name__ == "__main__":
    main()
