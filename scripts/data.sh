#!/usr/bin/env bash
# Builds the training data of earshot's models into data/ (or --out DIR) from
# Debian packages only, and writes DIR/manifest.tsv (format: models/MANIFEST.md)
# and DIR/calibration.tsv: its valid split and more keyword-free sentences read by
# the valid voices, which `earshot calibrate` sets thresholds on and the trainer
# never reads.
#
#   scripts/data.sh [--small] [--out DIR] [--jobs N] [--skip-render] [--earshot BIN]
#
# Idempotent and resumable: every clip is written with a .tsv sidecar holding
# its manifest line, and a clip whose sidecar exists is never redone. Progress
# goes to stderr. --small makes a tiny set (a few voices and sentences, under a
# minute) for CI's smoke training run. --skip-render leaves the synthetic clips
# as they are (e.g. while another run renders them) and does the rest. The voices'
# splits come from BIN (`earshot voices --split`; default build/daemon/earshot,
# built by scripts/build.sh when missing).
# Method and sources: models/recipe/README.md and models/recipe/SOURCES.md.
#
# Knobs (environment): ES_SENTENCES_PER_VOICE (25), ES_CALIBRATION_SENTENCES (200
# more per valid voice), ES_DATA_SEED (1), ES_REAL_SPEECH (../shared/data/real-speech:
# the real recorded speech, models/recipe/real_speech.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=models/recipe

small=0
out=data
jobs=2
earshot=build/daemon/earshot
while [ $# -gt 0 ]; do
    case $1 in
    --small) small=1 ;;
    --out) out=$2 && shift ;;
    --jobs) jobs=$2 && shift ;;
    --skip-render) jobs=0 ;;
    --earshot) earshot=$2 && shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "data.sh: unknown argument '$1' (try --help)" >&2 && exit 2 ;;
    esac
    shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "data: $*" >&2; }

# ---- packages (allow-list: nothing outside it is ever read) -------------------
tools=(espeak-ng flite sox perl ffmpeg)
sources=(pocketsphinx-testdata asterisk-core-sounds-en-g722 csmash-data hedgewars-data
    klettres-data fortunes asterisk-moh-opsound-wav colobot-common-sounds)
[ "$small" = 1 ] && tools=(espeak-ng flite sox perl) && sources=(pocketsphinx-testdata)
missing=()
for p in "${tools[@]}" "${sources[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    log "installing ${missing[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# ---- text: keyword-free sentences --------------------------------------------
mkdir -p "$out/text"
text_sources=(/usr/share/common-licenses/*)
if [ "$small" = 0 ]; then
    for f in /usr/share/games/fortunes/*; do
        case $f in *.dat | *.u8) ;; *) [ -f "$f" ] && text_sources+=("$f") ;; esac
    done
    for f in /usr/share/doc/*/README /usr/share/doc/*/README.txt /usr/share/doc/*/README.md \
        /usr/share/doc/*/README.gz /usr/share/doc/*/README.md.gz; do
        [ -f "$f" ] && text_sources+=("$f")
    done
fi
# Made once per data folder: the README files found depend on what is installed,
# and the render jobs name sentences by their index in this list.
if [ ! -s "$out/text/sentences.txt" ]; then
    perl $recipe/sentences.pl $recipe/keywords.txt "${text_sources[@]}" >"$out/text/sentences.part"
    mv "$out/text/sentences.part" "$out/text/sentences.txt"
fi
log "$(wc -l <"$out/text/sentences.txt") keyword-free sentences from ${#text_sources[@]} texts"

# ---- voices -------------------------------------------------------------------
# espeak-ng: every English voice of its own (gmw/) data, with every variant.
# flite: an allow-list of its voices. Each with its split: the rule is earshot's
# (models/train/factory.h), the one train-keyword follows too.
[ -x "$earshot" ] || scripts/build.sh >&2
{
    espeak-ng --voices=en | awk '$5 ~ /^gmw\// { print $2 }' | sort -u >"$out/text/accents"
    espeak-ng --voices=variant | awk 'NR > 1 { print $5 }' |
        sed -n 's|^!v/\([A-Za-z0-9_-]*\)$|\1|p' | sort -u >"$out/text/variants"
    while read -r accent; do
        printf 'espeak\t%s\n' "$accent"
        sed "s|^|espeak\t$accent+|" "$out/text/variants"
    done <"$out/text/accents"
    for voice in kal kal16 slt; do printf 'flite\t%s\n' "$voice"; done
} | "$earshot" voices --split >"$out/text/voices.part"
mv "$out/text/voices.part" "$out/text/voices.tsv"
log "$(wc -l <"$out/text/voices.tsv") voices"

# ---- synthetic speech -----------------------------------------------------------
plan_args=(--seed "${ES_DATA_SEED:-1}" --sentences-per-voice "${ES_SENTENCES_PER_VOICE:-25}")
[ "$small" = 1 ] && plan_args+=(--small)
calibration_sentences=${ES_CALIBRATION_SENTENCES:-200}
[ "$small" = 1 ] && calibration_sentences=3
# plan_jobs [--calibration N] > JOBS: the render jobs of plan.pl. Jobs whose text
# holds a keyword's homophone (models/recipe/homophones.txt) are dropped: neither
# keyword nor keyword-free, they would teach a contradiction.
plan_jobs() {
    perl $recipe/plan.pl "${plan_args[@]}" "$@" "$out/text/voices.tsv" $recipe/keywords.txt \
        $recipe/near_misses.txt $recipe/carriers.txt "$out/text/sentences.txt" |
        awk -F'\t' -v list=$recipe/homophones.txt '
            BEGIN { while ((getline w < list) > 0) if (w !~ /^#/ && w != "") homophone[tolower(w)] = 1 }
            { n = split(tolower($6), word, /[^a-z\047]+/)
              for (i = 1; i <= n; i++) if (word[i] in homophone) { dropped++; next }
              print }
            END { printf "data: %d jobs left out for a keyword homophone\n", dropped > "/dev/stderr" }'
}
# render_jobs JOBS: renders them with $jobs workers (none with --skip-render).
render_jobs() {
    [ "$jobs" -gt 0 ] && log "rendering $(wc -l <"$1") synthetic clips with $jobs workers"
    mkdir -p "$out/clips"
    local pids=() w
    for ((w = 0; w < jobs; w++)); do
        awk -v w="$w" -v n="$jobs" '(NR - 1) % n == w' "$1" |
            nice -n 10 bash $recipe/render.sh "$out/clips" "$w" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
}
# sidecars JOBS: the manifest lines of the jobs' clips. A job whose rendering failed
# has no sidecar: cat's complaint is dropped and the counts at the end show the gap.
sidecars() {
    cut -f1 "$1" | sed "s|^|$out/clips/|; s|\$|.tsv|" | { xargs -r cat 2>/dev/null || true; } |
        grep -v '^#'
}
plan_jobs >"$out/text/jobs.part"
plan_jobs --calibration "$calibration_sentences" >"$out/text/calibration-jobs.part"
# A rename, not a rewrite: workers of an earlier run may still be reading the old list.
mv "$out/text/jobs.part" "$out/text/jobs.tsv"
mv "$out/text/calibration-jobs.part" "$out/text/calibration-jobs.tsv"
total_jobs=$(wc -l <"$out/text/jobs.tsv")
render_jobs "$out/text/jobs.tsv"
render_jobs "$out/text/calibration-jobs.tsv"

# ---- real recordings -------------------------------------------------------------
# add_real SRC DEST SPLIT KIND LABEL VOICE [MAX_S]: converts SRC to 16 kHz mono
# (trimmed of silence for speech), writes DEST.wav and its sidecar DEST.tsv.
add_real() {
    local src=$1 dest=$out/$2 split=$3 kind=$4 label=$5 voice=$6 max_s=${7:-}
    [ -s "$dest.tsv" ] && return 0
    [ -f "$src" ] || return 0
    mkdir -p "$(dirname "$dest")"
    local input=$src
    if [ "${src##*.}" = g722 ]; then
        # Neither libsndfile nor sox reads G.722; ffmpeg decodes it to 16 kHz.
        input=$(mktemp --suffix=.wav)
        ffmpeg -nostdin -hide_banner -loglevel error -f g722 -i "$src" -y "$input"
    fi
    local effects=(silence 1 0.01 -50d reverse silence 1 0.01 -50d reverse)
    [ "$kind" = noise ] && effects=(trim 0 "${max_s:-30}")
    sox -G -V1 "$input" -r 16000 -c 1 -b 16 "$dest.wav" "${effects[@]}"
    [ "$input" != "$src" ] && rm -f "$input"
    local start=- end=-
    if [ "$kind" = keyword ]; then
        start=0.000
        end=$(soxi -D "$dest.wav" | awk '{ printf "%.3f", $1 }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${2}.wav" "$split" "$kind" "$label" "$start" "$end" \
        "$voice" >"$dest.tsv"
}

# A stable 80/10/10 split of a name, for sources with many independent clips.
split_by_name() {
    local bucket=$(($(printf '%s' "$1" | cksum | cut -d' ' -f1) % 10))
    if [ $bucket -eq 0 ]; then echo valid; elif [ $bucket -eq 1 ]; then echo test; else echo train; fi
}

digit_words=(zero one two three four five six seven eight nine)
log "real speech and noise"

# librivox/ clips of pocketsphinx-testdata: real read speech (VAD); by clip.
librivox=/usr/share/pocketsphinx/test/data/librivox
i=0
for f in "$librivox"/*.wav; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .wav)
    split=train
    [ $((i % 5)) -eq 3 ] && split=valid
    [ $((i % 5)) -eq 4 ] && split=test
    add_real "$f" "real/librivox/$name" $split speech - "librivox:$name"
    i=$((i + 1))
done

if [ "$small" = 0 ]; then
    # asterisk (one speaker, Allison): digits are keywords; other numbers and
    # letters are keyword-free speech. The whole speaker trains.
    asterisk=/usr/share/asterisk/sounds/en_US_f_Allison
    for d in 0 1 2 3 4 5 6 7 8 9; do
        add_real "$asterisk/digits/$d.g722" "real/asterisk/digit-$d" train keyword \
            "${digit_words[$d]}" real:asterisk
    done
    for n in 10 11 12 13 14 15 16 17 18 19 20 30 40 50 60 70 80 90 hundred thousand million oh; do
        add_real "$asterisk/digits/$n.g722" "real/asterisk/number-$n" train sentence - real:asterisk
    done
    for f in "$asterisk"/letters/?.g722; do
        [ -f "$f" ] && add_real "$f" "real/asterisk/letter-$(basename "$f" .g722)" train speech - \
            real:asterisk
    done

    # csmash (one speaker): a real voice never trained on, for validation.
    csmash=/usr/share/games/csmash/wav
    for word in "${digit_words[@]}"; do
        add_real "$csmash/$word.wav" "real/csmash/$word" valid keyword "$word" real:csmash
    done
    for word in eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen \
        twenty thirty all loveall; do
        add_real "$csmash/$word.wav" "real/csmash/$word" valid sentence - real:csmash
    done
    for sound in click racket table; do
        add_real "$csmash/$sound.wav" "noise/csmash/$sound" valid noise - noise:csmash
    done

    # hedgewars voice packs: English lines free of keywords (allow-list); by pack.
    hw=/usr/share/games/hedgewars/Data
    lines=(Amazing Boring Brilliant Bugger Byebye Coward Cutitout Drat Excellent Fire Firstblood
        Flawless Flyaway Gonnagetyou Grenade Hello Hmm Hurry Illgetyou Incoming Justyouwait
        Kamikaze Laugh Leavemealone Melon Missed Nutter Ohdear Oops Ouch Reinforcements Revenge
        Runaway Sameteam Solong Stupid Takecover Traitor Uh-oh Victory Watchit Watchthis Whatthe
        Youllregretthat)
    for pack in British Classic Default HillBilly Mobster Pirate Robot Singer Surfer; do
        split=$(split_by_name "$pack")
        for line in "${lines[@]}"; do
            add_real "$hw/Sounds/voices/$pack/$line.ogg" "real/hedgewars/$pack/$line" "$split" \
                speech - "real:hedgewars-$pack"
        done
    done

    # klettres: spoken English letters, two speakers.
    for f in /usr/share/klettres/en/alpha/*.ogg; do
        add_real "$f" "real/klettres-en/$(basename "$f" .ogg)" train speech - real:klettres-en
    done
    for f in /usr/share/klettres/en_GB/alpha/*.ogg; do
        add_real "$f" "real/klettres-en_GB/$(basename "$f" .ogg)" valid speech - \
            real:klettres-en_GB
    done

    # Music and effects, at most 30 s of each file; by file.
    for f in /usr/share/asterisk/moh/*.wav /usr/share/games/hedgewars/Data/Music/*.ogg \
        /usr/share/games/colobot/music/*.ogg; do
        name=$(basename "${f%.*}")
        add_real "$f" "noise/music/$name" "$(split_by_name "$name")" noise - "noise:music-$name"
    done
    for f in /usr/share/games/hedgewars/Data/Sounds/*.ogg /usr/share/games/colobot/sounds/*.wav; do
        name=$(basename "$(dirname "$f")")-$(basename "${f%.*}")
        add_real "$f" "noise/effects/$name" "$(split_by_name "$name")" noise - \
            "noise:effects-$name"
    done
fi

# ---- real recorded speech (shared/data/real-speech) -------------------------------
# Speech Commands, FSDD, Mycroft's not-wake-words and real noise, split by speaker:
# models/recipe/real_speech.sh says how. ES_REAL_SPEECH names the folder.
real_speech=${ES_REAL_SPEECH:-$(cd .. && pwd)/shared/data/real-speech}
if [ -d "$real_speech" ]; then
    bash $recipe/real_speech.sh "$real_speech" "$out" $([ "$small" = 1 ] && echo --small)
else
    log "warning: no real recorded speech at $real_speech (set ES_REAL_SPEECH): models trained on this data will not know real voices"
    rm -f "$out/real-speech/lines.tsv"
fi

# ---- generated noise ---------------------------------------------------------------
# Colours and mains hum, separate files per split (sox -R: repeatable).
gen_noise() {
    local name=$1 split=$2 seconds=$3
    shift 3
    local dest=$out/noise/generated/$name-$split
    [ -s "$dest.tsv" ] && return 0
    mkdir -p "$(dirname "$dest")"
    sox -R -n -r 16000 -c 1 -b 16 "$dest.wav" synth "$seconds" "$@"
    printf '%s\t%s\tnoise\t-\t-\t-\tnoise:generated-%s\n' "noise/generated/$name-$split.wav" \
        "$split" "$name" >"$dest.tsv"
}
for split in train valid test; do
    seconds=10
    [ $split = train ] && seconds=60
    gen_noise white $split $seconds whitenoise vol 0.5
    gen_noise pink $split $seconds pinknoise vol 0.5
    gen_noise brown $split $seconds brownnoise vol 0.5
    gen_noise hum50 $split $seconds sine 50 sine 100 sine 150 sine 250 vol 0.3
    gen_noise hum60 $split $seconds sine 60 sine 120 sine 180 sine 300 vol 0.3
done

# ---- manifest ------------------------------------------------------------------------
{
    printf '# earshot training manifest v1 (models/MANIFEST.md), made by scripts/data.sh'
    [ "$small" = 1 ] && printf ' --small'
    printf '\n'
    printf '# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n'
    # Synthetic clips of this plan only (a changed plan leaves stale files behind).
    sidecars "$out/text/jobs.tsv"
    find "$out/real" "$out/noise" -name '*.tsv' 2>/dev/null | sort | xargs -r cat | grep -v '^#'
    [ -f "$out/real-speech/lines.tsv" ] && cat "$out/real-speech/lines.tsv"
} >"$out/manifest.tsv.part"
mv "$out/manifest.tsv.part" "$out/manifest.tsv"
{
    printf '# earshot calibration manifest v1 (models/MANIFEST.md): the valid split of manifest.tsv\n'
    printf '# and %s more keyword-free sentences per valid voice, made by scripts/data.sh\n' \
        "$calibration_sentences"
    printf '# path\tsplit\tkind\tlabel\tstart_s\tend_s\tvoice\n'
    grep -v '^#' "$out/manifest.tsv" | awk -F'\t' '$2 == "valid"'
    sidecars "$out/text/calibration-jobs.tsv"
} >"$out/calibration.tsv.part"
mv "$out/calibration.tsv.part" "$out/calibration.tsv"

# Hours from WAV sizes (16-bit mono at 16 kHz, 44-byte header): no decoding needed.
find "$out/clips" "$out/real" "$out/real-speech" "$out/noise" -name '*.wav' -printf '%s %h\n' 2>/dev/null |
    awk -v root="$out/" '{ sub(root, "", $2); split($2, p, "/"); hours[p[1]] += ($1 - 44) / 32000 / 3600 }
        END { for (k in hours) printf "data: %-6s %7.2f h\n", k, hours[k] }' >&2
grep -v '^#' "$out/manifest.tsv" | awk -F'\t' '{ n[$2 " " $3]++; v[$7] = 1 }
    END { for (k in n) printf "data: %-16s %6d clips\n", k, n[k]; printf "data: %d voices\n", length(v) }' |
    sort >&2
rendered=$(grep -c '^clips/' "$out/manifest.tsv" || true)
[ "$rendered" -lt "$total_jobs" ] &&
    log "warning: $((total_jobs - rendered)) of $total_jobs synthetic clips silent or missing (a rerun retries missing ones)"
log "wrote $out/manifest.tsv ($(grep -vc '^#' "$out/manifest.tsv") clips) and $out/calibration.tsv ($(grep -vc '^#' "$out/calibration.tsv") clips)"
