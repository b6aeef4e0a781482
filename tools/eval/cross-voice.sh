#!/usr/bin/env bash
# How far a keyword model's calibrated false-alarm rate carries to voices the calibration
# never heard, measured on the valid voices alone (the test split stays untouched): the
# valid voices of a calibration manifest are split in two folds by espeak-ng variant;
# thresholds are chosen on one fold (`earshot calibrate`) and counted on the other
# (`earshot calibrate --check`), both ways. Prints one line per direction and the false
# alarms per hour of both held-out folds together.
#
#   tools/eval/cross-voice.sh MODEL [--manifest FILE] [--out DIR] [--earshot BIN]
#                             [--real-speakers] [-- CALIBRATE OPTIONS...]
#
# --manifest: default data/calibration.tsv (scripts/data.sh). --out: the fold manifests,
# models and tables (default data/cross-voice). Options after -- go to both calibrations
# (default: --max-false-alarms 0.5 --max-near-misses 0.05). Fold A holds the variants
# in ES_FOLD_A (default "robosoft5 m6 edward2 Michael" of the valid seven), fold B the
# rest; voices without a variant (real speakers, noise) are in both, csmash in neither.
# --real-speakers folds the recorded people instead (their keyword clips, by a hash of the
# speaker id; synthetic voices in both): how thresholds chosen for some real speakers do on
# others, e.g. with `-- --recorded-weight W`. Each line then ends with the held-out fold's
# recall of recorded people.
set -euo pipefail
cd "$(dirname "$0")/../.."
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

model=
manifest=data/calibration.tsv
out=data/cross-voice
earshot=build/daemon/earshot
calibrate_args=(--max-false-alarms 0.5 --max-near-misses 0.05)
fold_by=variant
while [ $# -gt 0 ]; do
  case $1 in
  --manifest) manifest=${2:?--manifest needs a file} && shift 2 ;;
  --out) out=${2:?--out needs a folder} && shift 2 ;;
  --earshot) earshot=${2:?--earshot needs a binary} && shift 2 ;;
  --real-speakers) fold_by=speaker && shift ;;
  --) shift && calibrate_args=("$@") && break ;;
  -h | --help) usage && exit 0 ;;
  -*) echo "cross-voice.sh: unknown option '$1' (try --help)" >&2 && exit 2 ;;
  *) [ -z "$model" ] || { echo "cross-voice.sh: one MODEL only" >&2 && exit 2; }
    model=$1 && shift ;;
  esac
done
[ -n "$model" ] || { usage >&2 && exit 2; }
for f in "$model" "$manifest"; do
  [ -r "$f" ] || { echo "cross-voice.sh: $f: cannot read it" >&2 && exit 1; }
done
[ -x "$earshot" ] || scripts/build.sh >&2

# The fold manifests sit beside the clips' folder so that their relative paths resolve.
folder=$(dirname "$manifest")
mkdir -p "$out"
for fold in A B; do
  awk -F'\t' -v OFS='\t' -v fold=$fold -v by=$fold_by \
    -v variants="${ES_FOLD_A:-robosoft5 m6 edward2 Michael}" '
    BEGIN { n = split(variants, v, " "); for (i = 1; i <= n; i++) in_a[v[i]] = 1 }
    by == "variant" && $2 == "valid" && $7 ~ /^espeak:.*\+/ {
      variant = $7; sub(/.*\+/, "", variant)
      if ((fold == "A") != (variant in in_a)) $2 = "test" }
    by == "speaker" && $2 == "valid" && $3 == "keyword" && $7 !~ /^(espeak|flite|noise|real):/ {
      h = 0
      for (i = 1; i <= length($7); i++)
        h = (h * 31 + index("0123456789abcdefghijklmnopqrstuvwxyz:-_", substr($7, i, 1))) % 1000003
      if ((fold == "A") != (h % 2 == 0)) $2 = "test" }
    { print }' "$manifest" >"$folder/.cross-voice-$fold.tsv"
done

# A table's total row: recall, false alarms, per hour, and the keyword-free hours its
# closing words give ("... in 7.00 h keyword-free").
totals() {
  awk '$1 == "total" { for (i = 1; i <= NF; i++) if ($i == "h") h = $(i - 1); print $4, $5, $6, h }' "$1"
}

name=$(basename "$model" .esm)
held_alarms=0 held_hours=0
for direction in A:B B:A; do
  from=${direction%:*} to=${direction#*:}
  chosen=$out/$name-$from.esm
  "$earshot" calibrate "$model" --manifest "$folder/.cross-voice-$from.tsv" -o "$chosen" \
    --exclude-voice real:csmash --seed 1 "${calibrate_args[@]}" >"$out/$name-$from.txt" \
    2>"$out/$name-$from.log"
  "$earshot" calibrate "$chosen" --manifest "$folder/.cross-voice-$to.tsv" --check \
    --exclude-voice real:csmash --seed 1 >"$out/$name-$from-on-$to.txt" 2>"$out/$name-$from-on-$to.log"
  read -r recall alarms rate _ < <(totals "$out/$name-$from.txt")
  read -r held_recall held held_rate held_h < <(totals "$out/$name-$from-on-$to.txt")
  real=$(awk '/^of the positives:/ { sub(/;.*/, ""); print "; recorded people " $NF }' \
    "$out/$name-$from-on-$to.txt")
  echo "chosen on fold $from: recall $recall, $alarms false alarms ($rate/h) | counted on fold $to: recall $held_recall, $held false alarms ($held_rate/h in $held_h h)$real"
  held_alarms=$((held_alarms + held))
  held_hours=$(awk -v a="$held_hours" -v b="$held_h" 'BEGIN { print a + b }')
done
awk -v a="$held_alarms" -v h="$held_hours" \
  'BEGIN { printf "held-out folds together: %d false alarms in %.2f h, %.2f per hour\n", a, h, a / h }'
