#!/usr/bin/env bash
# Downloads, on a machine that reaches the package registries, exactly the wheels
# benchmarks/gpu_check.sh needs on a bare accelerator machine that has JAX + CUDA, flax,
# optax and orbax but none of these (Python 3.12, x86-64), into the ignored folder .whl/.
# The total must stay under 64 MiB (the device tool's carry limit); the script checks.
#
#   benchmarks/gpu_wheels.sh [PYTHON_VERSION]      # default 3.12
#
# Not carried: warp-lang (impl=warp). Its wheel is about 150 MB; the check measures
# impl=warp only where warp is already installed, and says so otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${1:-3.12}"
PY="${PYTHON:-python3}"
mkdir -p .whl
grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
# mujoco's own dependencies glfw and mujoco-studio are not needed headless and
# are left out (installed with --no-deps); mjx needs trimesh; the CLI needs tyro.
WHEELS=(
  mujoco==4.0.0 mujoco-core==4.0.0 mujoco-mjx==3.17.0 trimesh==5.2.0 pyopengl==3.1.10
  tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1
)
platforms=()
for p in manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_27_x86_64 \
  manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
  --implementation cp "${platforms[@]}" -d .whl "${WHEELS[@]}"
ls -la .whl
total=$(du -cb .whl/*.whl | tail -1 | cut -f1)
echo "gpu_wheels: $(ls .whl/*.whl | wc -l) wheels, $((total / 1048576)) MiB"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "gpu_wheels: over the 64 MiB carry limit" >&2
  exit 1
fi
