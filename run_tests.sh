#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite (fast, offline; slow tests with -m slow).
#   ./run_tests.sh                # default suite
#   ./run_tests.sh -m slow        # the slow ones; any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
utils/setup_env.sh
. ./path.sh
exec python -m pytest "$@"
