"""Export torchvision classification models (random init) to ONNX with the real PyTorch exporter.

    /usr/bin/python3 scripts/export_torchvision.py [--models a,b | --all] \
        [--variants eval13,preserve13,preserve17] [--out fixtures/large] [--force] [--max-params N]

Writes <out>/<model>.<variant>.onnx (plus <model>.<variant>.data when the model is over ONNX's
2 GB protobuf limit), <out>/<model>.state.json ({params, parameters, buffers, input}) and keeps
<out>/index.json up to date with one record per (model, variant): ok / failed (with the
exporter's error) / skipped. Each model is exported in its own child process so a crash or an
out-of-memory kill in the exporter becomes a recorded failure, not the end of the run.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, List

VARIANTS = {  # name -> (opset, TrainingMode member name, constant folding)
    "eval13": (13, "EVAL", True),
    "preserve13": (13, "PRESERVE", True),
    "training13": (13, "TRAINING", True),
    "preserve17": (17, "PRESERVE", True),
    # Constant folding replaces Gather(parameter, constant index) by its result: Swin's and MaxViT's
    # relative position bias tables then become [1, heads, N, N] biases. These keep the tables.
    "eval13nofold": (13, "EVAL", False),
    "preserve13nofold": (13, "PRESERVE", False),
}
DEFAULT_VARIANTS = "eval13,preserve13,preserve17"
PROTOBUF_LIMIT = 2 * 1024**3


def all_models() -> List[str]:
    import torchvision.models as models

    return sorted(models.list_models(module=models))


def input_size(name: str, model: Any) -> int:
    """The resolution the model is meant for: ViTs/MaxViT fix it in the module; otherwise the crop
    size of the default pretrained weights (299 for inception_v3, 240..600 for EfficientNets)."""
    import torchvision.models as models

    if hasattr(model, "image_size"):
        return int(model.image_size)
    weights = models.get_model_weights(name).DEFAULT
    return int(weights.transforms().crop_size[0])


def state_description(model: Any, shape: List[int]) -> Dict[str, Any]:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "parameters": {k: list(p.shape) for k, p in model.named_parameters()},
        "buffers": {k: list(b.shape) for k, b in model.named_buffers()},
        "input": shape,
    }


def export_one(model: Any, shape: List[int], variant: str, dest: str) -> None:
    """Export into a scratch directory first: for >2 GB models torch writes one external file per
    tensor; those are then gathered into a single <dest minus .onnx>.data file."""
    import onnx
    import torch

    opset, mode, fold = VARIANTS[variant]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(dest)) as tmp:
        tmp_path = os.path.join(tmp, "model.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                copy.deepcopy(model) if mode == "TRAINING" else model,
                torch.zeros(shape),
                tmp_path,
                opset_version=opset,
                training=getattr(torch.onnx.TrainingMode, mode),
                do_constant_folding=fold,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
        if os.listdir(tmp) == ["model.onnx"]:
            shutil.move(tmp_path, dest)
            return
        data_name = os.path.basename(dest)[: -len(".onnx")] + ".data"
        proto = onnx.load(tmp_path)  # pulls the per-tensor files in
        onnx.save_model(proto, dest, save_as_external_data=True, all_tensors_to_one_file=True, location=data_name, size_threshold=1024)


def worker(name: str, variants: List[str], out: str, force: bool, max_params: float) -> List[Dict[str, Any]]:
    """Runs in the child: build one model, write its state and every requested variant."""
    import torch
    import torchvision.models as models

    torch.manual_seed(0)
    torch.set_num_threads(1)  # background job on a shared 2-core machine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = models.get_model(name, weights=None)
    model.eval()
    size = input_size(name, model)
    shape = [1, 3, size, size]
    state = state_description(model, shape)
    with open(os.path.join(out, f"{name}.state.json"), "w") as f:
        json.dump(state, f, indent=1)
        f.write("\n")
    records = []
    for variant in variants:
        dest = os.path.join(out, f"{name}.{variant}.onnx")
        record: Dict[str, Any] = {"model": name, "variant": variant, "file": os.path.basename(dest), "input": shape, "torchParams": state["params"]}
        if os.path.exists(dest) and not force:
            records.append({**record, "status": "ok", "skipped": True, "bytes": os.path.getsize(dest)})
            continue
        if state["params"] > max_params:
            records.append({**record, "status": "skipped", "reason": f"over --max-params {max_params:g}"})
            continue
        start = time.time()
        try:
            export_one(model, shape, variant, dest)
            data = dest[: -len(".onnx")] + ".data"
            record.update(status="ok", bytes=os.path.getsize(dest), seconds=round(time.time() - start, 1))
            if os.path.exists(data):
                record["externalData"] = os.path.basename(data)
                record["dataBytes"] = os.path.getsize(data)
        except Exception as e:  # exporter refusal: record it and carry on with the next variant
            message = str(e).strip().splitlines()
            record.update(status="failed", error=f"{type(e).__name__}: {message[0] if message else ''}"[:500], seconds=round(time.time() - start, 1))
        records.append(record)
    return records


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def link_identical_variants(out: str, records: List[Dict[str, Any]]) -> None:
    """Variants that came out byte-identical (e.g. eval13 and preserve13 of a net without BN) become
    hard links of one file: the full torchvision set would otherwise need ~70 GB."""
    first_by_digest: Dict[str, str] = {}
    for r in records:
        if r["status"] != "ok" or "externalData" in r:
            continue
        path = os.path.join(out, r["file"])
        candidates = [f for f in first_by_digest.values() if os.path.getsize(os.path.join(out, f)) == os.path.getsize(path)]
        if not candidates:
            first_by_digest[file_digest(path)] = r["file"]
            continue
        digest = file_digest(path)
        if digest in first_by_digest:
            original = os.path.join(out, first_by_digest[digest])
            if not os.path.samefile(original, path):
                os.remove(path)
                os.link(original, path)
            r["sameAs"] = first_by_digest[digest]
        else:
            first_by_digest[digest] = r["file"]


def load_index(out: str) -> Dict[str, Dict[str, Any]]:
    path = os.path.join(out, "index.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {f"{r['model']}.{r['variant']}": r for r in json.load(f)["exports"]}


def save_index(out: str, index: Dict[str, Dict[str, Any]]) -> None:
    path = os.path.join(out, "index.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"generator": "scripts/export_torchvision.py", "exports": [index[k] for k in sorted(index)]}, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


# Over 300M parameters: slow, several GB of RAM, need external data. Exported last.
GIANTS = {"regnet_y_128gf", "vit_h_14", "vit_l_16", "vit_l_32"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--models", help="comma-separated torchvision model names")
    group.add_argument("--all", action="store_true", help="every classification model in torchvision.models")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "large"))
    parser.add_argument("--force", action="store_true", help="re-export files that already exist")
    parser.add_argument("--max-params", type=float, default=float("inf"), help="skip models with more parameters")
    parser.add_argument("--min-free-gb", type=float, default=20, help="stop exporting when the disk has less free space")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: export one model in this process
    args = parser.parse_args()

    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")

    if args.worker:
        print(json.dumps(worker(args.worker, variants, out, args.force, args.max_params)))
        return

    if not args.all and not args.models:
        parser.error("give --models a,b or --all")
    known = all_models()
    names = known if args.all else [m for m in args.models.split(",") if m]
    missing = [m for m in names if m not in known]
    if missing:
        parser.error(f"not a torchvision {'.'.join(map(str, __import__('torchvision').__version__.split('.')[:2]))} model: {', '.join(missing)}")
    names = sorted(names, key=lambda m: m in GIANTS)  # stable: useful results early, giants last

    index = load_index(out)
    failures: List[str] = []
    for i, name in enumerate(names, 1):
        prefix = f"[{i}/{len(names)}] {name}"
        free_gb = shutil.disk_usage(out).free / 1024**3
        if free_gb < args.min_free_gb:
            print(f"{prefix}: skipped, only {free_gb:.0f} GB free (--min-free-gb {args.min_free_gb:g})", flush=True)
            for v in variants:
                index.setdefault(f"{name}.{v}", {"model": name, "variant": v, "status": "skipped", "reason": "low disk space"})
            continue
        start = time.time()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--variants", ",".join(variants), "--out", out,
               "--max-params", str(args.max_params)]
        if args.force:
            cmd.append("--force")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        try:
            records = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            records = [{"model": name, "variant": v, "status": "failed", "error": f"exporter process died (code {proc.returncode}): {tail}"[:500]} for v in variants]
        link_identical_variants(out, records)
        for r in records:
            index[f"{r['model']}.{r['variant']}"] = r
            if r["status"] == "failed":
                failures.append(f"{r['model']}.{r['variant']}: {r['error']}")
        save_index(out, index)
        params = f"{records[0]['torchParams'] / 1e6:.1f}M params, " if "torchParams" in records[0] else ""
        summary = ", ".join(f"{r['variant']} {'exists' if r.get('skipped') else r['status']}"
                            + (f" {r['bytes'] / 1e6:.1f}MB" if r["status"] == "ok" else "")
                            + (f" (= {r['sameAs'].split('.')[1]})" if "sameAs" in r else "") for r in records)
        print(f"{prefix}: {params}{summary} ({time.time() - start:.0f}s)", flush=True)
    print(f"done: {len(names)} models, {len(failures)} failed exports")
    for f in failures:
        print(f"  FAILED {f}")


if __name__ == "__main__":
    main()
