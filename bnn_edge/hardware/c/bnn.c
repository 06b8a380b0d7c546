/* bnn_edge C99 reference: XNOR-popcount inference of the exported binary layers. */
#include <stdlib.h>
#include <string.h>

#include "bnn.h"
#include "bnn_weights.h"

static int popcount32(uint32_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcount(v);
#else
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return (int)((((v + (v >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
#endif
}

int bnn_input_features(void) { return bnn_layers[0].in_features; }

int bnn_num_classes(void) { return bnn_layers[bnn_num_layers - 1].out_features; }

void bnn_pack(const signed char *x, int n, uint32_t *packed) {
    int words = (n + 31) / 32;
    memset(packed, 0, (size_t)words * sizeof(uint32_t));
    for (int i = 0; i < n; i++) {
        if (x[i] > 0) packed[i / 32] |= (uint32_t)1u << (i % 32);
    }
}

int bnn_dot(const uint32_t *w, const uint32_t *x, int n, int words) {
    int mismatches = 0;
    for (int k = 0; k < words; k++) mismatches += popcount32(w[k] ^ x[k]);
    return n - 2 * mismatches; /* padding bits are 0 in both and never mismatch */
}

int bnn_forward(const signed char *input, float *scores, signed char *hidden) {
    int width = 0;
    for (int l = 0; l < bnn_num_layers; l++) {
        if (bnn_layers[l].in_features > width) width = bnn_layers[l].in_features;
        if (bnn_layers[l].out_features > width) width = bnn_layers[l].out_features;
    }
    int words = (width + 31) / 32;
    uint32_t *x = calloc((size_t)words, sizeof(uint32_t));
    uint32_t *y = calloc((size_t)words, sizeof(uint32_t));
    int best = -1;
    if (x == NULL || y == NULL) goto done;
    bnn_pack(input, bnn_layers[0].in_features, x);
    for (int l = 0; l < bnn_num_layers; l++) {
        const bnn_layer_t *L = &bnn_layers[l];
        if (L->scale != NULL) { /* last layer: real scores */
            best = 0;
            for (int o = 0; o < L->out_features; o++) {
                int d = bnn_dot(L->weights + (size_t)o * L->words, x, L->in_features, L->words);
                scores[o] = L->scale[o] * (float)d + L->offset[o];
                if (scores[o] > scores[best]) best = o;
            }
            break;
        }
        memset(y, 0, (size_t)words * sizeof(uint32_t));
        for (int o = 0; o < L->out_features; o++) {
            int d = bnn_dot(L->weights + (size_t)o * L->words, x, L->in_features, L->words);
            int on = L->flip[o] ? (d <= L->threshold[o]) : (d >= L->threshold[o]);
            if (on) y[o / 32] |= (uint32_t)1u << (o % 32);
            if (hidden != NULL) *hidden++ = (signed char)(on ? 1 : -1);
        }
        uint32_t *t = x; x = y; y = t;
    }
done:
    free(x);
    free(y);
    return best;
}
