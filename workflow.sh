#!/usr/bin/env bash
# workflow.sh: a narrated walkthrough of every pypx verb, in order, against the sandbox PACS.
# Each command is shown before it runs; on a terminal it pauses between steps (--no-pause: never).
set -euo pipefail

PROG=workflow.sh
usage() {
  cat <<EOF
usage: $PROG [--no-pause] [--basemount DIR] [--cube KEY] [--keep]

  Starts a sandbox PACS (px-sandbox) in DIR and walks through every verb: echo, find, report, retrieve,
  status, repack, smdb, push, register, pfstorage, do. Commands are shown before they run.

  --basemount DIR  the BASEMOUNT to work in (default \$PYPX_WORKFLOW_DIR or /tmp/pypx-workflow)
  --cube KEY       register with the CUBE of this entry of DIR/services/cube.json (default \$PYPX_CUBE;
                   without one the register step is skipped with a note). Add one with:
                   px-smdb --db DIR/log service set cube KEY url=http://HOST:8000/api/v1/ username=chris password=..
  --no-pause       do not wait for Enter between steps (it never waits when not on a terminal)
  --keep           leave the sandbox PACS running at the end (px-sandbox down stops it)
Exit code: 0 when every step worked, else the code of the command that failed.
EOF
}

BASE=${PYPX_WORKFLOW_DIR:-/tmp/pypx-workflow}
CUBE=${PYPX_CUBE:-}
PAUSE=1
KEEP=0
while (($#)); do
  case $1 in
    --no-pause) PAUSE=0; shift ;;
    --keep) KEEP=1; shift ;;
    --basemount|--cube)
      (($# >= 2)) || { echo "$PROG: $1 needs a value" >&2; exit 2; }
      if [[ $1 == --cube ]]; then CUBE=$2; else BASE=$2; fi
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$PROG: unknown option '$1': see $PROG --help" >&2; exit 2 ;;
  esac
done
[[ -t 0 && -t 1 ]] || PAUSE=0
mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd)
export PYPX_DB=$BASE/log PYPX_PACS=sandbox
STORAGE=workflow
FOUND=$BASE/found.json
PATIENT=PX042-00001

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then BOLD=$'\e[1m' DIM=$'\e[2m' RESET=$'\e[0m'; else BOLD="" DIM="" RESET=""; fi

STEP=0
step() {  # step TITLE NARRATION...: a heading and what the step shows
  STEP=$((STEP + 1))
  if ((PAUSE)) && ((STEP > 1)); then
    read -r -p "${DIM}(Enter for the next step)${RESET}" _ </dev/tty || true
  fi
  printf '\n%s== %d. %s ==%s\n' "$BOLD" "$STEP" "$1" "$RESET"
  shift
  printf '%s\n' "$@"
}

show() {  # show WORD...: the command as it could be typed (a lone | word shows as a pipe)
  local line="" word quoted
  for word in "$@"; do
    if [[ $word == "|" ]]; then quoted="|"; else printf -v quoted '%q' "$word"; fi
    line+="$quoted "
  done
  printf '%s$ %s%s\n' "$BOLD" "${line% }" "$RESET"
}

run() {  # run WORD...: show the command, then run it
  show "$@"
  "$@"
}

run_to() {  # run_to FILE WORD...: show and run the command with its stdout saved to FILE
  local file=$1
  shift
  local line
  printf -v line '%q ' "$@"
  printf '%s$ %s > %q%s\n' "$BOLD" "${line% }" "$file" "$RESET"
  "$@" >"$file"
}

finish() {
  local code=$?
  if ((code != 0)); then
    echo "$PROG: step $STEP stopped with exit code $code" >&2
  fi
  if ((!KEEP)); then
    px-sandbox down >/dev/null 2>&1 || true
  fi
  exit "$code"
}
trap finish EXIT

for tool in px-sandbox px-echo px-find px-report px-move px-status px-repack px-smdb px-push px-register pfstorage px-do; do
  command -v "$tool" >/dev/null || { echo "$PROG: $tool not found: run ./bootstrap.sh setup and put .venv/bin on PATH" >&2; exit 7; }
done

step "sandbox" "A local Orthanc PACS on 127.0.0.1, seeded with synthetic studies. It writes the entry" \
  "'sandbox' into $BASE/services/pacs.json, so every verb below takes --PACS sandbox (here: \$PYPX_PACS)."
run px-sandbox up --seed --patients 4 --studies 2 --series 2 --images 3

step "px-echo" "C-ECHO: is the PACS there, and does it accept our AE title?"
run px-echo --PACS sandbox

step "px-find" "C-FIND: studies and their series. DICOM wildcards and ranges work; values are passed as" \
  "arguments, never through a shell. --json saves the result for the other verbs."
run px-find --PACS sandbox --PatientName "O'BRIEN*"
run_to "$FOUND" px-find --PACS sandbox --PatientID "$PATIENT" --json
echo "(saved $(grep -c '"SeriesInstanceUID"' "$FOUND") series to $FOUND)"

step "px-report" "px-find's JSON rendered as csv (also tabular, rawText, json), straight from a pipe."
show px-find --PACS sandbox --StudyDate 20150101-20191231 --json "|" px-report --printReport csv --csvPrintHeaders
px-find --PACS sandbox --StudyDate 20150101-20191231 --json | px-report --printReport csv --csvPrintHeaders

step "px-move" "C-MOVE of every series found into $BASE/data, through a receiver started for the" \
  "retrieve. It is incremental: run it again and nothing is fetched."
run px-move --PACS sandbox --reportDataFile "$FOUND"
run px-move --PACS sandbox --reportDataFile "$FOUND"

step "px-status" "Expected vs received per study and series; exit 0 only when nothing is known to be missing."
run px-status --reportDataFile "$FOUND"

step "px-repack" "Files DICOM files from anywhere into the same tree and database: here the sandbox's" \
  "own generated files of another patient."
run px-repack "$BASE/sandbox/seed/PX042-00002"
run px-status --PatientID PX042-00002 --PACS sandbox
echo "the tree:"
find "$BASE/data" -mindepth 1 -maxdepth 2 -type d | sed "s|^$BASE/data/||" | sort

step "px-smdb" "The database and the keyed service configs (secrets are kept mode 0600 and never shown)." \
  "Here a folder stands in for ChRIS's storage; a Swift entry takes storagetype=swift ip= port= login= key=."
run px-smdb patients
run px-smdb studies "$PATIENT"
run px-smdb service set storage "$STORAGE" storagetype=fs "storepath=$BASE/chris-storage"
run px-smdb service list

step "px-push" "Uploads the retrieved series to ChRIS's storage under SERVICES/PACS/sandbox/..."
run px-push --storage "$STORAGE" --reportDataFile "$FOUND"

step "px-register" "Registers the pushed series with ChRIS CUBE (the folder, PACS name and files come from" \
  "the push record)."
if [[ -n $CUBE ]]; then
  run px-register --CUBE "$CUBE" --reportDataFile "$FOUND"
else
  echo "(skipped: no CUBE is configured. Add one with px-smdb --db $BASE/log service set cube KEY"
  echo " url=http://HOST:8000/api/v1/ username=chris password=..., then run $PROG --cube KEY)"
fi

step "pfstorage" "Lists (also puts, gets, removes) the objects in that storage."
run pfstorage --storage "$STORAGE" ls SERVICES/PACS/sandbox/

step "px-do" "Runs actions over a saved px-find result: here retrieve then status of a third patient," \
  "with a line per series."
run_to "$BASE/found-3.json" px-find --PACS sandbox --PatientID PX042-00003 --json
run px-do --PACS sandbox --reportDataFile "$BASE/found-3.json" --then retrieve,status --withFeedBack

step "done" "Every verb ran. The BASEMOUNT is $BASE (database in log/, images in data/)."
if ((KEEP)); then echo "The sandbox PACS is still running: px-sandbox down stops it."; fi
