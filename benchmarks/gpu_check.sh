#!/usr/bin/env bash
# Every accelerator number from one prepared command (issue 15). See docs/gpu.md.
#
#   benchmarks/gpu_check.sh OUT_DIR [--dry-run] [--no-install]
#
# 1. installs the wheels carried in .whl/ (made by benchmarks/gpu_wheels.sh) into a private
#    folder with `pip --no-index --target`: the machine needs no network;
# 2. prints the device;
# 3. runs benchmarks/gpu_check.py: bench envs (MJX, impl jax/warp), a trifinger_cube
#    teacher, a DAgger stage, each under its own cap, about 8.5 minutes in all
#    (--dry-run: tiny sizes, about a minute on a CPU).
# Results: OUT_DIR/{envs,teacher,distill,summary}.json, summary.md, log.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: benchmarks/gpu_check.sh OUT_DIR [--dry-run] [--no-install]}"
shift
PY="${PYTHON:-python3}"
INSTALL=1
ARGS=()
for a in "$@"; do
  case "$a" in
    --no-install) INSTALL=0 ;;  # use the packages the interpreter already has
    --dry-run) ARGS+=("$a") ;;
    *) echo "gpu_check: unknown option $a (allowed: --dry-run, --no-install)" >&2; exit 2 ;;
  esac
done
if [ "$INSTALL" = 1 ] && compgen -G ".whl/*.whl" > /dev/null; then
  SITE="${DEXDISTILL_SITE:-/tmp/dexdistill_site}"
  t0=$SECONDS
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl || { echo "gpu_check: installing .whl/ failed" >&2; exit 3; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: installed $(ls .whl/*.whl | wc -l) carried wheels in $((SECONDS - t0)) s"
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader
exec "$PY" benchmarks/gpu_check.py "$OUT" "${ARGS[@]}"
