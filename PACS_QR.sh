#!/usr/bin/env bash
# PACS_QR.sh: query, retrieve and push from the shell (by hand or from cron) through pypx's verbs,
# with each site's PACS, BASEMOUNT, storage and CUBE settings kept in one block of institution_set.
# The "<px-find flags>" string is split into words by shell quoting rules (no expansion, no eval) and
# given to the verb as an argument list. `PACS_QR.sh -x` prints the full help.
set -euo pipefail

PROG=PACS_QR.sh
DEFAULT_INSTITUTION=${PYPX_INSTITUTION:-sandbox}

synopsis() {
  cat <<EOF
usage: $PROG [-I INSTITUTION] [--do ACTION] [--aec AE] [--aet AE] [--serverIP HOST] [--serverPort PORT]
             [--aet_listener AE] [--listenerPort PORT] [--basemount DIR] [--storage KEY] [--cube KEY]
             [--report FORMAT] [-v N] [-x] [-h] -- "<px-find flags>"

  ACTION is find (default), retrieve, status, report, push, register or echo; FORMAT is tabular
  (default), rawText, csv or json. Example:
    $PROG -I sandbox --do retrieve -- "--PatientID PX042-00001 --StudyDate 20150101-20191231"
  -x prints the full help (institutions, how to add one, storage and CUBE keys, exit codes).
EOF
}

help_text() {
  synopsis
  cat <<EOF

DESCRIPTION
  A shell front end over pypx's verbs. The settings of the chosen institution (see below) give the PACS,
  our AE titles, the BASEMOUNT (database in BASEMOUNT/log, images in BASEMOUNT/data) and the storage and
  CUBE keys; options override them. The words after -- are px-find's query flags (and any other flag of
  the verb that runs), e.g. "--PatientName 'O BRIEN*' --Modality MR". They are split by shell quoting
  rules without expansion: \$(...), * and ; are just text. Several words after -- are passed as they are.

ACTIONS (--do)
  find      px-find   FLAGS                       a table of studies and series (add --json for JSON)
  report    px-find   FLAGS --json | px-report --printReport FORMAT
  retrieve  px-move   FLAGS                       C-MOVE (or "--method get") into BASEMOUNT/data
  status    px-status FLAGS                       expected vs received; exit 0 unless something is missing
  push      px-push   --storage KEY FLAGS         upload retrieved series to ChRIS storage
  register  px-register --CUBE KEY FLAGS          register pushed series with ChRIS CUBE
  echo      px-echo                               is the PACS there
  Every action gets the institution's PACS flags and --db BASEMOUNT/log.

OPTIONS
  -I, --institution NAME   one of: $(institutions) (default $DEFAULT_INSTITUTION, or \$PYPX_INSTITUTION)
  --do ACTION              see above
  --aec AE --aet AE --serverIP HOST --serverPort PORT --aet_listener AE --listenerPort PORT
                           override the institution's PACS settings
  --basemount DIR          override its BASEMOUNT
  --storage KEY, --cube KEY
                           override its storage.json / cube.json keys (push, register)
  --report FORMAT          the report's format: tabular, rawText, csv, json
  -Q "<px-find flags>"     the same as -- "<px-find flags>" (pypx 3)
  -v N                     1: echo each command before it runs (to stderr); 2: also verbose verbs
  -x                       this help;  -h, --help: the short usage

INSTITUTIONS
  Each is one block in the function institution_set of this script: AE titles, PACS host and port, our
  listener AE and port (the C-MOVE destination the PACS must know), BASEMOUNT, and the keys of the
  storage and CUBE entries in BASEMOUNT/services/. "sandbox" works with px-sandbox out of the box:
      export PYPX_DB=/tmp/pypx/log; px-sandbox up --seed
      $PROG -- "--PatientID PX042-00001"
  To add a site, copy the "example" block, give it your site's name and values, and run
  $PROG -I NAME --do echo. PACS settings may also live in BASEMOUNT/services/pacs.json (set PACS=KEY in
  the block), written with: px-smdb --db BASEMOUNT/log service set pacs KEY aet=.. aec=.. serverIP=..
  serverPort=.. aet_listener=.. listenerPort=..

STORAGE AND CUBE KEYS
  push and register name entries of BASEMOUNT/services/storage.json and cube.json (mode 0600, secrets
  never printed). Set them once with px-smdb, e.g.:
      px-smdb --db BASEMOUNT/log service set storage KEY storagetype=swift ip=HOST port=8080 \\
              login=chris:chris1234 key=SECRET container=users
      px-smdb --db BASEMOUNT/log service set storage KEY storagetype=fs storepath=/data/chris
      px-smdb --db BASEMOUNT/log service set cube KEY url=http://HOST:8000/api/v1/ username=chris \\
              password=SECRET
  (px-smdb service set ... --json '{...}' keeps secrets out of the shell history), then put
  STORAGE=KEY and CUBE=KEY in the institution's block, or give --storage KEY / --cube KEY.

EXIT CODES
  The verb's: 0 ok, 2 bad flags or input, 3 unreachable, 4 rejected, 5 PACS failure, 6 partial,
  7 local files or tools, 8 incomplete (status), 130 interrupted. With report, px-find's code when it
  failed, else px-report's. $PROG's own errors (bad options, unknown institution) exit 2.
EOF
}

# institution_set NAME: the settings of one site. Returns 1 for an unknown name.
# PACS is a key of BASEMOUNT/services/pacs.json; AET..LISTENER_PORT, when set, are given as flags
# (which override that entry). Empty values are not passed.
institution_set() {
  PACS="" AET="" AEC="" SERVER_IP="" SERVER_PORT="" AET_LISTENER="" LISTENER_PORT=""
  BASEMOUNT="" STORAGE="" CUBE=""
  case $1 in
    sandbox)
      # px-sandbox up writes the pacs.json entry "sandbox" (free loopback ports) into this BASEMOUNT
      PACS=sandbox
      if [[ -n ${PYPX_DB:-} ]]; then BASEMOUNT=$(dirname -- "$PYPX_DB"); else BASEMOUNT=/tmp/pypx; fi
      STORAGE=sandbox          # px-smdb service set storage sandbox storagetype=fs storepath=/tmp/pypx/chris
      CUBE=sandbox
      ;;
    example)
      # a template for a site: copy this block, rename it, fill in the values
      AET=MYLAB                # our AE title, as the PACS knows it
      AEC=PACS                 # the PACS's AE title
      SERVER_IP=10.0.0.10
      SERVER_PORT=104
      AET_LISTENER=MYLAB       # the C-MOVE destination registered on the PACS
      LISTENER_PORT=10402      # where px-listen (or px-move's own receiver) listens
      BASEMOUNT=/var/lib/pypx
      STORAGE=chris            # entry of BASEMOUNT/services/storage.json
      CUBE=chris               # entry of BASEMOUNT/services/cube.json
      ;;
    *) return 1 ;;
  esac
}

institutions() {  # the names of institution_set's blocks (its case labels), for the messages
  declare -f institution_set | sed -n 's/^ *\([A-Za-z0-9_.-]*\))$/\1/p' | paste -sd ' '
}

die() {  # die CODE MESSAGE
  echo "$PROG: $2" >&2
  exit "$1"
}

need_value() {  # need_value OPTION ARGC
  (($2 >= 2)) || die 2 "$1 needs a value: see $PROG -h"
}

# split_words TEXT: TEXT's words by POSIX shell quoting rules, NUL-terminated, with no expansion.
split_words() {
  python3 -c '
import shlex, sys
try:
    words = shlex.split(sys.argv[1])
except ValueError as err:
    print(f"PACS_QR.sh: cannot split the px-find flags ({err}): check their quotes", file=sys.stderr)
    sys.exit(2)
sys.stdout.write("".join(word + "\0" for word in words))
' "$1"
}

show() {  # show WORD...: the command line, quoted so it could be pasted into a shell
  ((VERBOSITY >= 1)) || return 0
  local line
  printf -v line '%q ' "$@"
  echo "+ ${line% }" >&2
}

main() {
  local institution=$DEFAULT_INSTITUTION action=find report_format=tabular
  local -A override=()
  local query=() have_query=0
  VERBOSITY=0
  while (($#)); do
    case $1 in
      -I|--institution) need_value "$1" $#; institution=$2; shift 2 ;;
      --do) need_value "$1" $#; action=$2; shift 2 ;;
      --aec|--aet|--serverIP|--serverPort|--aet_listener|--listenerPort|--basemount|--storage|--cube)
        need_value "$1" $#; override[${1#--}]=$2; shift 2 ;;
      --report) need_value "$1" $#; report_format=$2; shift 2 ;;
      -v) need_value "$1" $#; VERBOSITY=$2; shift 2 ;;
      -Q) need_value "$1" $#; mapfile -d '' -t query < <(split_words "$2"); wait $! || exit 2
          have_query=1; shift 2 ;;
      -x) help_text; exit 0 ;;
      -h|--help) synopsis; exit 0 ;;
      --)
        shift
        if (($# == 1)); then
          mapfile -d '' -t query < <(split_words "$1"); wait $! || exit 2
        else
          query=("$@")
        fi
        have_query=1; break ;;
      *) die 2 "unknown option '$1' (the px-find flags go after --): see $PROG -h" ;;
    esac
  done
  [[ $VERBOSITY =~ ^[0-9]+$ ]] || die 2 "-v takes a number, not '$VERBOSITY'"
  institution_set "$institution" || die 2 "unknown institution '$institution': one of $(institutions) (see $PROG -x)"
  AEC=${override[aec]:-$AEC} AET=${override[aet]:-$AET}
  SERVER_IP=${override[serverIP]:-$SERVER_IP} SERVER_PORT=${override[serverPort]:-$SERVER_PORT}
  AET_LISTENER=${override[aet_listener]:-$AET_LISTENER} LISTENER_PORT=${override[listenerPort]:-$LISTENER_PORT}
  BASEMOUNT=${override[basemount]:-$BASEMOUNT}
  STORAGE=${override[storage]:-$STORAGE} CUBE=${override[cube]:-$CUBE}
  [[ -n $BASEMOUNT ]] || die 2 "institution '$institution' names no BASEMOUNT: give --basemount DIR"

  local db=("--db" "$BASEMOUNT/log") pacs=() listener=() verbose=()
  [[ -n $PACS ]] && pacs+=(--PACS "$PACS")
  [[ -n $AET ]] && pacs+=(--aet "$AET")
  [[ -n $AEC ]] && pacs+=(--aec "$AEC")
  [[ -n $SERVER_IP ]] && pacs+=(--serverIP "$SERVER_IP")
  [[ -n $SERVER_PORT ]] && pacs+=(--serverPort "$SERVER_PORT")
  [[ -n $AET_LISTENER ]] && listener+=(--aet_listener "$AET_LISTENER")
  [[ -n $LISTENER_PORT ]] && listener+=(--listenerPort "$LISTENER_PORT")
  ((VERBOSITY >= 2)) && verbose=(-v 2)

  case $action in
    find|retrieve|status|push|register|report|echo) ;;
    *) die 2 "unknown action '$action': find, retrieve, status, report, push, register or echo" ;;
  esac
  if [[ $action == report ]]; then
    case $report_format in
      tabular|rawText|csv|json) ;;
      *) die 2 "unknown report format '$report_format': tabular, rawText, csv or json" ;;
    esac
  fi
  if [[ $action != echo ]] && ((!have_query)); then
    die 2 "no query: give the px-find flags after --, e.g. -- \"--PatientID 1234567\""
  fi
  if [[ $institution == sandbox && ! -e $BASEMOUNT/services/pacs.json ]]; then
    die 2 "no sandbox PACS in $BASEMOUNT: start one with: PYPX_DB=$BASEMOUNT/log px-sandbox up --seed"
  fi
  local command=()
  case $action in
    find) command=(px-find "${pacs[@]}" "${listener[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}") ;;
    retrieve) command=(px-move "${pacs[@]}" "${listener[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}") ;;
    status) command=(px-status "${pacs[@]}" "${listener[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}") ;;
    echo) command=(px-echo "${pacs[@]}" "${db[@]}" "${verbose[@]}") ;;
    push)
      [[ -n $STORAGE ]] || die 2 "institution '$institution' names no storage: give --storage KEY (see $PROG -x)"
      command=(px-push --storage "$STORAGE" "${pacs[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}") ;;
    register)
      [[ -n $CUBE ]] || die 2 "institution '$institution' names no CUBE: give --cube KEY (see $PROG -x)"
      command=(px-register --CUBE "$CUBE" "${pacs[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}") ;;
    report)
      local find=(px-find "${pacs[@]}" "${db[@]}" "${verbose[@]}" "${query[@]}" --json)
      local render=(px-report --printReport "$report_format")
      show "${find[@]}"
      show "${render[@]}"
      local codes
      set +e
      "${find[@]}" | "${render[@]}"
      codes=("${PIPESTATUS[@]}")
      set -e
      ((codes[0] == 0)) || exit "${codes[0]}"
      exit "${codes[1]}" ;;
  esac
  show "${command[@]}"
  exec "${command[@]}"
}

main "$@"
