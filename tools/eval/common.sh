# Sourced by scripts/eval.sh and scripts/compare.sh: options, the evaluation set, and
# earshot's runs on it. Expects to run from the repository's top folder.
#
# Options: --quick (a few minutes of audio) | --smoke (about a minute, no manifest needed:
# espeak-ng clips; for CI) ; --hours H (keyword-free hours, default 6 full, 0.25 quick) ;
# --seed N ; --manifest FILE (default data/manifest.tsv) ; --earshot BIN
# (default build/daemon/earshot, built with scripts/build.sh when missing) ;
# --vad-model FILE / --kws-model FILE (a model to measure instead of the built-in one) ;
# --split test|valid|train (default test: voices never trained on; train: the voices the
# models learnt from, which tells underfitting from overfitting), in data/eval/SIZE-SPLIT.

size=full
hours=
seed=1
manifest=data/manifest.tsv
earshot=build/daemon/earshot
model_args=()
split=test

eval_usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

eval_parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
    --quick) size=quick ;;
    --smoke) size=smoke ;;
    --hours) hours=${2:?--hours needs a value} && shift ;;
    --seed) seed=${2:?--seed needs a value} && shift ;;
    --manifest) manifest=${2:?--manifest needs a value} && shift ;;
    --earshot) earshot=${2:?--earshot needs a value} && shift ;;
    --vad-model | --kws-model)
      [ -r "${2:?$1 needs a model file}" ] || { echo "$(basename "$0"): $1: cannot read '$2'" >&2 && exit 2; }
      model_args+=("$1" "$2") && shift ;;
    --split)
      case ${2:-} in test | valid | train) split=$2 ;; *) echo "$(basename "$0"): --split: '${2:-}' is not test, valid or train" >&2 && exit 2 ;; esac
      shift ;;
    -h | --help) eval_usage && exit 0 ;;
    *) echo "$(basename "$0"): unknown argument '$1' (try --help)" >&2 && exit 2 ;;
    esac
    shift
  done
  set_dir=data/eval/$size
  [ "$split" = test ] || set_dir=data/eval/$size-$split
}

# Whether this run measures the shipped models on the full test set: its results are the
# record in data/eval/ (other runs' stay in their set's folder).
eval_is_record() {
  [ "$size" = full ] && [ "$split" = test ] && [ ${#model_args[@]} -eq 0 ]
}

eval_log() { echo "$(basename "$0" .sh): $*" >&2; }

# Noise of kinds that training never heard (models/recipe/SOURCES.md trains on music,
# game effects, colours and hum): phone ringtones, notification and desktop sounds from
# two Debian packages. Installs them when missing; prints the path of the file list.
eval_unseen_noise() {
  local pkgs=(oxygen-sounds lomiri-sounds) missing=() p list=$set_dir/unseen-noise.txt
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    eval_log "installing ${missing[*]} (noise never used in training)"
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  mkdir -p "$set_dir"
  dpkg -L "${pkgs[@]}" | grep -E '\.(ogg|oga|wav)$' | sort >"$list"
  echo "$list"
}

# Builds (or reuses) the evaluation set in $set_dir.
eval_build_set() {
  local args=(--out "$set_dir" --size "$size" --seed "$seed" --split "$split")
  [ -n "$hours" ] && args+=(--hours "$hours")
  if [ "$size" = smoke ]; then
    args+=(--smoke)
  else
    if [ ! -f "$manifest" ]; then
      eval_log "$manifest: no manifest; run scripts/data.sh first (or use --smoke)"
      exit 1
    fi
    args+=(--manifest "$manifest" --noise-list "$(eval_unseen_noise)")
  fi
  nice -n 10 node tools/eval/build.js "${args[@]}"
}

# Lists the set's files of one group (vad, kws, fa).
eval_files() {
  node -e '
    const m = require(process.argv[1]);
    const g = process.argv[2];
    for (const f of g === "fa" ? m.fa : m[g].files) console.log(f.file);
  ' "$PWD/$set_dir/meta.json" "$1"
}

eval_check_earshot() {
  if [ ! -x "$earshot" ]; then
    eval_log "$earshot missing: building it (scripts/build.sh)"
    scripts/build.sh >&2
  fi
  if [ ! -x "$earshot" ]; then
    eval_log "$earshot: still missing after the build"
    exit 1
  fi
}

# Runs earshot on every file of the set: frames (posteriors) for the VAD streams,
# JSON-line events for all.
eval_run_earshot() {
  local runs=$set_dir/runs/earshot f
  eval_check_earshot
  mkdir -p "$runs"
  rm -f "$runs"/*
  for f in $(eval_files vad); do
    nice -n 10 "$earshot" file "${model_args[@]}" --format frames -o "$runs/${f%.wav}.frames.csv" "$set_dir/$f" ||
      { eval_log "earshot file --format frames failed on $set_dir/$f" && exit 1; }
  done
  for f in $(eval_files vad) $(eval_files kws) $(eval_files fa); do
    nice -n 10 "$earshot" file "${model_args[@]}" --format jsonl -o "$runs/${f%.wav}.jsonl" "$set_dir/$f" ||
      { eval_log "earshot file failed on $set_dir/$f" && exit 1; }
  done
}
