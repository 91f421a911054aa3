"""One process of the multi-host test (tests/test_multihost.py): a teacher stage and a
distill stage of one iteration each, in the run directory ``argv[1]``.

Launched either as one of two processes (``DEXDISTILL_MULTIHOST=1``, ``JAX_*`` set by the
test) or as the single-process reference with two local CPU devices.
"""

from __future__ import annotations

import shlex
import sys

from dexdistill.pipelines.cli import main

TEACHER = shlex.split(
    "teacher --preset tiny --ppo.num-envs 8 --ppo.unroll-length 8 "
    "--ppo.num-minibatches 2 --ppo.num-epochs 1 --ppo.num-timesteps 64 "
    "--eval-every 0 --final-eval-episodes 2 --no-timing-breakdown"
)
DISTILL = shlex.split(
    "distill --dagger.iterations 1 --dagger.num-envs 8 "
    "--dagger.unroll-length 8 --dagger.capacity 16 --dagger.fit.num-updates "
    "2 --dagger.fit.batch-size 4 --eval-every 0 --final-eval-episodes 2"
)

if __name__ == "__main__":
    run_dir = sys.argv[1]
    for argv in (TEACHER, DISTILL):
        rc = main([*argv, "--run-dir", run_dir])
        if rc:
            sys.exit(rc)
