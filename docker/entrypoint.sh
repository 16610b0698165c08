#!/usr/bin/env bash
# The image's entrypoint: `IMAGE px-find ARGS`, pypx 3's `IMAGE --px-find ARGS`, or any command.
set -euo pipefail
VERBS=(px-echo px-find px-report px-move px-listen px-repack px-status px-smdb px-do px-push px-register
       pfstorage PACS_QR.sh)

usage() {
  echo "usage: IMAGE COMMAND [ARGS]   (or pypx 3's IMAGE --COMMAND [ARGS])"
  echo "commands: ${VERBS[*]}; any other program in the image runs as given."
  echo "BASEMOUNT: /pypx (database \$PYPX_DB=${PYPX_DB:-/pypx/log}); mount a host folder there."
}

(($#)) || { usage; exit 0; }
command=$1
shift
case $command in
  -h|--help) usage; exit 0 ;;
  --*)  # pypx 3: --px-find, --pfstorage ...
    name=${command#--}
    for verb in "${VERBS[@]}"; do
      [[ $name == "$verb" ]] && exec "$verb" "$@"
    done
    echo "pypx-entrypoint: unknown command '$command': one of ${VERBS[*]} (with or without --)" >&2
    exit 2 ;;
esac
exec "$command" "$@"
