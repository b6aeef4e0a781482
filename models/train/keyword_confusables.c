/*
 * train-keyword's confusable phrases (factory.h, step 2): near misses made
 * from the phrase's words and espeak-ng phonemes.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyword_internal.h"

/* ---- phonemes and confusable phrases ------------------------------------------------ */

/* espeak-ng's English phoneme mnemonics, longest first where one begins another. */
static const char *const vowels[] = {
    "aI@", "aU@", "i@3", "eI", "aI", "aU", "OI", "oU", "@U", "i@", "e@", "U@", "O@", "o@",
    "a@",  "A@",  "3:",  "i:", "u:", "A:", "O:", "a#", "@L", "@2", "@5", "I2", "I#", "E2",
    "V",   "U",   "I",   "E",  "a",  "0",  "@",  "3",  "i",  "u",  "O",  "A",  "e",  "o"};
static const char *const consonants[] = {
    "tS", "dZ", "t#", "t2", "d#", "n-", "l/", "r-", "T", "D", "S", "Z", "N", "j", "w", "h",
    "p",  "b",  "t",  "d",  "k",  "g",  "f",  "v",  "s", "z", "m", "n", "l", "r", "x", "?"};
/* Substitutes: a clear vowel for a vowel; a consonant of the same manner. */
static const char *const clear_vowels[] = {"a", "A:", "E", "eI", "I",  "i:", "0",  "O:", "oU",
                                           "U", "u:", "V", "aI", "aU", "OI", "3:", "e@"};
static const char *const manner_groups[][9] = {
    {"p", "b", "t", "d", "k", "g", NULL},
    {"f", "v", "T", "D", "s", "z", "S", "Z", NULL},
    {"m", "n", "N", NULL},
    {"l", "r", "w", "j", NULL},
    {"tS", "dZ", "S", NULL},
};
/* Weak vowels: changing one hardly changes the word, so it would be a positive. */
static const char *const weak_vowels[] = {"@", "3", "@2", "@5", "I2", "I#", "i", "a#", "@L"};

typedef struct token {
    char text[8];
    int is_vowel, is_phoneme; /* stress marks and word breaks are neither */
} token;

static int in_list(const char *s, const char *const *list, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static int match_longest(const char *at, const char *const *list, size_t count) {
    int best = 0;
    for (size_t i = 0; i < count; i++) {
        const int n = (int)strlen(list[i]);
        if (n > best && strncmp(at, list[i], (size_t)n) == 0) best = n;
    }
    return best;
}

static int tokenize(const char *phonemes, token *tokens) {
    int count = 0;
    for (const char *p = phonemes; *p && count < MAX_TOKENS;) {
        token *t = &tokens[count++];
        memset(t, 0, sizeof *t);
        const int v = match_longest(p, vowels, COUNT_OF(vowels));
        const int c = match_longest(p, consonants, COUNT_OF(consonants));
        int n = 1;
        if (v > 0 && v >= c) {
            n = v;
            t->is_vowel = t->is_phoneme = 1;
        } else if (c > 0) {
            n = c;
            t->is_phoneme = 1;
        } else if (*p == ' ' || *p == '_') {
            t->text[0] = ' ';
            p++;
            continue;
        }
        memcpy(t->text, p, (size_t)n);
        t->text[n] = '\0';
        p += n;
    }
    return count;
}

const char *const confusable_kind_names[CONFUSABLE_KINDS] = {
    "whole words: its own alone, beside other words or swapped (one-word phrases: other words)",
    "its first or last half or two thirds", "one phoneme changed", "one phoneme dropped"};

static void confusable_add(confusables *c, const char *text, int kind) {
    if (c->count >= MAX_CONFUSABLES || !text[0]) return;
    for (int i = 0; i < c->count; i++)
        if (strcmp(c->items[i], text) == 0) return;
    char *copy = strdup(text);
    if (!copy) return;
    c->kinds[c->count] = (unsigned char)kind;
    c->items[c->count++] = copy;
}

/* "[[" + tokens[from, to) with `replace` at `at` (NULL: delete it) + "]]". */
static void phoneme_text(const token *tokens, int from, int to, int at, const char *replace,
                         char *out, size_t size) {
    snprintf(out, size, "[[");
    for (int i = from; i < to; i++) {
        const char *piece = i == at ? replace : tokens[i].text;
        if (piece) strncat(out, piece, size - strlen(out) - 3);
    }
    strncat(out, "]]", size - strlen(out) - 1);
}

/* Common words to pair with the phrase's own words and to make keyword-free
 * sentences when data/ is missing. */
static const char *const common_words[] = {
    "the",     "a",      "and",    "you",    "there",  "that",   "this",    "my",     "your",
    "we",      "they",   "it",     "is",     "was",    "will",   "can",     "not",    "with",
    "from",    "about",  "when",   "what",   "where",  "good",   "new",     "old",    "small",
    "big",     "house",  "water",  "light",  "door",   "window", "table",   "music",  "morning",
    "evening", "today",  "friend", "people", "little", "garden", "kitchen", "please", "thanks",
    "maybe",   "always", "never",  "really", "very",   "quite",  "again",   "later",  "soon",
    "come",    "take",   "make",   "look",   "think",  "know",   "want",    "call",   "play",
    "read",    "walk",   "talk",   "open",   "close",  "turn",   "bring",   "paper",  "river",
    "street",  "city",   "yellow", "green",  "quiet",  "happy",  "letter",  "number", "story"};

int phrase_has_word(const char *phrase, const char *word) {
    const size_t n = strlen(word);
    for (const char *p = phrase; (p = strstr(p, word)) != NULL; p += n)
        if ((p == phrase || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return 1;
    return 0;
}

const char *other_word(const char *phrase, es_rng *rng) {
    for (;;) {
        const char *w = common_words[es_rng_below(rng, (int)COUNT_OF(common_words))];
        if (!phrase_has_word(phrase, w)) return w;
    }
}

/* The phrase's words alone and beside other words, its first and last
 * parts, and single-phoneme substitutions and deletions. */
void make_confusables(const char *phrase, const char *phonemes, es_rng *rng, confusables *out) {
    char words[MAX_PHRASE_WORDS][MAX_PHRASE_BYTES + 1];
    int word_count = 0;
    char copy[MAX_PHRASE_BYTES + 1];
    snprintf(copy, sizeof copy, "%s", phrase);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && word_count < MAX_PHRASE_WORDS;
         w = strtok_r(NULL, " ", &save))
        snprintf(words[word_count++], sizeof words[0], "%s", w);
    char text[256];
    if (word_count > 1) {
        for (int i = 0; i < word_count; i++) {
            confusable_add(out, words[i], CONFUSABLE_WORDS);
            for (int k = 0; k < 3; k++) {
                snprintf(text, sizeof text, "%s %s", words[i], other_word(phrase, rng));
                confusable_add(out, text, CONFUSABLE_WORDS);
                snprintf(text, sizeof text, "%s %s", other_word(phrase, rng), words[i]);
                confusable_add(out, text, CONFUSABLE_WORDS);
            }
        }
        /* The words in another order or with one left out. */
        snprintf(text, sizeof text, "%s %s", words[word_count - 1], words[0]);
        confusable_add(out, text, CONFUSABLE_WORDS);
    } else {
        for (int k = 0; k < 3; k++) {
            snprintf(text, sizeof text, "the %s", other_word(phrase, rng));
            confusable_add(out, text, CONFUSABLE_WORDS);
        }
    }
    out->text_count = out->count;

    token tokens[MAX_TOKENS];
    const int count = tokenize(phonemes, tokens);
    int phoneme_at[MAX_TOKENS], phoneme_count = 0;
    for (int i = 0; i < count; i++)
        if (tokens[i].is_phoneme) phoneme_at[phoneme_count++] = i;
    if (phoneme_count >= 4) {
        /* First and last parts: shared syllables. */
        const int cuts[] = {phoneme_count / 2, (2 * phoneme_count + 2) / 3};
        for (size_t k = 0; k < COUNT_OF(cuts); k++) {
            phoneme_text(tokens, 0, phoneme_at[cuts[k]], -1, NULL, text, sizeof text);
            confusable_add(out, text, CONFUSABLE_PART);
            phoneme_text(tokens, phoneme_at[phoneme_count - cuts[k]], count, -1, NULL, text,
                         sizeof text);
            confusable_add(out, text, CONFUSABLE_PART);
        }
    }
    /* Training voices say only these, the words and parts; the rest are
     * calibration and test material. One phoneme away from the phrase ("open
     * sezame"), a near miss is too close to reject without rejecting the phrase
     * too: trained as negatives, they were still accepted half the time while
     * recall on unseen voices fell ("open sesame" 98.1 % without them, 72.5 %
     * with; in noise 96 % against 50 %; "hey nova" 97.5 % against 85.0 %;
     * README). The model card reports how many of them it accepts. */
    out->trained_count = out->count;
    for (int p = 0; p < phoneme_count; p++) {
        const token *t = &tokens[phoneme_at[p]];
        if (t->is_vowel && in_list(t->text, weak_vowels, COUNT_OF(weak_vowels))) continue;
        for (int k = 0; k < 2; k++) {
            const char *replace = NULL;
            if (t->is_vowel) {
                replace = clear_vowels[es_rng_below(rng, (int)COUNT_OF(clear_vowels))];
            } else {
                for (size_t g = 0; g < COUNT_OF(manner_groups) && !replace; g++) {
                    int n = 0, member = 0;
                    while (manner_groups[g][n]) {
                        member |= strcmp(manner_groups[g][n], t->text) == 0;
                        n++;
                    }
                    if (member) replace = manner_groups[g][es_rng_below(rng, n)];
                }
            }
            if (replace && strcmp(replace, t->text) != 0) {
                phoneme_text(tokens, 0, count, phoneme_at[p], replace, text, sizeof text);
                confusable_add(out, text, CONFUSABLE_CHANGED);
            }
        }
        if (phoneme_count >= 4 && p > 0) {
            phoneme_text(tokens, 0, count, phoneme_at[p], NULL, text, sizeof text);
            confusable_add(out, text, CONFUSABLE_DROPPED);
        }
    }
}

void confusables_free(confusables *c) {
    for (int i = 0; i < c->count; i++)
        free(c->items[i]);
}
