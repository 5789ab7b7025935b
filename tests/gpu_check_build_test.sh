#!/usr/bin/env bash
# tools/gpu_check.sh's build command on a machine like the lent GPU machine: no OpenMPI (no mpicc,
# mpirun) and no package registry. The Makefile's `deps` step installs OpenMPI with apt-get when
# mpicc is missing unless USE_MPI is given, and there apt-get fails, so `make` exits 1 before
# compiling anything. This test builds such a PATH (symlinks to every program of the usual bin
# folders except the MPI wrappers and sudo, plus an apt-get that fails as it does without a
# registry), asks `tools/gpu_check.sh --print-build` for its make command, and runs that command
# with the targets `deps info` only and a fresh BUILD folder (no compiling: a few seconds).
# It fails when the printed command lacks USE_MPI=0, when make exits non-zero, when `deps` tries
# to install anything (on the GPU machine `apt-get update` can wait a long time for a registry
# that is not there), or when `info` reports USE_MPI=1.
# Run from the repository root: bash tests/gpu_check_build_test.sh (tests/test_gpu_check_script.cpp
# runs it under `make test`). `--makefile FILE` runs make with -f FILE, to check the test against
# another Makefile (the one before `deps` learnt to go on without OpenMPI made the old command
# exit 2 here: `git show a75a01d:Makefile > /tmp/old.mk`).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
makefile=()
if [ "${1:-}" = --makefile ]; then makefile=(-f "$2"); fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shim=$work/bin
mkdir -p "$shim"

# Everything but MPI, the package tools and sudo. /bin is often a link to /usr/bin: the first
# folder that has a name wins.
for dir in /usr/local/cuda/bin /usr/local/bin /usr/bin /bin; do
  [ -d "$dir" ] || continue
  for f in "$dir"/*; do
    name=${f##*/}
    case $name in
      mpi* | orterun* | apt | apt-get | sudo) continue ;;
    esac
    [ -e "$shim/$name" ] || ln -s "$f" "$shim/$name"
  done
done
# Omitting apt-get would not emulate the GPU machine: the Makefile only tries to install when
# apt-get exists, and there it exists but cannot reach a registry. Exit status 100 is apt-get's
# own for "could not fetch".
cat >"$shim/apt-get" <<'EOF'
#!/bin/sh
echo "E: (gpu_check_build_test) no package registry here" >&2
exit 100
EOF
chmod +x "$shim/apt-get"

fail=0
if PATH=$shim command -v mpicc >/dev/null 2>&1; then
  echo "FAIL: mpicc is still on the shim PATH"; exit 1
fi

# The command gpu_check.sh would run, one shell word per array element.
printed=$(PATH=$shim bash tools/gpu_check.sh --print-build) || {
  echo "FAIL: tools/gpu_check.sh --print-build exited non-zero"; exit 1; }
echo "gpu_check.sh --print-build: $printed"
cmd=()
eval "cmd=($printed)"
case " ${cmd[*]} " in
  *" USE_MPI=0 "*) ;;
  *) echo "FAIL: no mpicc on the PATH, yet the build command does not pass USE_MPI=0"; fail=1 ;;
esac
# Keep make and its flags and variables; drop the targets and BUILD, then ask for `deps info` in a
# folder of our own (never the real build folder: nothing is compiled, nothing is touched).
args=()
for word in "${cmd[@]:1}"; do
  case $word in
    BUILD=*) ;;
    -* | *=*) args+=("$word") ;;
    *) ;;  # a target
  esac
done
build=$work/build
echo "running: ${cmd[0]} ${args[*]} BUILD=$build deps info"
PATH=$shim "${cmd[0]}" "${makefile[@]}" "${args[@]}" BUILD="$build" deps info >"$work/make.log" 2>&1
rc=$?
sed 's/^/  | /' "$work/make.log"
if [ "$rc" -ne 0 ]; then echo "FAIL: make exited $rc (deps must not try to install OpenMPI)"; fail=1; fi
if grep -q 'make deps: installing' "$work/make.log"; then echo "FAIL: make deps tried to install packages"; fail=1; fi
if grep -q 'USE_MPI=1' "$work/make.log"; then echo "FAIL: the build would use MPI (USE_MPI=1)"; fail=1; fi
if ! grep -q 'USE_MPI=0' "$work/make.log"; then echo "FAIL: make info did not print USE_MPI=0"; fail=1; fi

# Control (reported, not judged: it tests the shim, not gpu_check.sh): the same make without
# USE_MPI=0 reaches the failing apt-get, which shows the shim emulates the GPU machine.
plain=()
for word in "${args[@]}"; do [ "$word" = USE_MPI=0 ] || plain+=("$word"); done
PATH=$shim "${cmd[0]}" "${makefile[@]}" "${plain[@]}" BUILD="$build" deps >"$work/control.log" 2>&1
echo "control: without USE_MPI=0, make deps exits $? and says: $(tr '\n' ' ' <"$work/control.log")"

if [ "$fail" -eq 0 ]; then echo "gpu_check_build_test: ok"; else echo "gpu_check_build_test: FAILED"; fi
exit "$fail"
