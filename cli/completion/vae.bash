# bash completion for vae (installed as share/bash-completion/completions/vae).
# The commands and each command's options are read from the program's own --help, so the
# completion cannot fall behind the program.
_vae() {
  local cur prev cmd
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    local cmds
    cmds=$(vae --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
    COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
    return
  fi
  cmd="${COMP_WORDS[1]}"
  case "$prev" in
    --config|--out|--db|-o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    local opts
    opts=$(vae "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  # A command with actions (vae sweep run|slurm|list ...) lists them under "actions:".
  if [ "$COMP_CWORD" -eq 2 ]; then
    local actions
    actions=$(vae "$cmd" --help 2>/dev/null | sed -n '/^actions:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
    [ -n "$actions" ] && { COMPREPLY=($(compgen -W "$actions" -- "$cur")); return; }
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _vae vae
