/*
 * Model files: saving, loading from a file or from memory, feature checks.
 *
 * Byte layout, format versions 1 to 4. Every integer is little-endian;
 * offsets in bytes. The file ends exactly after the CRC. A model with int8
 * weights is saved as version 4, one with detection smoothing as version 3,
 * one with only detection thresholds as version 2, any other as version 1,
 * so files without them stay readable by older builds.
 *
 *   0   4   magic "ESM1"
 *   4   4   u32 format version (1, 2 or 3)
 *   8  24   feature spec, six u32: sample_rate_hz, fft_size, window_samples,
 *           hop_samples, mel_bands, normalisation
 *  32   4   u32 input_size                          1..ES_MAX_UNITS
 *  36   4   u32 layer_count                         1..ES_MAX_LAYERS
 *  40   4   u32 label_count = last layer's output   1..ES_MAX_OUTPUTS
 *  44  20×layer_count  one record per layer, five u32:
 *           type (es_layer_type), units (per direction, 1..ES_MAX_UNITS;
 *           STACK: kernel x its input size), activation (es_activation),
 *           kernel (CONV1D, STACK: 1..ES_MAX_KERNEL, else 0), weight encoding
 *           (0 = float32; version 4: 1 = int8 with a scale per row; others
 *           reserved). A STACK
 *           is only ever the first layer; builds older than it reject its
 *           type (8) by number.
 *   .   .   label_count labels, each a NUL-terminated string of at most
 *           ES_MAX_LABEL bytes including the NUL (printable ASCII without
 *           '"', '\\' and ',', so labels are safe in JSON and CSV)
 *   .  4×label_count  versions 2 to 4: float32 detection threshold of each
 *           output, in [0, 1] (0: none of its own; version 4: all zeros
 *           when the model carries none)
 *   .  4×label_count  versions 3 and 4: u32 detection smoothing of each
 *           output in ms, 0..ES_MODEL_MAX_SMOOTH_MS (0: none of its own;
 *           version 4: all zeros when the model carries none)
 *   .   8   u64 parameter count: must equal what the layer list implies
 *   .   .   the parameters, layer after layer, es_model_params() order (see
 *           rnn.h): a float32 layer's as n float32; an int8 layer's (rows:
 *           gates x units; cols: [W U] side by side, K x in for CONV1D), per
 *           direction: rows float32 scales (finite, >= 0), rows x cols int8
 *           weights in -127..127 (W then U, row-major, as the floats they
 *           stand for: weight = int8 x its row's scale), then its biases as
 *           float32
 *   .   4   u32 CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, initial
 *           and final XOR 0xFFFFFFFF) of every byte before it
 *
 * The loader checks the structure first, every count against the bytes
 * that remain before allocating anything, then the CRC, then that every
 * weight is finite. The structure comes before the CRC so that a fuzzer
 * reaches the parser; a structural error on a file whose CRC is also wrong
 * says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels_int8.h"
#include "model_internal.h"

#define ES_MODEL_MAGIC "ESM1"
#define ES_MODEL_FORMAT_VERSION 1u
#define ES_MODEL_FORMAT_VERSION_THRESHOLDS 2u
#define ES_MODEL_FORMAT_VERSION_SMOOTHING 3u
#define ES_MODEL_FORMAT_VERSION_INT8 4u
#define ES_WEIGHTS_FLOAT32 0u
#define ES_WEIGHTS_INT8_ROWS 1u
#define ES_HEADER_BYTES 44u
#define ES_LAYER_RECORD_BYTES 20u
#define ES_CRC_BYTES 4u

static uint32_t crc32_ieee(const unsigned char *bytes, size_t size) {
    /* Built per call: 256 x 8 shifts cost nothing next to reading a model,
     * and no shared mutable table is needed. */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1u ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

const char *es_layer_type_name(es_layer_type type) {
    switch (type) {
    case ES_LAYER_DENSE:
        return "DENSE";
    case ES_LAYER_RNN:
        return "RNN";
    case ES_LAYER_GRU:
        return "GRU";
    case ES_LAYER_LSTM:
        return "LSTM";
    case ES_LAYER_CONV1D:
        return "CONV1D";
    case ES_LAYER_BIDIR_GRU:
        return "BIDIR_GRU";
    case ES_LAYER_BIDIR_LSTM:
        return "BIDIR_LSTM";
    case ES_LAYER_STACK:
        return "STACK";
    }
    return "unknown type";
}

/* ---- writing ------------------------------------------------------------------- */

typedef struct byte_writer {
    unsigned char *bytes;
    size_t pos;
} byte_writer;

static void put_u32(byte_writer *w, uint32_t v) {
    for (int i = 0; i < 4; i++)
        w->bytes[w->pos++] = (unsigned char)(v >> (8 * i));
}

static void put_u64(byte_writer *w, uint64_t v) {
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_f32(byte_writer *w, float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(w, bits);
}

/* Bytes of one layer's parameters in the file (int8: see the layout above). */
static size_t weight_bytes(const es_layer_shape *shape, size_t param_count, int int8) {
    if (!int8) return param_count * 4;
    return (size_t)shape->directions * (shape->rows * 4 + shape->matrix_params + shape->biases * 4);
}

static size_t layer_weight_bytes(const es_layer *layer) {
    es_layer_shape shape;
    es_layer_shape_of(layer->type, layer->input_size, layer->units, layer->kernel, &shape);
    return weight_bytes(&shape, layer->param_count, layer->quantised);
}

/* An int8 layer's parameters: per direction its scales, int8 matrices, biases. */
static void put_int8_layer(byte_writer *w, const es_layer *layer, const float *params) {
    es_layer_shape shape;
    es_layer_shape_of(layer->type, layer->input_size, layer->units, layer->kernel, &shape);
    for (int dir = 0; dir < shape.directions; dir++) {
        const float *scales = layer->row_scales + (size_t)dir * shape.rows;
        const float *p = params + (size_t)dir * (shape.matrix_params + shape.biases);
        for (size_t r = 0; r < shape.rows; r++)
            put_f32(w, scales[r]);
        for (size_t i = 0; i < shape.matrix_params; i++)
            w->bytes[w->pos++] =
                (unsigned char)es_int8_weight(p[i], scales[es_layer_shape_row(&shape, i)]);
        for (size_t i = 0; i < shape.biases; i++)
            put_f32(w, p[shape.matrix_params + i]);
    }
}

/* The whole file image, or NULL (with err filled). */
static unsigned char *serialise(const es_model *m, size_t *size, es_error *err) {
    if (m->layer_count == 0) {
        es_error_set(err, ES_RNN_ERR_ARG, "the model has no layers");
        return NULL;
    }
    if (m->output_size > ES_MAX_OUTPUTS) {
        es_error_set(err, ES_RNN_ERR_ARG, "%d outputs, a model file holds at most %d",
                     m->output_size, ES_MAX_OUTPUTS);
        return NULL;
    }
    size_t total = ES_HEADER_BYTES + (size_t)m->layer_count * ES_LAYER_RECORD_BYTES;
    for (int i = 0; i < m->output_size; i++)
        total += strlen(es_model_label(m, i)) + 1;
    /* version 4 carries both, zeros standing for none */
    const int int8 = es_model_is_quantised(m);
    const int with_smoothing = m->has_smoothing || int8;
    const int with_thresholds = m->has_thresholds || with_smoothing;
    if (with_thresholds) total += (size_t)m->output_size * 4;
    if (with_smoothing) total += (size_t)m->output_size * 4;
    total += 8 + ES_CRC_BYTES;
    for (int l = 0; l < m->layer_count; l++)
        total += layer_weight_bytes(&m->layers[l]);
    unsigned char *bytes = malloc(total);
    if (!bytes) {
        es_error_set(err, ES_RNN_ERR_NOMEM, "no memory for a %zu-byte model image", total);
        return NULL;
    }
    byte_writer w = {bytes, 0};
    memcpy(bytes, ES_MODEL_MAGIC, 4);
    w.pos = 4;
    put_u32(&w, int8                ? ES_MODEL_FORMAT_VERSION_INT8
                : m->has_smoothing  ? ES_MODEL_FORMAT_VERSION_SMOOTHING
                : m->has_thresholds ? ES_MODEL_FORMAT_VERSION_THRESHOLDS
                                    : ES_MODEL_FORMAT_VERSION);
    const es_feature_spec *f = &m->features;
    put_u32(&w, f->sample_rate_hz);
    put_u32(&w, f->fft_size);
    put_u32(&w, f->window_samples);
    put_u32(&w, f->hop_samples);
    put_u32(&w, f->mel_bands);
    put_u32(&w, f->normalisation);
    put_u32(&w, (uint32_t)m->input_size);
    put_u32(&w, (uint32_t)m->layer_count);
    put_u32(&w, (uint32_t)m->output_size);
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        put_u32(&w, (uint32_t)layer->type);
        put_u32(&w, (uint32_t)layer->units);
        put_u32(&w, (uint32_t)layer->activation);
        put_u32(&w, (uint32_t)layer->kernel);
        put_u32(&w, layer->quantised ? ES_WEIGHTS_INT8_ROWS : ES_WEIGHTS_FLOAT32);
    }
    for (int i = 0; i < m->output_size; i++) {
        const char *label = es_model_label(m, i);
        size_t n = strlen(label) + 1;
        memcpy(bytes + w.pos, label, n);
        w.pos += n;
    }
    for (int i = 0; with_thresholds && i < m->output_size; i++)
        put_f32(&w, m->has_thresholds ? m->thresholds[i] : 0.0f);
    for (int i = 0; with_smoothing && i < m->output_size; i++)
        put_u32(&w, m->has_smoothing ? (uint32_t)m->smooth_ms[i] : 0u);
    put_u64(&w, (uint64_t)m->param_count);
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        const float *params = m->params + layer->param_offset;
        if (layer->quantised)
            put_int8_layer(&w, layer, params);
        else
            for (size_t i = 0; i < layer->param_count; i++)
                put_f32(&w, params[i]);
    }
    put_u32(&w, crc32_ieee(bytes, w.pos));
    *size = w.pos;
    return bytes;
}

int es_model_save(const es_model *m, const char *path, es_error *err) {
    if (!m || !path) return es_error_set(err, ES_RNN_ERR_ARG, "no model or no path");
    size_t size = 0;
    unsigned char *bytes = serialise(m, &size, err);
    if (!bytes) return err ? err->code : ES_RNN_ERR_NOMEM;
    FILE *file = fopen(path, "wb");
    if (!file) {
        int saved = errno;
        free(bytes);
        return es_error_set(err, ES_RNN_ERR_IO, "cannot create %s: %s", path, strerror(saved));
    }
    size_t written = fwrite(bytes, 1, size, file);
    int saved = errno;
    int closed = fclose(file);
    free(bytes);
    if (written != size || closed != 0) {
        if (closed != 0) saved = errno;
        remove(path); /* a half-written model must not be loaded later */
        return es_error_set(err, ES_RNN_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    if (err) {
        err->code = ES_RNN_OK;
        err->why[0] = '\0';
    }
    return ES_RNN_OK;
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct byte_reader {
    const unsigned char *bytes;
    size_t size;
    size_t pos;
    int crc_ok;
    es_error *err;
} byte_reader;

/* A structural error; notes a CRC mismatch as the likely cause. */
static int reject(byte_reader *r, const char *fmt, ...) {
    char what[200];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return es_error_set(r->err, ES_RNN_ERR_FORMAT, "%s%s", what,
                        r->crc_ok ? "" : " (and the CRC-32 does not match: the file is corrupt)");
}

static int need(byte_reader *r, size_t n, const char *what) {
    if (r->size - r->pos >= n) return 0;
    return reject(r, "truncated: %s needs %zu bytes at offset %zu, the file is %zu bytes", what, n,
                  r->pos, r->size);
}

static uint32_t get_u32(byte_reader *r) {
    const unsigned char *b = r->bytes + r->pos;
    r->pos += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int read_u32(byte_reader *r, uint32_t *v, const char *what) {
    int rc = need(r, 4, what);
    if (rc) return rc;
    *v = get_u32(r);
    return 0;
}

typedef struct layer_record {
    uint32_t type, units, activation, kernel, encoding;
} layer_record;

static int read_layer(byte_reader *r, uint32_t version, int index, uint32_t input_size,
                      layer_record *rec, uint32_t *output_size) {
    size_t at = r->pos;
    int rc = need(r, ES_LAYER_RECORD_BYTES, "a layer record");
    if (rc) return rc;
    rec->type = get_u32(r);
    rec->units = get_u32(r);
    rec->activation = get_u32(r);
    rec->kernel = get_u32(r);
    rec->encoding = get_u32(r);
    const char *name = es_layer_type_name((es_layer_type)rec->type);
    if (rec->type < ES_LAYER_DENSE || rec->type > ES_LAYER_STACK)
        return reject(r, "layer %d: unknown type %u at offset %zu", index, rec->type, at);
    const int stack = rec->type == ES_LAYER_STACK;
    const int takes_kernel = stack || rec->type == ES_LAYER_CONV1D;
    if (stack && index > 0)
        return reject(r, "layer %d (STACK) at offset %zu: a STACK can only be the first layer",
                      index, at);
    int bidir = rec->type == ES_LAYER_BIDIR_GRU || rec->type == ES_LAYER_BIDIR_LSTM;
    if (rec->units < 1 || rec->units > (uint32_t)(bidir ? ES_MAX_UNITS / 2 : ES_MAX_UNITS))
        return reject(r, "layer %d (%s): %u units, outside 1..%d (offset %zu)", index, name,
                      rec->units, bidir ? ES_MAX_UNITS / 2 : ES_MAX_UNITS, at + 4);
    if (rec->activation > ES_ACT_SOFTMAX)
        return reject(r, "layer %d (%s): unknown activation %u at offset %zu", index, name,
                      rec->activation, at + 8);
    if (takes_kernel ? rec->kernel < 1 || rec->kernel > ES_MAX_KERNEL : rec->kernel != 0)
        return reject(r, "layer %d (%s): kernel %u, expected %s (offset %zu)", index, name,
                      rec->kernel, takes_kernel ? "1..64" : "0", at + 12);
    if (stack && rec->units != rec->kernel * input_size)
        return reject(r, "layer %d (STACK): %u units, expected kernel %u x %u inputs (offset %zu)",
                      index, rec->units, rec->kernel, input_size, at + 4);
    const int int8_allowed = version >= ES_MODEL_FORMAT_VERSION_INT8 && !stack;
    if (rec->encoding != ES_WEIGHTS_FLOAT32 &&
        !(rec->encoding == ES_WEIGHTS_INT8_ROWS && int8_allowed))
        return reject(r, "layer %d (%s): weight encoding %u is not supported (offset %zu)", index,
                      name, rec->encoding, at + 16);
    *output_size = bidir ? 2 * rec->units : rec->units;
    return 0;
}

static int read_label(byte_reader *r, int index, char *label) {
    size_t at = r->pos, left = r->size - r->pos;
    size_t limit = left < ES_MAX_LABEL ? left : ES_MAX_LABEL;
    const unsigned char *end = memchr(r->bytes + at, '\0', limit);
    if (!end) {
        if (limit < ES_MAX_LABEL)
            return reject(r, "truncated: label %d at offset %zu has no NUL before the end", index,
                          at);
        return reject(r, "label %d at offset %zu is not NUL-terminated within %d bytes", index, at,
                      ES_MAX_LABEL);
    }
    size_t n = (size_t)(end - (r->bytes + at)) + 1;
    memcpy(label, r->bytes + at, n);
    if (!es_label_is_valid(label))
        return reject(r,
                      "label %d at offset %zu has a control character, quote, backslash or "
                      "comma",
                      index, at);
    r->pos += n;
    return 0;
}

static int read_threshold(byte_reader *r, int index, float *threshold) {
    size_t at = r->pos;
    uint32_t bits;
    int rc = read_u32(r, &bits, "a detection threshold");
    if (rc) return rc;
    memcpy(threshold, &bits, sizeof *threshold);
    if (!es_threshold_is_valid(*threshold))
        return reject(r, "threshold of output %d at offset %zu is %g, outside [0, 1]", index, at,
                      (double)*threshold);
    return 0;
}

static int read_smoothing(byte_reader *r, int index, int *smooth_ms) {
    size_t at = r->pos;
    uint32_t ms;
    int rc = read_u32(r, &ms, "a detection smoothing");
    if (rc) return rc;
    if (ms > ES_MODEL_MAX_SMOOTH_MS)
        return reject(r, "smoothing of output %d at offset %zu is %u ms, outside 0..%d", index, at,
                      ms, ES_MODEL_MAX_SMOOTH_MS);
    *smooth_ms = (int)ms;
    return 0;
}

/* Everything a model file says, read and checked before any model is built. */
typedef struct parsed_model {
    uint32_t version, header[6], input_size, layer_count, label_count;
    layer_record records[ES_MAX_LAYERS];
    uint64_t param_count;
    char labels[ES_MAX_OUTPUTS][ES_MAX_LABEL];
    int has_thresholds, has_smoothing;
    float thresholds[ES_MAX_OUTPUTS];
    int smooth_ms[ES_MAX_OUTPUTS];
    uint32_t layer_inputs[ES_MAX_LAYERS];
    size_t weights_at; /* offset of the first weight */
} parsed_model;

/* The CRC of the file's last four bytes, checked against the rest. A mismatch
 * is only reported once the structure has been read, so that a reason naming
 * the broken field comes first (reject() adds the CRC as its likely cause). */
static void check_crc(byte_reader *r, uint32_t *stored, uint32_t *computed) {
    *stored = *computed = 0;
    if (r->size >= 4 + ES_CRC_BYTES) {
        byte_reader tail = {r->bytes, r->size, r->size - ES_CRC_BYTES, 1, r->err};
        *stored = get_u32(&tail);
        *computed = crc32_ieee(r->bytes, r->size - ES_CRC_BYTES);
    }
    r->crc_ok = r->size >= 4 + ES_CRC_BYTES && *stored == *computed;
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* A mutated input almost never carries a matching CRC: accepting any
     * lets the fuzzer reach model building and stepping (scripts/fuzz.sh). */
    r->crc_ok = 1;
#endif
}

/* Version, feature spec and the three counts after the magic. */
static int read_header(byte_reader *r, parsed_model *p) {
    int rc = read_u32(r, &p->version, "the format version");
    if (rc) return rc;
    if (p->version < ES_MODEL_FORMAT_VERSION || p->version > ES_MODEL_FORMAT_VERSION_INT8)
        return reject(r, "format version %u, this build reads versions %u to %u", p->version,
                      ES_MODEL_FORMAT_VERSION, ES_MODEL_FORMAT_VERSION_INT8);
    for (int i = 0; i < 6; i++)
        if ((rc = read_u32(r, &p->header[i], "the feature spec"))) return rc;
    if ((rc = read_u32(r, &p->input_size, "the input size"))) return rc;
    if ((rc = read_u32(r, &p->layer_count, "the layer count"))) return rc;
    if ((rc = read_u32(r, &p->label_count, "the label count"))) return rc;
    if (p->input_size < 1 || p->input_size > ES_MAX_UNITS)
        return reject(r, "input size %u at offset 32, outside 1..%d", p->input_size, ES_MAX_UNITS);
    if (p->layer_count < 1 || p->layer_count > ES_MAX_LAYERS)
        return reject(r, "layer count %u at offset 36, outside 1..%d", p->layer_count,
                      ES_MAX_LAYERS);
    if (p->label_count < 1 || p->label_count > ES_MAX_OUTPUTS)
        return reject(r, "label count %u at offset 40, outside 1..%d", p->label_count,
                      ES_MAX_OUTPUTS);
    return 0;
}

/* The layer records; *param_count is what their shapes need. */
static int read_layers(byte_reader *r, parsed_model *p, uint64_t *param_count) {
    uint32_t layer_input = p->input_size;
    *param_count = 0;
    for (uint32_t l = 0; l < p->layer_count; l++) {
        uint32_t layer_output = 0;
        const layer_record *rec = &p->records[l];
        int rc = read_layer(r, p->version, (int)l, layer_input, &p->records[l], &layer_output);
        if (rc) return rc;
        p->layer_inputs[l] = layer_input;
        *param_count += es_layer_param_count((es_layer_type)rec->type, (int)layer_input,
                                             (int)rec->units, (int)rec->kernel);
        layer_input = layer_output;
    }
    if (p->label_count != layer_input)
        return reject(r, "%u labels for %u outputs of the last layer", p->label_count, layer_input);
    return 0;
}

/* Labels (distinct), then per-output thresholds and smoothing where the
 * version has them. */
static int read_outputs(byte_reader *r, parsed_model *p) {
    const char *label_names[ES_MAX_OUTPUTS];
    int rc;
    for (uint32_t i = 0; i < p->label_count; i++) {
        if ((rc = read_label(r, (int)i, p->labels[i]))) return rc;
        label_names[i] = p->labels[i];
    }
    const int repeated = es_label_repeated(label_names, (int)p->label_count);
    if (repeated >= 0)
        return reject(r, "output %d repeats the label \"%s\" of an earlier output", repeated,
                      p->labels[repeated]);
    p->has_thresholds = p->version >= ES_MODEL_FORMAT_VERSION_THRESHOLDS;
    p->has_smoothing = p->version >= ES_MODEL_FORMAT_VERSION_SMOOTHING;
    for (uint32_t i = 0; p->has_thresholds && i < p->label_count; i++)
        if ((rc = read_threshold(r, (int)i, &p->thresholds[i]))) return rc;
    for (uint32_t i = 0; p->has_smoothing && i < p->label_count; i++)
        if ((rc = read_smoothing(r, (int)i, &p->smooth_ms[i]))) return rc;
    if (p->version >= ES_MODEL_FORMAT_VERSION_INT8) {
        /* version 4 always has room for both; zeros throughout mean none */
        int thresholds = 0, smoothing = 0;
        for (uint32_t i = 0; i < p->label_count; i++) {
            thresholds |= p->thresholds[i] != 0.0f;
            smoothing |= p->smooth_ms[i] != 0;
        }
        p->has_thresholds = thresholds;
        p->has_smoothing = smoothing;
    }
    return 0;
}

/* The parameter count the layers need, and exactly that many weights and the
 * CRC left in the file. */
static int read_weight_extent(byte_reader *r, parsed_model *p, uint64_t expected_params) {
    size_t count_at = r->pos;
    uint32_t low, high;
    int rc;
    if ((rc = read_u32(r, &low, "the parameter count"))) return rc;
    if ((rc = read_u32(r, &high, "the parameter count"))) return rc;
    p->param_count = (uint64_t)high << 32 | low;
    if (p->param_count != expected_params)
        return reject(r, "parameter count %llu at offset %zu, the layers need %llu",
                      (unsigned long long)p->param_count, count_at,
                      (unsigned long long)expected_params);
    p->weights_at = r->pos;
    size_t bytes = 0; /* bounded: ES_MAX_LAYERS layers of at most ~2^39 bytes */
    for (uint32_t l = 0; l < p->layer_count; l++) {
        const layer_record *rec = &p->records[l];
        es_layer_shape shape;
        es_layer_shape_of((es_layer_type)rec->type, (int)p->layer_inputs[l], (int)rec->units,
                          (int)rec->kernel, &shape);
        bytes +=
            weight_bytes(&shape,
                         es_layer_param_count((es_layer_type)rec->type, (int)p->layer_inputs[l],
                                              (int)rec->units, (int)rec->kernel),
                         rec->encoding == ES_WEIGHTS_INT8_ROWS);
    }
    size_t left = r->size - r->pos;
    if (left < ES_CRC_BYTES || bytes > left - ES_CRC_BYTES)
        return reject(r,
                      "truncated: %llu weights and the CRC need %zu bytes at offset %zu, "
                      "%zu remain",
                      (unsigned long long)p->param_count, bytes + ES_CRC_BYTES, p->weights_at,
                      left);
    size_t end = p->weights_at + bytes + ES_CRC_BYTES;
    if (end != r->size)
        return reject(r, "%zu unexpected bytes after the CRC at offset %zu", r->size - end, end);
    return 0;
}

/* One float32 weight of layer l (offset `index` into its parameters),
 * refused when NaN or infinite. */
static int read_finite(byte_reader *r, const parsed_model *p, int l, size_t index, float *value) {
    size_t at = r->pos;
    uint32_t bits = get_u32(r);
    memcpy(value, &bits, sizeof *value);
    if (isfinite(*value)) return 0;
    return es_error_set(r->err, ES_RNN_ERR_FORMAT, "layer %d (%s): weight %zu is %s at offset %zu",
                        l, es_layer_type_name((es_layer_type)p->records[l].type), index,
                        isnan(*value) ? "NaN" : "infinite", at);
}

/* An int8 layer's scales, int8 weights (stored as the floats they stand
 * for) and biases, per direction. */
static int read_int8_layer(byte_reader *r, const parsed_model *p, int l, es_layer *layer,
                           float *params) {
    es_layer_shape shape;
    es_layer_shape_of(layer->type, layer->input_size, layer->units, layer->kernel, &shape);
    layer->row_scales = malloc((size_t)shape.directions * shape.rows * sizeof(float));
    if (!layer->row_scales)
        return es_error_set(r->err, ES_RNN_ERR_NOMEM, "no memory for the scales of layer %d", l);
    layer->quantised = 1;
    for (int dir = 0; dir < shape.directions; dir++) {
        float *scales = layer->row_scales + (size_t)dir * shape.rows;
        float *w = params + (size_t)dir * (shape.matrix_params + shape.biases);
        for (size_t i = 0; i < shape.rows; i++) {
            size_t at = r->pos;
            int rc = read_finite(r, p, l, i, &scales[i]);
            if (rc) return rc;
            if (scales[i] < 0.0f)
                return es_error_set(r->err, ES_RNN_ERR_FORMAT,
                                    "layer %d: row scale %zu is negative at offset %zu", l, i, at);
        }
        for (size_t i = 0; i < shape.matrix_params; i++) {
            int8_t q = (int8_t)r->bytes[r->pos++];
            if (q < -ES_INT8_MAX)
                return es_error_set(r->err, ES_RNN_ERR_FORMAT,
                                    "layer %d: int8 weight %zu is -128 at offset %zu (the "
                                    "range is -127..127)",
                                    l, i, r->pos - 1);
            w[i] = (float)q * scales[es_layer_shape_row(&shape, i)];
        }
        for (size_t i = 0; i < shape.biases; i++) {
            int rc = read_finite(r, p, l, shape.matrix_params + i, &w[shape.matrix_params + i]);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Copies the weights (at r->pos) into m, refusing NaN and infinities with
 * the layer and offset of the first. */
static int read_weights(byte_reader *r, const parsed_model *p, es_model *m) {
    for (int l = 0; l < m->layer_count; l++) {
        es_layer *layer = &m->layers[l];
        float *params = m->params + layer->param_offset;
        if (p->records[l].encoding == ES_WEIGHTS_INT8_ROWS) {
            int rc = read_int8_layer(r, p, l, layer, params);
            if (rc) return rc;
            continue;
        }
        for (size_t i = 0; i < layer->param_count; i++) {
            int rc = read_finite(r, p, l, i, &params[i]);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Builds the model a checked file describes. */
static int build_model(byte_reader *r, const parsed_model *p, es_model **out) {
    es_model *m = NULL;
    const uint32_t *h = p->header;
    es_feature_spec features = {h[0], h[1], h[2], h[3], h[4], h[5]};
    int rc = es_model_create(&features, (int)p->input_size, &m);
    for (uint32_t l = 0; rc == ES_RNN_OK && l < p->layer_count; l++)
        rc = es_model_append_layer(m, (es_layer_type)p->records[l].type, (int)p->records[l].units,
                                   (es_activation)p->records[l].activation,
                                   (int)p->records[l].kernel);
    if (rc) {
        es_model_destroy(m);
        return es_error_set(r->err, rc, "cannot build the model: %s", es_rnn_strerror(rc));
    }
    if ((rc = read_weights(r, p, m))) {
        es_model_destroy(m);
        return rc;
    }
    for (uint32_t i = 0; i < p->label_count; i++)
        memcpy(m->labels[i], p->labels[i], ES_MAX_LABEL);
    m->label_count = (int)p->label_count;
    m->has_thresholds = p->has_thresholds;
    if (p->has_thresholds) memcpy(m->thresholds, p->thresholds, sizeof(float) * p->label_count);
    m->has_smoothing = p->has_smoothing;
    if (p->has_smoothing) memcpy(m->smooth_ms, p->smooth_ms, sizeof(int) * p->label_count);
    if ((rc = es_model_refresh(m))) {
        es_model_destroy(m);
        return es_error_set(r->err, rc, "cannot pack the weights: %s", es_rnn_strerror(rc));
    }
    *out = m;
    return ES_RNN_OK;
}

int es_model_load_memory(const void *data, size_t size, es_model **out, es_error *err) {
    if (err) {
        err->code = ES_RNN_OK;
        err->why[0] = '\0';
    }
    if (!out) return es_error_set(err, ES_RNN_ERR_ARG, "no place for the model");
    *out = NULL;
    if (!data && size > 0) return es_error_set(err, ES_RNN_ERR_ARG, "no bytes");
    byte_reader r = {data, size, 0, 1, err};
    if (size < 4 || memcmp(data, ES_MODEL_MAGIC, 4) != 0)
        return es_error_set(err, ES_RNN_ERR_FORMAT,
                            "not an earshot model: the magic \"%s\" is missing", ES_MODEL_MAGIC);
    uint32_t stored_crc, computed_crc;
    check_crc(&r, &stored_crc, &computed_crc);
    r.pos = 4;
    /* About 10 kB on the stack: labels, thresholds and layer records of the
     * largest model the format allows, so that a bad file allocates nothing. */
    parsed_model p;
    uint64_t expected_params;
    int rc = read_header(&r, &p);
    if (!rc) rc = read_layers(&r, &p, &expected_params);
    if (!rc) rc = read_outputs(&r, &p);
    if (!rc) rc = read_weight_extent(&r, &p, expected_params);
    if (rc) return rc;
    if (!r.crc_ok)
        return es_error_set(err, ES_RNN_ERR_FORMAT,
                            "CRC-32 mismatch at offset %zu: the file is corrupt (stored %08x, "
                            "computed %08x)",
                            size - ES_CRC_BYTES, stored_crc, computed_crc);
    return build_model(&r, &p, out);
}

/* Reads a whole model file. Only a regular file of at most
 * ES_MODEL_FILE_MAX_BYTES is read: a FIFO with no writer would block the
 * caller (the daemon's main loop on a reload) forever, and a device such as
 * /dev/zero would be read for gigabytes before the format check could
 * refuse it. The path is opened without blocking, so that even a FIFO is
 * only looked at; the checks are made on the open descriptor, so the file
 * read is the file checked. */
static int read_whole_file(const char *path, unsigned char **out, size_t *size, es_error *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return es_error_set(err, ES_RNN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat info;
    int rc = ES_RNN_OK;
    if (fstat(fd, &info) != 0)
        rc = es_error_set(err, ES_RNN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    else if (S_ISDIR(info.st_mode))
        rc = es_error_set(err, ES_RNN_ERR_IO, "cannot read %s: it is a directory", path);
    else if (!S_ISREG(info.st_mode))
        rc = es_error_set(
            err, ES_RNN_ERR_IO,
            "cannot read %s: not a regular file (a FIFO, device or socket is not a model)", path);
    else if ((uint64_t)info.st_size > ES_MODEL_FILE_MAX_BYTES)
        rc = es_error_set(err, ES_RNN_ERR_FORMAT,
                          "%s is larger than any model earshot runs (%lld bytes, at most %d)", path,
                          (long long)info.st_size, ES_MODEL_FILE_MAX_BYTES);
    if (rc != ES_RNN_OK) {
        close(fd);
        return rc;
    }
    /* One byte more than the size fstat gave: a file that grew since is
     * noticed and refused rather than read without bound. */
    size_t capacity = (size_t)info.st_size + 1;
    unsigned char *bytes = malloc(capacity);
    size_t length = 0;
    while (bytes && length < capacity) {
        ssize_t n = read(fd, bytes + length, capacity - length);
        if (n > 0) {
            length += (size_t)n;
        } else if (n == 0) {
            break;
        } else if (errno != EINTR) {
            rc = es_error_set(err, ES_RNN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    close(fd);
    if (rc == ES_RNN_OK && !bytes)
        rc = es_error_set(err, ES_RNN_ERR_NOMEM, "no memory to read %s", path);
    else if (rc == ES_RNN_OK && length == capacity)
        rc = es_error_set(err, ES_RNN_ERR_IO, "cannot read %s: it grew while being read", path);
    if (rc != ES_RNN_OK) {
        free(bytes);
        return rc;
    }
    *out = bytes;
    *size = length;
    return ES_RNN_OK;
}

int es_model_load_file(const char *path, es_model **out, es_error *err) {
    if (out) *out = NULL;
    if (!path || !out)
        return es_error_set(err, ES_RNN_ERR_ARG, "no path or no place for the model");
    unsigned char *bytes = NULL;
    size_t size = 0;
    int rc = read_whole_file(path, &bytes, &size, err);
    if (rc != ES_RNN_OK) return rc;
    rc = es_model_load_memory(bytes, size, out, err);
    free(bytes);
    return rc;
}

int es_model_check_features(const es_model *m, const es_feature_spec *want, es_error *err) {
    if (!m || !want) return es_error_set(err, ES_RNN_ERR_ARG, "no model or no feature spec");
    const es_feature_spec *have = &m->features;
    struct {
        const char *name;
        uint32_t model, given;
    } fields[] = {
        {"sample_rate_hz", have->sample_rate_hz, want->sample_rate_hz},
        {"fft_size", have->fft_size, want->fft_size},
        {"window_samples", have->window_samples, want->window_samples},
        {"hop_samples", have->hop_samples, want->hop_samples},
        {"mel_bands", have->mel_bands, want->mel_bands},
        {"normalisation", have->normalisation, want->normalisation},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].model != fields[i].given)
            return es_error_set(err, ES_RNN_ERR_FEATURES,
                                "%s: the model expects %u, the front end gives %u", fields[i].name,
                                fields[i].model, fields[i].given);
    if (err) {
        err->code = ES_RNN_OK;
        err->why[0] = '\0';
    }
    return ES_RNN_OK;
}
