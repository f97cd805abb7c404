#!/usr/bin/env bash
# Anonymize a data dir with the system of a conf.
#
#   steps/anonymize.sh [--nj N] [--cmd CMD] [--allow-pipes false] [--overwrite false] [--record-dir DIR] \
#       <conf.yaml> <in-data> <out-data>
#
# Writes <out-data>/wav/<utt>.wav (16 kHz mono) and a complete Kaldi data dir with the same
# utterance ids and every table of <in-data>. Killed and re-run, it finishes only what is missing.
# Per-utterance choices (targets, systems) go to the owner-only --record-dir, default
# exp/anon_records/<out name>: keep it private, it can undo the anonymization.
set -euo pipefail
nj=1
cmd=run.pl
allow_pipes=false
overwrite=false
record_dir=""
help_message="Usage: $0 [--nj N] [--cmd CMD] [--allow-pipes false] [--overwrite false] [--record-dir DIR] <conf.yaml> <in-data> <out-data>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"

[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
conf=$1 in=$2 out=$3
[ -f "$conf" ] || { echo "$0: conf $conf not found" >&2; exit 1; }
[ -f "$in/wav.scp" ] || { echo "$0: $in is not a data dir (no wav.scp)" >&2; exit 1; }
record_dir=${record_dir:-exp/anon_records/$(basename "$out")}
mkdir -p "$out/log"

n=$(wc -l < "$in/utt2spk")
[ "$nj" -le "$n" ] || nj=$n
echo "$0: anonymizing $in ($n utterances) -> $out with $conf, $nj job(s)"
python -m voxanon.bin.anonymize --conf "$conf" --prepare --overwrite "$overwrite" \
  --record-dir "$record_dir" "$in" "$out"
$cmd JOB=1:"$nj" "$out/log/anonymize.JOB.log" \
  python -m voxanon.bin.anonymize --conf "$conf" --job JOB --nj "$nj" \
    --allow-pipes "$allow_pipes" --record-dir "$record_dir" "$in" "$out" \
  || { echo "$0: some jobs failed; failed utterances are listed in $out/log/failed.*; re-run to retry them" >&2; exit 1; }
python -m voxanon.bin.anonymize --conf "$conf" --finalize "$in" "$out"
