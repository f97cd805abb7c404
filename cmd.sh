# How the recipe's jobs run; sourced by run.sh. One line switches the whole recipe:
#   runner=run.pl     this machine: array jobs in parallel up to --max-jobs-run (default: CPU cores)
#   runner=slurm.pl   a Slurm cluster: one sbatch array per step; options mapped to sbatch by conf/slurm.conf
#                     (Kaldi/ESPnet format; --mem is per CPU)
# or, without editing: VOXANON_RUNNER=slurm.pl ./run.sh ...
# run.pl accepts and ignores --gpu/--mem/..., so the same options serve both.
# GPU stages (WavLM features, converter training, neural anonymizers, ASV training on a GPU conf)
# use $cuda_cmd; CPU stages use $train_cmd (training, anonymization) and $decode_cmd (scoring).
# Try the Slurm path on one machine: sudo utils/local_slurm.sh start (docs/jobs.md).
runner=${VOXANON_RUNNER:-run.pl}
export train_cmd="$runner --mem 4G"
export decode_cmd="$runner --mem 2G"
export cuda_cmd="$runner --gpu 1 --mem 16G"
