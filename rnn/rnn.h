/*
 * rnn — streaming recurrent networks and their model files (inference; the
 * trainer is rnn/train/train.h).
 *
 * A model is a read-only stack of layers over a fixed-size input vector,
 * with named outputs. Many stream states share one model; each state holds
 * every hidden/cell/convolution history of one stream, so one process can
 * serve many streams. Nothing here knows about audio: the model file merely
 * carries the feature configuration its inputs were made with, as numbers.
 *
 * Layer equations (x: input of this step, h: previous output, ⊙: elementwise,
 * σ: logistic sigmoid; all matrices row-major, one row per output unit):
 *   DENSE   y  = act(W x + b)
 *   RNN     h' = tanh(W x + U h + b)
 *   GRU     z  = σ(Wz x + bz + Uz h + cz)          (gate rows ordered z, r, n;
 *           r  = σ(Wr x + br + Ur h + cr)           "reset after" variant, as
 *           n  = tanh(Wn x + bn + r ⊙ (Un h + cn))  in cuDNN and PyTorch)
 *           h' = (1 - z) ⊙ n + z ⊙ h
 *   LSTM    i, f, g, o = σ(.), σ(.), tanh(.), σ(.) of (W x + U h + b), rows i,f,g,o
 *           c' = f ⊙ c + i ⊙ g ;  h' = o ⊙ tanh(c')
 *   CONV1D  y_t = act(b + Σ_{k=0}^{K-1} W_k x_{t-K+1+k}), causal, K = kernel
 *           (history before the stream starts is zeros)
 *   BIDIR   [forward GRU/LSTM over t = 0..T-1 ; backward one over T-1..0],
 *           outputs concatenated; whole-sequence only (no streaming step).
 *   STACK   y_j = [x_{jK} ; x_{jK+1} ; ... ; x_{jK+K-1}], K = kernel, units = K * in:
 *           the K frames up to frame jK+K-1 side by side, once every K frames.
 *           First layer only. The layers after it step once per K frames, on
 *           1/K of the work, and the model's outputs hold their last values in
 *           between (zeros until the first K frames are in): every caller still
 *           sees one output per frame. No parameters.
 * Parameters of a layer are stored in this order: W, U, b (GRU: W, U, b, c).
 * Exact layout per layer (in: input size, u: units, K: kernel), row-major:
 *   DENSE   W[u][in], b[u]
 *   RNN     W[u][in], U[u][u], b[u]
 *   GRU     W[3u][in], U[3u][u], b[3u], c[3u]      (rows z, r, n)
 *   LSTM    W[4u][in], U[4u][u], b[4u]             (rows i, f, g, o)
 *   CONV1D  W[u][K][in], b[u]   (W[j][k] multiplies x_{t-K+1+k}: oldest tap first)
 *   STACK   none
 *   BIDIR_* the forward direction's block (as GRU / LSTM), then the backward one's.
 * A model's parameters are these blocks, layer after layer, in one array.
 * The activation argument applies to DENSE and CONV1D; recurrent layers
 * ignore it (their nonlinearities are fixed by the equations above).
 *
 * Real-time safety: create/load functions allocate and may fail; calls marked
 * [rt] never allocate, lock, log or block.
 */
#ifndef ES_RNN_H
#define ES_RNN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------------- */

enum {
    ES_RNN_OK = 0,
    ES_RNN_ERR_NOMEM = -1,
    ES_RNN_ERR_ARG = -2,      /* a size, type or count is out of range */
    ES_RNN_ERR_IO = -3,       /* the file could not be opened, read or written */
    ES_RNN_ERR_FORMAT = -4,   /* the bytes are not a valid model (see `why`) */
    ES_RNN_ERR_FEATURES = -5, /* the model expects other features */
    ES_RNN_ERR_STREAMING = -6 /* a BIDIR model cannot step frame by frame */
};
const char *es_rnn_strerror(int code);

/* ---- models ------------------------------------------------------------------ */

typedef enum es_layer_type {
    ES_LAYER_DENSE = 1,
    ES_LAYER_RNN = 2,
    ES_LAYER_GRU = 3,
    ES_LAYER_LSTM = 4,
    ES_LAYER_CONV1D = 5,
    ES_LAYER_BIDIR_GRU = 6,
    ES_LAYER_BIDIR_LSTM = 7,
    ES_LAYER_STACK = 8,
} es_layer_type;

typedef enum es_activation {
    ES_ACT_LINEAR = 0,
    ES_ACT_RELU = 1,
    ES_ACT_SIGMOID = 2,
    ES_ACT_TANH = 3,
    ES_ACT_SOFTMAX = 4,
} es_activation;

/* The features a model was trained on; compared field by field on load. */
typedef struct es_feature_spec {
    uint32_t sample_rate_hz;
    uint32_t fft_size;
    uint32_t window_samples;
    uint32_t hop_samples;
    uint32_t mel_bands;
    uint32_t normalisation; /* dsp's es_normalisation value */
} es_feature_spec;

#define ES_MAX_LAYERS 16
#define ES_MAX_OUTPUTS 256
#define ES_MAX_LABEL 32

typedef struct es_model es_model;

/* Building a model in code (trainer, tests). */
int es_model_create(const es_feature_spec *features, int input_size, es_model **out);
/* `units` is the layer's output size (BIDIR: per direction; STACK: kernel
 * times the input size); `kernel` is for CONV1D and STACK. */
int es_model_add_layer(es_model *m, es_layer_type type, int units, es_activation act, int kernel);
/* Names the outputs; count must equal the last layer's output size. Labels
 * are shorter than ES_MAX_LABEL and printable ASCII without '"', '\\' or ','
 * (they end up in JSON events and CSV headers). Adding a layer clears them. */
int es_model_set_labels(es_model *m, int count, const char *const *labels);
/* Detection thresholds, one per output (output_size floats, each in [0, 1];
 * 0: none of its own, the detector's default applies), e.g. calibrated for a
 * false-alarm rate; saved with the model (format version 2). NULL removes
 * them; adding a layer removes them too. ES_RNN_ERR_ARG for a value outside
 * [0, 1] or a model without layers. */
int es_model_set_thresholds(es_model *m, const float *thresholds);
/* output_size floats, or NULL when the model carries none. */
const float *es_model_thresholds(const es_model *m);
/* The smoothing each output's threshold was calibrated with: the detector's
 * moving average in ms, one per output (output_size ints, each in
 * 0..ES_MODEL_MAX_SMOOTH_MS; 0: none of its own, the detector's setting
 * applies). Saved with the model (format version 3, which carries the
 * thresholds too). NULL removes them; adding a layer removes them too.
 * ES_RNN_ERR_ARG for a value out of range or a model without layers. */
#define ES_MODEL_MAX_SMOOTH_MS 1000
int es_model_set_smoothing(es_model *m, const int *smooth_ms);
/* output_size ints, or NULL when the model carries none. */
const int *es_model_smoothing(const es_model *m);
/* Glorot-uniform weights, orthogonal-ish recurrent matrices, zero biases
 * (LSTM forget-gate and GRU update-gate biases 1), from a deterministic seed. */
void es_model_init_weights(es_model *m, uint64_t seed);
/* Makes the first layer (behind a STACK: the one after it, for every frame
 * of the group) treat its inputs as if standardised per input,
 * (x - mean[i]) / std[i], by folding both into its weights and biases: a
 * data-dependent start for features that are far from zero mean and unit
 * variance (log-mel after a running mean: ~5 +- 6), which would otherwise
 * saturate a recurrent first layer's gates. (A CONV1D's zero history before
 * the stream then counts as raw zeros.) ES_RNN_ERR_ARG for a std that is not
 * positive and finite. */
int es_model_standardise_inputs(es_model *m, const float *mean, const float *std);
/* Starts `dst` from another model's weights (fine-tuning, or a new output
 * layer on a trained encoder): copies `src`'s layers into `dst`'s from the
 * first on, up to the first layer that differs in type, input size, units,
 * activation or kernel. A `dst` that steps every K frames (a STACK of K
 * first) starts from a `src` that steps every frame: its first weighted
 * layer takes src's first with each input weight split over the K stacked
 * frames (it sees their mean), and the STACK counts among the layers copied.
 * Returns how many layers were copied (0 when the first differs or the input
 * sizes do; ES_RNN_ERR_NOMEM when repacking the weights for inference runs
 * out of memory); dst's other layers keep theirs. */
int es_model_copy_matching_layers(es_model *dst, const es_model *src);
void es_model_destroy(es_model *m);

/* Files (format in rnn/model_file.c and README). */
int es_model_save(const es_model *m, const char *path, es_error *err);
/* The largest model file es_model_load_file reads: 64 MiB, a hundred times
 * the shipped keyword model (~650 kB) and more than any network that runs in
 * real time on one core. Larger files, and anything but a regular file (a
 * FIFO, a device), are refused before a byte is read, never blocking. */
#define ES_MODEL_FILE_MAX_BYTES (64 << 20)
int es_model_load_file(const char *path, es_model **out, es_error *err);
int es_model_load_memory(const void *bytes, size_t size, es_model **out, es_error *err);
/* Fails with ES_RNN_ERR_FEATURES and a reason naming the first difference. */
int es_model_check_features(const es_model *m, const es_feature_spec *want, es_error *err);

int es_model_input_size(const es_model *m);
int es_model_output_size(const es_model *m);
int es_model_layer_count(const es_model *m);
es_layer_type es_model_layer_type(const es_model *m, int layer);
const char *es_layer_type_name(es_layer_type type); /* "GRU", "CONV1D", ... */
int es_model_layer_units(const es_model *m, int layer);
const char *es_model_label(const es_model *m, int output);
const es_feature_spec *es_model_features(const es_model *m);
size_t es_model_param_count(const es_model *m);
/* Flat view of every parameter, layer by layer, in the order documented above. */
float *es_model_params(es_model *m);
int es_model_is_streaming(const es_model *m); /* no BIDIR layer */
/* Frames per step of the layers after a STACK (its kernel), else 1. */
int es_model_frame_stride(const es_model *m);
/* Multiply-adds of one frame, counted as 2 * rows * cols for each
 * matrix-vector product (BIDIR: both directions; after a STACK: per step
 * divided by its kernel, rounded up). */
size_t es_model_flops_per_frame(const es_model *m);
/* Which compute kernels the model runs on this CPU: "avx512", "avx2", "neon"
 * or "generic"; a quantised model names its int8 kernels: "avx512_vnni",
 * "avx2", "neon_dotprod", "neon" or "generic". */
const char *es_model_kernel_name(const es_model *m);

/* ---- int8 weights ------------------------------------------------------------ */

/* Quantises the model in place: every weight matrix (DENSE, CONV1D and the
 * [W U] of recurrent layers) becomes int8 with one float scale per row,
 * max |row| / 127 (symmetric, per gate row for GRU and LSTM); biases stay
 * float. es_model_params() then holds the values the int8 weights stand
 * for. At run time each vector a matrix multiplies (a frame's input, a
 * CONV1D window, the hidden state of one step) is quantised with a scale of
 * its own, max |v| / 127, and the int32 sums rescaled to float; gates,
 * activations and the state stay float. Saved as format version 4. Layers
 * already quantised stay as they are. ES_RNN_ERR_ARG (err filled) for a
 * model without layers, ES_RNN_ERR_NOMEM. */
int es_model_quantise(es_model *m, es_error *err);
/* Float weights again, holding the values the int8 weights stood for (a
 * float model runs the same numbers on the float kernels: benchmarks
 * compare the two). ES_RNN_ERR_NOMEM when repacking fails. */
int es_model_dequantise(es_model *m);
/* Whether any layer has int8 weights. */
int es_model_is_quantised(const es_model *m);

/* ---- streaming state ------------------------------------------------------- */

typedef struct es_state es_state;

/* A state for one stream of `m`, all zeros. Create states once the model's
 * layers are final; they stay valid when es_model_refresh() repacks new
 * parameters, and `m` must outlive them. Any number of states, in any
 * threads, may step one model at once: stepping only reads the model.
 * ES_RNN_ERR_STREAMING for a model with a BIDIR layer. */
int es_state_create(const es_model *m, es_state **out);
void es_state_destroy(es_state *s);
void es_state_reset(es_state *s); /* [rt] zero every hidden/cell/history */

/* [rt] One frame in (input_size floats), outputs out (output_size floats,
 * valid until the next call on this state). */
const float *es_state_step(es_state *s, const float *frame);
/* [rt] `count` consecutive frames in (count x input_size floats), their
 * outputs to `outputs` (count x output_size floats). Bit-identical to
 * stepping them one by one, and faster: the frames share the input side's
 * weight loads, so offline analysis hands over whatever frames it has. */
void es_state_step_frames(es_state *s, const float *frames, int count, float *outputs);

/* [rt] One frame for each of `count` streams of `m` at once: stream t's
 * frame is inputs + t * input_size, its outputs go to outputs + t *
 * output_size. states[t] are distinct states of `m`. Bit-identical, stream
 * by stream, to es_state_step on each alone, and faster: the streams share
 * every matrix product, so each weight is loaded once per block of streams
 * instead of once per stream (a server stepping many live sources; int8
 * layers: once per 16 streams). A float model on ARM is stepped
 * one stream at a time for now: the same results, without the shared loads
 * (no batched NEON float kernels yet). */
void es_model_step_batch(const es_model *m, es_state *const *states, const float *inputs,
                         float *outputs, int count);

/* Whole-sequence forward (offline): `frames` x input_size in, frames x
 * output_size out, starting from zero state. For streaming models the result
 * is bit-identical to stepping frame by frame. */
int es_model_forward_sequence(const es_model *m, const float *inputs, int frames, float *outputs);

#ifdef __cplusplus
}
#endif
#endif
