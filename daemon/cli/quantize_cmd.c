/*
 * earshot quantize IN.esm -o OUT.esm — a model with int8 weights (one float
 * scale per matrix row, biases float; rnn.h, es_model_quantise), saved as
 * model-file version 4. It runs on the int8 kernels of this CPU: VNNI or
 * AVX2 on x86, NEON on aarch64, a portable C loop elsewhere.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli_util.h"
#include "commands.h"
#include "rnn.h"

static const char usage_text[] =
    "Usage: earshot quantize IN.esm -o OUT.esm\n"
    "Writes OUT: the model IN with int8 weights, one float scale per matrix row (every\n"
    "DENSE, CONV1D and recurrent [W U] matrix; biases, activations and the recurrent state\n"
    "stay float, each vector a matrix multiplies is quantised on the fly). A quarter of\n"
    "the weight bytes, and faster on CPUs with int8 dot products (AVX-512 VNNI, AVX2,\n"
    "NEON). Labels, thresholds and smoothing are kept. Use OUT like any model:\n"
    "`earshot file --kws-model OUT ...`.\n"
    "\n"
    "  -o, --output PATH   where to write the quantised model (required)\n"
    "  -h, --help          show this help\n";

int es_cmd_quantize(int argc, char **argv) {
    static const struct option long_options[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    optind = 0;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":o:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return ES_EXIT_OK;
        default:
            es_cli_bad_option("quantize", opt, argv);
            return ES_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || !output) {
        es_cli_error("quantize: %s", optind + 1 < argc ? "one input model, not several"
                                     : !output         ? "no output: -o OUT.esm"
                                                       : "no input model");
        return ES_EXIT_USAGE;
    }
    const char *input = argv[optind];
    es_model *model = NULL;
    es_error err;
    if (es_model_load_file(input, &model, &err) != ES_RNN_OK) {
        es_cli_error("quantize: %s: %s", input, err.why); /* as `earshot file` names a model */
        return ES_EXIT_FAILURE;
    }
    int status = ES_EXIT_OK;
    if (es_model_quantise(model, &err) != ES_RNN_OK ||
        es_model_save(model, output, &err) != ES_RNN_OK) {
        es_cli_error("quantize: %s: %s", input, err.why);
        status = ES_EXIT_FAILURE;
    }
    es_model_destroy(model);
    return status;
}
