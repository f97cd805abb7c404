#!/usr/bin/env bash
# Train a prematched kNN-VC HiFi-GAN vocoder (run.sh stage 4 option, or by hand).
#
#   steps/train_vocoder.sh [--cmd CMD] [--gpus 1] [--steps 2500000] [--batch-size 16] [--k 4] \
#       <data> <featdir> <outdir>
#
# <featdir>/feats.scp: WavLM layer-6 features of <data> (steps/make_wavlm.sh), e.g. LibriSpeech
# train-clean-100. Writes <outdir>/prematch.1.{ark,scp} (once), then trains; <outdir>/g_<step>.pt
# is a generator in the published layout (use it as anonymizer.params.vocoder). Re-run to resume.
# --gpus N > 1 runs torchrun with N processes (DistributedDataParallel).
set -euo pipefail
cmd=run.pl
gpus=1
steps=2500000
batch_size=16
save_every=5000
k=4
device=auto
help_message="Usage: $0 [--cmd CMD] [--gpus 1] [--steps N] [--batch-size 16] [--save-every 5000] [--k 4] <data> <featdir> <outdir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
data=$1 featdir=$2 out=$3
[ -f "$featdir/feats.scp" ] || { echo "$0: $featdir/feats.scp missing; run steps/make_wavlm.sh $data $featdir" >&2; exit 1; }
mkdir -p "$out/log"
if [ ! -f "$out/prematch.1.scp" ]; then
  $cmd "$out/log/prematch.log" python -m voxanon.bin.train_vocoder prematch --k "$k" --device "$device" \
    "$data" "$featdir/feats.scp" "$out"
fi
launcher=(python)
[ "$gpus" -gt 1 ] && launcher=(torchrun --standalone --nproc_per_node "$gpus")
$cmd --gpu "$gpus" "$out/log/train.log" "${launcher[@]}" -m voxanon.bin.train_vocoder train --device "$device" \
  --steps "$steps" --batch-size "$batch_size" --save-every "$save_every" "$data" "$out/prematch.1.scp" "$out"
echo "$0: done; generator checkpoints: $out/g_*.pt"
