#!/usr/bin/env bash
# WavLM layer features of a data dir, sharded over jobs, resumable.
#
#   steps/make_wavlm.sh [--nj N] [--cmd CMD] [--layer 6] [--checkpoint wavlm-large] [--device auto] \
#       [--chunk-seconds 30] [--context-seconds 4] [--batch-seconds 120] [--dtype float32] \
#       [--vad-trigger-level 0] [--overwrite false] <data> <featdir>
#
# Writes <featdir>/feats.scp (kaldiio-readable; one (frames, 1024) matrix per utterance, 20 ms
# frames, float32 or --dtype float16) and utt2num_frames from shards <featdir>/wavlm.JOB.{ark,scp}.
# --vad-trigger-level L > 0 trims leading/trailing silence off the audio first (sox's VAD, as the
# kNN-VC reference does for its matching sets). --checkpoint is a registry name
# (conf/models.yaml) or a local file: the original WavLM-Large.pt or a torchaudio WavLM state dict.
# Killed and re-run, only unfinished shards are redone; shards of another --nj or of another
# utt2spk / wav.scp / segments are removed first, and --overwrite true redoes them all. Long
# recordings are processed in overlapping chunks (--chunk-seconds with --context-seconds each
# side), so memory stays bounded.
set -euo pipefail
nj=1
cmd=run.pl
layer=6
checkpoint=wavlm-large
device=auto
chunk_seconds=30
context_seconds=4
batch_seconds=120
dtype=float32
vad_trigger_level=0
allow_pipes=false
overwrite=false
help_message="Usage: $0 [--nj N] [--cmd CMD] [--layer 6] [--checkpoint wavlm-large] [--device auto] <data> <featdir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"

[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
data=$1 featdir=$2
[ -f "$data/wav.scp" ] || { echo "$0: $data is not a data dir (no wav.scp)" >&2; exit 1; }
mkdir -p "$featdir/log"
n=$(wc -l < "$data/utt2spk")
[ "$nj" -le "$n" ] || nj=$n
# The shards hold a split of these utterances: reused only for the same split of the same entries.
entries=("$data/utt2spk" "$data/wav.scp")
[ ! -f "$data/segments" ] || entries+=("$data/segments")
split="nj=$nj $(cat "${entries[@]}" | sha256sum | cut -d' ' -f1)"
if [ "$overwrite" = true ] || [ "$(cat "$featdir/.split" 2>/dev/null)" != "$split" ]; then
  rm -f "$featdir"/wavlm.*.ark "$featdir"/wavlm.*.scp "$featdir"/utt2num_frames* "$featdir/feats.scp" \
    "$featdir"/log/failed.*
fi
echo "$split" > "$featdir/.split"
echo "$0: WavLM layer $layer of $data ($n utterances) -> $featdir, $nj job(s), checkpoint $checkpoint"
$cmd JOB=1:"$nj" "$featdir/log/make_wavlm.JOB.log" \
  python -m voxanon.bin.make_wavlm --job JOB --nj "$nj" --checkpoint "$checkpoint" --layer "$layer" \
    --device "$device" --chunk-seconds "$chunk_seconds" --context-seconds "$context_seconds" \
    --batch-seconds "$batch_seconds" --dtype "$dtype" --vad-trigger-level "$vad_trigger_level" \
    --allow-pipes "$allow_pipes" --overwrite "$overwrite" "$data" "$featdir" \
  || { echo "$0: some jobs failed; see $featdir/log/make_wavlm.*.log and $featdir/log/failed.*; re-run to retry" >&2; exit 1; }
python -m voxanon.bin.make_wavlm --finalize --nj "$nj" "$data" "$featdir"
