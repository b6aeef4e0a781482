#!/usr/bin/perl
# Splits English prose into sentences for keyword-free speech synthesis.
# Usage: sentences.pl KEYWORDS_FILE TEXT_FILE... > sentences.txt
# Output: one distinct sentence a line, in a deterministic pseudo-random order.
# A sentence is kept only if it is 4-24 words of plain letters and punctuation
# (no digits: a synthesiser would read "2" as the keyword "two") and contains
# no keyword as a whole word.
use strict;
use warnings;

my $keywords_file = shift @ARGV or die "usage: sentences.pl KEYWORDS TEXT...\n";
open(my $kf, '<', $keywords_file) or die "sentences.pl: $keywords_file: $!\n";
my %keyword;
while (<$kf>) {
    chomp;
    next if /^\s*(#|$)/;
    $keyword{lc $_} = 1;
}
close $kf;

my %seen;
my @kept;

sub consider {
    my ($s) = @_;
    $s =~ s/[\x{201c}\x{201d}"`()\[\]{}*_]//g;
    $s =~ s/\s+/ /g;
    $s =~ s/^[\s\-,;:']+//;
    $s =~ s/\s+$//;
    return if $s =~ /[^A-Za-z ,;:'.!?\-]/;
    return unless $s =~ /^[A-Z]/ && $s =~ /[.!?]$/;
    return if $s =~ /(\w)\1\1/;    # "aaa", ascii art
    my @words = split / /, $s;
    return if @words < 4 || @words > 24;
    for my $w (@words) {
        my $bare = lc $w;
        $bare =~ s/^[^a-z]+|[^a-z]+$//g;
        return if $keyword{$bare};
        return if length($w) > 20;
    }
    return if $seen{lc $s}++;
    push @kept, $s;
}

for my $file (@ARGV) {
    my $fh;
    if ($file =~ /\.gz$/) {
        open($fh, '-|', 'zcat', '--', $file) or next;
    } else {
        open($fh, '<', $file) or next;
    }
    local $/ = '';    # paragraph mode: sentences may span lines
    while (my $para = <$fh>) {
        $para =~ s/^%$//mg;    # fortune separators
        $para =~ s/\s+/ /g;
        for my $s (split /(?<=[.!?])\s+/, $para) {
            consider($s);
        }
    }
    close $fh;
}

# Deterministic shuffle (FNV-1a of the text) so that any prefix is a varied sample.
sub fnv1a {
    my $h = 2166136261;
    for my $c (unpack('C*', $_[0])) {
        $h = (($h ^ $c) * 16777619) % 4294967296;
    }
    return $h;
}
print "$_\n" for map { $_->[1] } sort { $a->[0] <=> $b->[0] || $a->[1] cmp $b->[1] }
    map { [fnv1a($_), $_] } @kept;
