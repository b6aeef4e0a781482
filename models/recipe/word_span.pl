#!/usr/bin/perl
# word_span.pl WAV... — where the one word of a short recorded clip is.
#
# Speech Commands clips hold one word somewhere in a second, with the room and
# the microphone's noise around it; their files say nothing of where. For each
# 16 kHz mono 16-bit WAV named, prints `PATH<TAB>START_S<TAB>END_S<TAB>SNR_DB`,
# or `PATH<TAB>-<TAB>-<TAB>SNR_DB` when no word stands out of the clip's own
# noise (the clip is then dropped by the recipe).
#
# The rule, on 25 ms frames every 10 ms (the front end's): the clip's floor is
# the 10th percentile of frame energies and its peak the loudest frame; a frame
# is loud when it is above the floor by a third of the distance to the peak
# (at least 6 dB) and within 35 dB of the peak (a floor of near digital silence
# would let breaths and clicks in). Loud runs closer than 150 ms are one run (the closure of a
# stop consonant, as in "six", is silent); the word is the run with the most
# energy, widened by 20 ms each side for the soft ends of fricatives. A clip
# whose peak is under 15 dB above its floor, or whose word is under 100 ms,
# has no word found.
#
# word_span.pl --whole WAV... prints each clip's whole length as the word's span,
# for sets trimmed to the word (FSDD), whose floor would be the word itself.
use strict;
use warnings;

my ($RATE, $WINDOW, $HOP) = (16000, 400, 160);
my ($MIN_SNR_DB, $MIN_WORD_S, $GAP_FRAMES, $WIDEN_FRAMES, $BELOW_PEAK_DB) = (15, 0.10, 15, 2, 35);

sub frame_energies_db {
    my ($path) = @_;
    open(my $in, '<:raw', $path) or die "word_span.pl: $path: $!\n";
    local $/;
    my $bytes = <$in>;
    close $in;
    # The data chunk: WAV files from sox have it after "fmt " (and maybe LIST).
    my $at = index($bytes, 'data');
    die "word_span.pl: $path: no data chunk\n" if $at < 0;
    my @s = unpack('s<*', substr($bytes, $at + 8));
    my @db;
    for (my $i = 0; $i + $WINDOW <= @s; $i += $HOP) {
        my $e = 0;
        $e += $_ * $_ for @s[$i .. $i + $WINDOW - 1];
        push @db, 10 * log($e / $WINDOW / 32768**2 + 1e-12) / log(10);
    }
    return (scalar(@s) / $RATE, @db);
}

my $whole = @ARGV && $ARGV[0] eq '--whole' ? shift @ARGV : 0;
for my $path (@ARGV) {
    my ($length, @db) = frame_energies_db($path);
    if ($whole) {
        printf "%s\t0.000\t%.3f\t-\n", $path, $length;
        next;
    }
    if (@db < 10) { print "$path\t-\t-\t0.0\n"; next; }
    my @sorted = sort { $a <=> $b } @db;
    my $floor = $sorted[int(0.1 * $#sorted)];
    my $peak = $sorted[-1];
    my $snr = $peak - $floor;
    my $threshold = $floor + ($snr / 3 > 6 ? $snr / 3 : 6);
    $threshold = $peak - $BELOW_PEAK_DB if $threshold < $peak - $BELOW_PEAK_DB;
    # Runs of loud frames, joined across short gaps; the one with most energy wins.
    my ($best_from, $best_to, $best_energy) = (-1, -1, -1);
    my ($from, $to, $energy) = (-1, -1, 0);
    for my $i (0 .. $#db) {
        next if $db[$i] < $threshold;
        if ($from >= 0 && $i - $to > $GAP_FRAMES) {
            ($best_from, $best_to, $best_energy) = ($from, $to, $energy) if $energy > $best_energy;
            $from = -1;
        }
        if ($from < 0) { ($from, $energy) = ($i, 0); }
        $to = $i;
        $energy += 10**(($db[$i] - $floor) / 10);
    }
    ($best_from, $best_to, $best_energy) = ($from, $to, $energy) if $from >= 0 && $energy > $best_energy;
    my $start = ($best_from - $WIDEN_FRAMES) * $HOP / $RATE;
    my $end = (($best_to + $WIDEN_FRAMES) * $HOP + $WINDOW) / $RATE;
    $start = 0 if $start < 0;
    $end = $length if $end > $length;
    if ($snr < $MIN_SNR_DB || $best_from < 0 || $end - $start < $MIN_WORD_S) {
        printf "%s\t-\t-\t%.1f\n", $path, $snr;
    } else {
        printf "%s\t%.3f\t%.3f\t%.1f\n", $path, $start, $end, $snr;
    }
}
