#!/usr/bin/env bash
# One-shot GPU check, at most 8 minutes: see bench/gpu_check.py. Run from the repository root
# after `. ./path.sh` on a machine with a CUDA device; writes bench/results/gpu_<device>.md/.json.
# Without CUDA it runs tiny models on the CPU into a temporary dir (tests/test_gpu_check.py).
here=$(cd "$(dirname "$0")" && pwd)
exec timeout --kill-after=10 480 python "$here/gpu_check.py" "$@"
