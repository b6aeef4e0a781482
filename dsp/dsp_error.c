#include "dsp.h"

const char *es_dsp_strerror(int code) {
    switch (code) {
    case ES_DSP_OK:
        return "success";
    case ES_DSP_ERR_NOMEM:
        return "out of memory";
    case ES_DSP_ERR_CONFIG:
        return "invalid front-end or resampler configuration";
    case ES_DSP_ERR_RESAMPLER:
        return "the resampler (libsoxr) refused the conversion";
    case ES_DSP_ERR_FULL:
        return "frame ring is full";
    case ES_DSP_ERR_EMPTY:
        return "frame ring is empty";
    case ES_DSP_ERR_CLOSED:
        return "frame ring is closed";
    }
    return "unknown dsp error";
}
