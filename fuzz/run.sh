#!/usr/bin/env bash
# Builds the fuzz targets, then runs each (or those named) for SECONDS, one
# after the other on one core, and prints the executions of each from
# libFuzzer's final statistics. Exits non-zero if any target crashed (or
# hung, or ran out of memory); the input that did it is in
# fuzz/artifacts/TARGET/ and the run's log in fuzz/logs/TARGET.log.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# New inputs that reach new code go to fuzz/work/TARGET/ (not committed);
# the committed seeds in fuzz/corpus/TARGET/ are only read. FUZZ_SANITIZER
# picks the sanitizer (default none: the project has no unsafe code, and
# without ASan more inputs run per second; "address" works too).
# FUZZ_RUNS=N stops each target after N executions if that comes first.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds="$1"
shift
sanitizer="${FUZZ_SANITIZER:-none}"
# FUZZ_RUNS=N also stops each target after N executions (whichever first).
runs="${FUZZ_RUNS:-}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo +nightly fuzz build -s "$sanitizer"
bin_dir="target/x86_64-unknown-linux-gnu/release"

# The tokens each parser keys on.
dict_of() {
  case "$1" in
    at_ussd_form | at_sms_form) echo dicts/at_form.dict ;;
    kannel_query) echo dicts/kannel.dict ;;
    xml_ussd) echo dicts/xml.dict ;;
    sms_command) echo dicts/sms.dict ;;
    gateway_config | sync_server_config) echo dicts/toml.dict ;;
    signed_headers) echo dicts/signed.dict ;;
  esac
}

# One of libFuzzer's final statistics from a run's log.
stat() { awk -v k="stat::$2:" '$1 == k {print $2}' "$1" | tail -n 1; }

mkdir -p logs
failed=()
scratch=""
trap 'if [ -n "$scratch" ]; then rm -rf "$scratch"; fi' EXIT
printf '%-20s %14s %10s %8s  %s\n' target executions "exec/s" corpus result
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target" "corpus/$target"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10
        -artifact_prefix="artifacts/$target/")
  dict="$(dict_of "$target")"
  if [ -n "$dict" ]; then args+=(-dict="$dict"); fi
  if [ -n "$runs" ]; then args+=(-runs="$runs"); fi
  log="logs/$target.log"
  # Files a target writes (SQLite, configuration) live and die with the run.
  scratch="$(mktemp -d /dev/shm/guichet-fuzz.XXXXXX 2>/dev/null || mktemp -d)"
  status=0
  FUZZ_SCRATCH="$scratch" "$bin_dir/$target" "${args[@]}" "work/$target" "corpus/$target" \
    >"$log" 2>&1 || status=$?
  rm -rf "$scratch"
  corpus="$(find "work/$target" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status, see $log)"
    failed+=("$target")
  fi
  printf '%-20s %14s %10s %8s  %s\n' "$target" "$(stat "$log" number_of_executed_units)" \
    "$(stat "$log" average_exec_per_sec)" "$corpus" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "== $target: end of logs/$target.log"
    tail -n 40 "logs/$target.log"
    ls -l "artifacts/$target/"
  done
  exit 1
fi
