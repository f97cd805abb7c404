#!/usr/bin/env bash
# Anonymize a data dir with the system of a conf.
#
#   steps/anonymize.sh [--nj N] [--cmd CMD] [--allow-pipes false] [--public-seed false] [--overwrite false] \
#       [--record-dir DIR] <conf.yaml> <in-data> <out-data>
#
# Writes <out-data>/wav/<utt>.wav (16 kHz mono) and a complete Kaldi data dir with the same
# utterance ids and every table of <in-data>. Killed and re-run, it finishes only what is missing;
# a changed input file re-does only the utterances whose audio changed.
# Safety: the input is validated before any job starts; <out-data> must be new, empty or written
# by this step (never the input); one run at a time per <out-data> (flock on <out-data>/.lock,
# held by every job too); --overwrite true redoes this step's own outputs only; a conf without
# anonymizer.seed needs --public-seed true. Per-utterance choices (targets, systems) go to the
# owner-only --record-dir (yours, not the input dir, not inside <out-data>), default
# $VOXANON_EXP/anon_records/<out name>-<hash of its full path>, a relative $VOXANON_EXP (default
# exp) taken from the recipe dir, whatever the cwd: keep it private, it can undo the anonymization.
set -euo pipefail
nj=1
cmd=run.pl
allow_pipes=false
public_seed=false
overwrite=false
record_dir=""
help_message="Usage: $0 [--nj N] [--cmd CMD] [--allow-pipes false] [--public-seed false] [--overwrite false] [--record-dir DIR] <conf.yaml> <in-data> <out-data>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"

[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
conf=$1 in=$2 out=$3
case $nj in ''|*[!0-9]*|0*) echo "$0: --nj must be a positive whole number, got '$nj'" >&2; exit 1 ;; esac
for flag in allow_pipes public_seed overwrite; do
  case ${!flag} in true|false) ;; *) echo "$0: --${flag//_/-} must be true or false, got '${!flag}'" >&2; exit 1 ;; esac
done
[ -f "$conf" ] || { echo "$0: conf $conf not found" >&2; exit 1; }
[ -f "$in/wav.scp" ] || { echo "$0: $in is not a data dir (no wav.scp)" >&2; exit 1; }

anon() {  # <step> [options] IN OUT
  local step=$1; shift
  python -m voxanon.bin.anonymize "$step" --conf "$conf" --public-seed "$public_seed" --record-dir "$record_dir" "$@"
}
# Read-only checks first, so a refused output dir (foreign, the input) is left untouched; the
# input is validated under the lock (a second run fails at once, not after reading the audio).
anon check "$in" "$out" || exit 1

mkdir -p "$out"
exec 9>>"$out/.lock"
if ! flock -n 9; then
  echo "$0: $out is being written by another run ($(cat "$out/.lock" 2>/dev/null)); wait for it or stop it" >&2
  exit 1
fi
# fd 9 is inherited by the jobs: the lock holds until the last writer exits, even if this shell is killed.
echo "pid $$ on $(hostname) since $(date '+%F %T'): $0 $*" > "$out/.lock"

anon prepare --allow-pipes "$allow_pipes" --overwrite "$overwrite" "$in" "$out" || exit 1
n=$(wc -l < "$in/utt2spk")
[ "$nj" -le "$n" ] || nj=$n
echo "$0: anonymizing $in ($n utterances) -> $out with $conf, $nj job(s)"
$cmd JOB=1:"$nj" "$out/log/anonymize.JOB.log" \
  python -m voxanon.bin.anonymize job --conf "$conf" --job JOB --nj "$nj" \
    --allow-pipes "$allow_pipes" --record-dir "$record_dir" "$in" "$out" \
  || { echo "$0: some jobs failed; see $out/log/anonymize.*.log (failed utterances in $out/log/failed.*); re-run to retry them" >&2; exit 1; }
anon finalize "$in" "$out"
