#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by scripts after they set their defaults:
#   nj=4; cmd=run.pl
#   . utils/parse_options.sh
# turns "--nj 8 --cmd slurm.pl" into nj=8 cmd=slurm.pl. Only variables that already exist can be
# set (a typo fails with the option's name); "--help" prints the caller's $help_message.
# The remaining positional arguments are left in "$@".

while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-No help for $0}" 1>&2
      exit 0 ;;
    --*=*)
      echo "$0: use '--opt value', not '--opt=value': $1" 1>&2
      exit 1 ;;
    --*)
      __name=$(echo "${1#--}" | sed 's/-/_/g')
      if ! declare -p "$__name" >/dev/null 2>&1; then
        echo "$0: unknown option $1" 1>&2
        [ -n "${help_message:-}" ] && printf '%s\n' "$help_message" 1>&2
        exit 1
      fi
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" 1>&2
        exit 1
      fi
      __old=$(eval echo "\$$__name")
      if [ "$__old" = true ] || [ "$__old" = false ]; then
        case "$2" in
          true|false) ;;
          *) echo "$0: option $1 takes true or false, got '$2'" 1>&2; exit 1 ;;
        esac
      fi
      printf -v "$__name" '%s' "$2"
      shift 2 ;;
    *) break ;;
  esac
done
unset __name __old
true
