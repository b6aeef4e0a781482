/*
 * File and stdin input through libsndfile (stream.h).
 *
 * We open the descriptor ourselves so that a missing or unreadable file is
 * reported with errno's words, and an empty file as such, before libsndfile
 * gives its more general "unknown format".
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct es_audio_file {
    SNDFILE *sf;
    int fd; /* stdin stays open */
    es_audio_info info;
};

static int open_descriptor(const char *path, int *fd, es_error *err) {
    if (strcmp(path, "-") == 0) {
        *fd = STDIN_FILENO;
        return 0;
    }
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return es_error_set(err, ES_AUDIO_ERR, "%s", strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return es_error_set(err, ES_AUDIO_ERR, "is a directory");
        if (S_ISREG(st.st_mode) && st.st_size == 0)
            return es_error_set(err, ES_AUDIO_ERR, "empty file");
    }
    return 0;
}

static int check_format(const SF_INFO *sfinfo, es_error *err) {
    if (sfinfo->channels < 1 || sfinfo->channels > ES_AUDIO_MAX_CHANNELS)
        return es_error_set(err, ES_AUDIO_ERR, "%d channels is outside the supported 1-%d",
                            sfinfo->channels, ES_AUDIO_MAX_CHANNELS);
    if (sfinfo->samplerate < ES_AUDIO_MIN_RATE_HZ || sfinfo->samplerate > ES_AUDIO_MAX_RATE_HZ)
        return es_error_set(err, ES_AUDIO_ERR,
                            "sample rate %d Hz is outside the supported %d-%d Hz",
                            sfinfo->samplerate, ES_AUDIO_MIN_RATE_HZ, ES_AUDIO_MAX_RATE_HZ);
    return 0;
}

static void close_descriptor(int fd) {
    if (fd >= 0 && fd != STDIN_FILENO) close(fd);
}

int es_audio_file_open(const char *path, es_audio_file **out, es_error *err) {
    *out = NULL;
    int fd;
    if (open_descriptor(path, &fd, err) != 0) {
        close_descriptor(fd);
        return ES_AUDIO_ERR;
    }
    /* FLAC and some others need to seek, which a pipe cannot. */
    int seekable = lseek(fd, 0, SEEK_CUR) >= 0;
    SF_INFO sfinfo;
    memset(&sfinfo, 0, sizeof sfinfo);
    /* The descriptor is ours to close, once: told to own it, libsndfile also
     * closes it when the open fails, and a second close could then hit a
     * descriptor another thread (earshot file -j) has just opened. */
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &sfinfo, 0);
    if (!sf) {
        const char *reason = sf_strerror(NULL);
        es_error_set(err, ES_AUDIO_ERR, "not an audio file libsndfile reads (%s)%s",
                     reason && *reason ? reason : "unknown format",
                     seekable ? ""
                              : "; a pipe must carry WAV, AU or OGG: save other formats to a file");
        close_descriptor(fd);
        return ES_AUDIO_ERR;
    }
    es_audio_file *file = NULL;
    if (check_format(&sfinfo, err) == 0 && !(file = calloc(1, sizeof *file)))
        es_error_set(err, ES_AUDIO_ERR, "out of memory");
    if (!file) {
        sf_close(sf);
        close_descriptor(fd);
        return ES_AUDIO_ERR;
    }
    file->sf = sf;
    file->fd = fd;
    file->info.sample_rate_hz = sfinfo.samplerate;
    file->info.channels = sfinfo.channels;
    /* Through a pipe libsndfile cannot know the length; it reports a huge
     * placeholder from the header. */
    file->info.frames = sfinfo.seekable ? (int64_t)sfinfo.frames : -1;
    *out = file;
    return 0;
}

void es_audio_file_close(es_audio_file *file) {
    if (!file) return;
    sf_close(file->sf);
    close_descriptor(file->fd);
    free(file);
}

const es_audio_info *es_audio_file_info(const es_audio_file *file) {
    return &file->info;
}

long es_audio_file_read(es_audio_file *file, float *interleaved, size_t max_frames, es_error *err) {
    sf_count_t got = sf_readf_float(file->sf, interleaved, (sf_count_t)max_frames);
    if (got > 0) return (long)got;
    int error = sf_error(file->sf);
    if (error != SF_ERR_NO_ERROR)
        return es_error_set(err, ES_AUDIO_ERR, "read failed (%s)", sf_error_number(error));
    return 0;
}
