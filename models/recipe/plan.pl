#!/usr/bin/perl
# Plans the synthetic part of the training data: one render job a line.
# Usage: plan.pl [--small] [--seed N] [--sentences-per-voice N] [--calibration N]
#                VOICES KEYWORDS NEAR_MISSES CARRIERS SENTENCES > jobs.tsv
# --calibration N: instead, the plan of the calibration set: N more keyword-free
# sentences for every valid-split voice, none it reads in the main plan (which
# stays as it is: the same seed draws it first). Thresholds are calibrated on
# them; the trainer never reads them (models/recipe/README.md).
# VOICES lines: engine<TAB>voice<TAB>split (espeak: "en-us+m3"; flite: "slt"), the
# split from `earshot voices --split` (the rule: models/train/voices.h).
# Job columns: id engine voice rate pitch text prefix split kind label voice_tag
#   rate  espeak words per minute, or flite duration stretch
#   pitch espeak pitch 0-99, or flite mean F0 in Hz
#   prefix the carrier phrase rendered alone to find the keyword's start, or "-"
# Every choice comes from a seeded generator, so the plan is reproducible.
use strict;
use warnings;

my ($small, $seed, $sentences_per_voice, $calibration) = (0, 1, 25, 0);
while (@ARGV && $ARGV[0] =~ /^--/) {
    my $opt = shift @ARGV;
    if ($opt eq '--small') { $small = 1; }
    elsif ($opt eq '--seed') { $seed = shift @ARGV; }
    elsif ($opt eq '--sentences-per-voice') { $sentences_per_voice = shift @ARGV; }
    elsif ($opt eq '--calibration') { $calibration = shift @ARGV; }
    else { die "plan.pl: unknown option $opt\n"; }
}
@ARGV == 5 or die "usage: plan.pl [options] VOICES KEYWORDS NEAR_MISSES CARRIERS SENTENCES\n";
my ($voices_file, $keywords_file, $near_file, $carriers_file, $sentences_file) = @ARGV;

sub read_list {
    my ($file) = @_;
    open(my $fh, '<', $file) or die "plan.pl: $file: $!\n";
    my @items;
    while (<$fh>) {
        chomp;
        next if /^\s*(#|$)/;
        push @items, $_;
    }
    return @items;
}

my @voices = map { [split /\t/] } read_list($voices_file);
# The split is a property of the voice alone (MANIFEST.md: a voice is in exactly
# one split), decided in C by `earshot voices --split` so that train-keyword
# follows the same rule (models/train/voices.h).
my %split_of_voice;
for my $v (@voices) {
    my ($engine, $voice, $split) = @$v;
    defined $split && $split =~ /^(train|valid|test)$/ && @$v == 3
        or die "plan.pl: $voices_file: '" . join("\t", @$v) . "' is not engine<TAB>voice<TAB>split"
        . " (make it with `earshot voices --split`)\n";
    $split_of_voice{"$engine\t$voice"} = $split;
}
sub split_of { return $split_of_voice{"$_[0]\t$_[1]"}; }
my @keywords = read_list($keywords_file);
my @near_misses = read_list($near_file);
my @carriers = read_list($carriers_file);
my @sentences = read_list($sentences_file);

if ($small) {
    # A few voices, yet every split present: CI's smoke run needs all three.
    my (%taken, @chosen);
    my %want = (train => 2, valid => 1, test => 1);
    for my $v (@voices) {
        my $split = split_of(@$v);
        next if $v->[0] eq 'flite' && $v->[1] ne 'kal';
        my $quota = $v->[0] eq 'flite' ? 1 : $want{$split};
        my $key = "$v->[0]:$split";
        next if ($taken{$key} // 0) >= $quota;
        $taken{$key}++;
        push @chosen, $v;
    }
    @voices = @chosen;
    $sentences_per_voice = 5;
}

srand($seed);
sub pick { return $_[int(rand(@_))]; }
sub uniform { my ($lo, $hi) = @_; return $lo + rand($hi - $lo); }

# Base F0 of each flite voice, so a pitch change is relative to the voice's own.
my %flite_f0_hz = (kal => 105, kal16 => 105, slt => 170);

sub prosody {
    my ($engine, $voice) = @_;
    return (int(uniform(120, 211)), int(uniform(25, 76))) if $engine eq 'espeak';
    my $f0 = $flite_f0_hz{$voice} // 120;
    return (sprintf('%.2f', uniform(0.8, 1.25)), int($f0 * uniform(0.8, 1.25)));
}

my $printing = !$calibration;
sub job {
    my ($id, $engine, $voice, $text, $prefix, $kind, $label) = @_;
    my ($rate, $pitch) = prosody($engine, $voice);
    my $split = split_of($engine, $voice);
    print join("\t", $id, $engine, $voice, $rate, $pitch, $text, $prefix, $split, $kind,
               $label, "$engine:$voice"), "\n" if $printing;
}

# Reads `wanted` distinct sentences the voice has not read (%$read), as ID-INDEX.
sub read_sentences {
    my ($engine, $voice, $id, $wanted, $read) = @_;
    $wanted = @sentences - keys %$read if $wanted > @sentences - keys %$read;
    my $goal = keys(%$read) + $wanted;
    while (keys %$read < $goal) {
        my $index = int(rand(@sentences));
        next if $read->{$index}++;
        job("$engine/$voice/$id-$index", $engine, $voice, $sentences[$index], '-', 'sentence', '-');
    }
}

my $carriers_per_keyword = $small ? 1 : 2;
my $near_misses_per_voice = $small ? 4 : 12;
my %read; # the sentences each voice reads
for my $v (@voices) {
    my ($engine, $voice) = @$v;
    my $dir = "$engine/$voice";
    for my $kw (@keywords) {
        job("$dir/kw-$kw-alone", $engine, $voice, $kw, '-', 'keyword', $kw);
        for my $c (1 .. $carriers_per_keyword) {
            my $carrier = pick(@carriers);
            job("$dir/kw-$kw-c$c", $engine, $voice, "$carrier $kw", $carrier, 'keyword', $kw);
        }
    }
    for my $n (1 .. $near_misses_per_voice) {
        my $word = pick(@near_misses);
        my $text = rand() < 0.5 ? $word : pick(@carriers) . " $word";
        job("$dir/near-$n", $engine, $voice, $text, '-', 'sentence', lc $word);
    }
    $read{"$engine:$voice"} = {};
    read_sentences($engine, $voice, 'sent', $sentences_per_voice, $read{"$engine:$voice"});
}

exit 0 unless $calibration;
$printing = 1;
for my $v (@voices) {
    my ($engine, $voice) = @$v;
    next unless split_of($engine, $voice) eq 'valid';
    read_sentences($engine, $voice, 'cal', $calibration, $read{"$engine:$voice"});
}
