# Sourced by run.sh and every step: the project's Python environment and tools on PATH.
VOXANON_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export VOXANON_ROOT
if [ -f "$VOXANON_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$VOXANON_ROOT/.venv/bin/activate"
fi
export PATH="$VOXANON_ROOT/utils:$VOXANON_ROOT/steps:$PATH"
export PYTHONPATH="$VOXANON_ROOT/pyscripts${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C  # Kaldi files are sorted bytewise
export PYTHONUNBUFFERED=1
# Model cache for stage 0 (conf/models.yaml); override to share one cache between checkouts.
export VOXANON_CACHE="${VOXANON_CACHE:-$VOXANON_ROOT/models}"
