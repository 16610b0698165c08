#!/usr/bin/env bash
# Set pypx up on Debian 12 (as root, idempotent) and run one of:
#   ./bootstrap.sh demo   the main job against the sandbox PACS: find -> retrieve -> repack -> status -> report
#   ./bootstrap.sh test   every test (unit and integration: real Orthanc, DCMTK and Swift on loopback)
#   ./bootstrap.sh setup  only install (everything the demo and the tests need)
#   ./bootstrap.sh image  only DCMTK, Python and pypx itself (not editable): the container image's install
#                         (`image-packages`: only its Debian packages, for a cached image layer)
# Environment: PYPX_VENV (default ./.venv), PYPX_DEMO_DIR (default /tmp/pypx-demo), SKIP_APT=1.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${PYPX_VENV:-$ROOT/.venv}
IMAGE_PACKAGES=(dcmtk python3 python3-venv ca-certificates)
APT_PACKAGES=("${IMAGE_PACKAGES[@]}" orthanc swift swift-proxy swift-account swift-container swift-object
              memcached python3-pip openssl)
# the tests also build and run the container image: podman (with runc) and a base made by debootstrap
TEST_PACKAGES=(podman runc debootstrap)
export DEBIAN_FRONTEND=noninteractive

install_apt() {
  [[ ${SKIP_APT:-0} == 1 ]] && return
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) != 0 ]]; then
    echo "bootstrap: missing Debian packages (${missing[*]}); run as root or install them" >&2; exit 7
  fi
  # Debian would start orthanc/memcached/swift on all interfaces at install: forbid service starts
  # for the duration (pypx starts its own instances on loopback, as plain processes).
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
  [[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
  return 0
}

install_python() {  # install_python PIP-ARGS...
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  local stamp=$VENV/.pypx-installed
  if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$stamp"
  fi
}

demo() {
  local dir=${PYPX_DEMO_DIR:-/tmp/pypx-demo}
  local db=$dir/log
  export PATH=$VENV/bin:$PATH PYPX_DB=$db
  rm -rf "$dir"
  trap 'px-sandbox down >/dev/null 2>&1 || true' EXIT
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }
  step px-sandbox up --seed --patients 4 --studies 2 --series 2 --images 5
  step px-echo --PACS sandbox
  step px-find --PACS sandbox --PatientName "O'BRIEN*"
  step px-find --PACS sandbox --PatientID PX042-00001 --json > "$dir/found.json"
  echo "(saved $(grep -c SeriesInstanceUID "$dir/found.json") series lines to $dir/found.json)"
  step px-move --PACS sandbox --reportDataFile "$dir/found.json"
  step px-status --reportDataFile "$dir/found.json"
  step px-report --reportDataFile "$dir/found.json" --printReport csv --csvPrintHeaders
  step px-move --PACS sandbox --reportDataFile "$dir/found.json"   # again: nothing to fetch
  step px-smdb service set storage demo storagetype=fs "storepath=$dir/chris-storage"
  step px-push --storage demo --reportDataFile "$dir/found.json"
  step px-status --reportDataFile "$dir/found.json"
  echo; echo "repacked tree under $dir/data:"; find "$dir/data" -maxdepth 3 -type d | sed "s|^$dir/data||" | sort
  step px-sandbox down
  trap - EXIT
}

case ${1:-demo} in
  image-packages) install_apt "${IMAGE_PACKAGES[@]}" ;;
  image) install_apt "${IMAGE_PACKAGES[@]}"; install_python --no-cache-dir . ;;
  setup|demo|test)
    if [[ ${1:-demo} == demo ]]; then install_apt "${APT_PACKAGES[@]}"
    else install_apt "${APT_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; fi
    install_python -e ".[test]" ;;
  *) echo "usage: $0 demo|test|setup|image" >&2; exit 2 ;;
esac
case ${1:-demo} in
  demo) demo ;;
  test) shift; exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
esac
