# How jobs run. Local machine (default): utils/run.pl runs array jobs in parallel.
# On a Slurm cluster, switch the three lines to utils/slurm.pl (options map through conf/slurm.conf):
#   export train_cmd="slurm.pl --mem 8G"
#   export decode_cmd="slurm.pl --mem 4G"
#   export cuda_cmd="slurm.pl --gpu 1 --mem 32G"
# GPU stages (features, converter training, anonymization with neural systems, ASV training)
# use $cuda_cmd; CPU stages use $train_cmd / $decode_cmd.
export train_cmd="run.pl"
export decode_cmd="run.pl"
export cuda_cmd="run.pl"
