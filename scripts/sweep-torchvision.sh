#!/usr/bin/env bash
# Issue-5 acceptance over every torchvision classification model, one export at a time so the
# disk never holds more than one model's exports (all of them at once take ~63 GB): export the model
# in one variant (scripts/export_torchvision.py), check `predict` on it
# (scripts/predict-torchvision.ts), delete the export, keep index.json, state.json and the result.
# Variants are swept breadth first (every model in eval13, then preserve17, then preserve13), so a
# partial sweep already covers every model.
#
#   bash scripts/sweep-torchvision.sh [work-dir] [model ...]
#
# work-dir defaults to /tmp/ghn-torchvision; results go to <work-dir>/results/<model>.<variant>.json
# and the merged table to <work-dir>/summary.json. An export whose result file exists is skipped,
# so an interrupted sweep resumes where it stopped. Runs at low priority (nice 19).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/ghn-torchvision}
shift || true
mkdir -p "$work/exports" "$work/results"
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  mapfile -t models < <(/usr/bin/python3 -c 'import torchvision.models as m; print("\n".join(sorted(m.list_models(module=m))))')
fi
# Every (model, variant) pair in sweep order: breadth first over variants, the four giants
# (300–650 M parameters) after every other model's three variants, breadth first among themselves.
giants=" regnet_y_128gf vit_h_14 vit_l_16 vit_l_32 "
variants=(eval13 preserve17 preserve13)
pairs=()
for variant in "${variants[@]}"; do
  for model in "${models[@]}"; do [[ $giants == *" $model "* ]] || pairs+=("$model $variant"); done
done
for variant in "${variants[@]}"; do
  for model in "${models[@]}"; do [[ $giants == *" $model "* ]] && pairs+=("$model $variant"); done
done
for pair in "${pairs[@]}"; do
  read -r model variant <<<"$pair"
  result="$work/results/$model.$variant.json"
  [ -s "$result" ] && continue
  echo "== $model.$variant $(date -u +%H:%M:%S)"
  nice -n 19 /usr/bin/python3 scripts/export_torchvision.py --models "$model" --variants "$variant" --out "$work/exports" --force
  # A failed check is recorded in the result; only a missing result (the checker itself died) stops here.
  nice -n 19 npx tsx scripts/predict-torchvision.ts --dir "$work/exports" --models "$model" --variants "$variant" \
    --timeout 3600 --json "$result.tmp" || true
  mv "$result.tmp" "$result"
  rm -f "$work/exports/$model.$variant".onnx "$work/exports/$model.$variant".data
done
/usr/bin/python3 - "$work" <<'EOF'
import json, os, sys
work = sys.argv[1]
index = json.load(open(os.path.join(work, "exports", "index.json")))["exports"]
results = {}
for f in sorted(os.listdir(os.path.join(work, "results"))):
    if f.endswith(".json"):
        summary = json.load(open(os.path.join(work, "results", f)))
        for r in summary["results"]:
            results[r["file"].split("/")[-1]] = r
exported = [e for e in index if e["status"] == "ok"]
failed_exports = [e for e in index if e["status"] != "ok"]
checked = [results.get(e["file"]) for e in exported]
missing = [e["file"] for e, r in zip(exported, checked) if r is None]
bad = [r for r in checked if r is not None and not r["ok"]]
out = {"exports": len(exported), "checked": len(exported) - len(missing), "passed": sum(1 for r in checked if r and r["ok"]),
       "failedChecks": bad, "notChecked": missing, "exportFailures": failed_exports}
json.dump(out, open(os.path.join(work, "summary.json"), "w"), indent=1)
print(f"{out['exports']} exports, {out['checked']} checked, {out['passed']} passed; "
      f"{len(bad)} failed checks, {len(missing)} not checked, {len(failed_exports)} exports not made")
EOF
