# Sourced by the training stages: the job queue and launcher for a torch training module.
#   select_launcher <device> <python module>    sets $cmd, $launcher, $ngpu and $gpu_opt
# device cuda: $cuda_cmd, one process per GPU visible here (torchrun when more than one);
# cuda:N: $cuda_cmd, one GPU; auto: as cuda when this host sees a GPU, else CPU ($train_cmd).
select_launcher() {
  local device=$1 module=$2
  ngpu=0
  cmd=${train_cmd:-run.pl}
  launcher="python -m $module"
  case "$device" in
    cuda|auto) ngpu=$(python -c 'import torch; print(torch.cuda.device_count())')
               [ "$device" = cuda ] && [ "$ngpu" -eq 0 ] && ngpu=1 ;;
    cuda:*) ngpu=1 ;;
  esac
  gpu_opt=""
  if [ "$ngpu" -gt 0 ]; then
    cmd=${cuda_cmd:-$cmd}
    gpu_opt="--gpu $ngpu"
  fi
  if [ "$ngpu" -gt 1 ]; then
    launcher="torchrun --standalone --nproc_per_node $ngpu -m $module"
  fi
}
