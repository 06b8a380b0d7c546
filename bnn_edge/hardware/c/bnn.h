/* bnn_edge C99 reference for the binary classifier layers exported by
 * `python -m bnn_edge.export`. Weights and activations are bits (1 = +1, 0 = -1) packed
 * into 32-bit words, bit j of word k holding feature 32k + j. A layer computes
 * d = n - 2 * popcount(w XOR x), the +-1 dot product (XNOR-popcount), then
 *   hidden layer: +1 iff d >= threshold (flip == 0) or d <= threshold (flip == 1);
 *   last layer:   score = scale * d + offset.
 * Batch norm and biases are folded into threshold/flip and scale/offset. */
#ifndef BNN_H
#define BNN_H

#include <stdint.h>

typedef struct {
    const char *name;
    int in_features;
    int out_features;
    int words;                   /* 32-bit words per weight row: ceil(in_features / 32) */
    const uint32_t *weights;     /* out_features * words */
    const double *threshold;     /* hidden layers, else NULL */
    const unsigned char *flip;   /* hidden layers, else NULL */
    const float *scale;          /* last layer, else NULL */
    const float *offset;         /* last layer, else NULL */
} bnn_layer_t;

extern const bnn_layer_t bnn_layers[];
extern const int bnn_num_layers;

/* Number of inputs of the first layer and outputs (classes) of the last. */
int bnn_input_features(void);
int bnn_num_classes(void);

/* Pack n values (+1 / -1, given as signed char) into ceil(n / 32) words. */
void bnn_pack(const signed char *x, int n, uint32_t *packed);

/* The +-1 dot product of two packed vectors of n bits. */
int bnn_dot(const uint32_t *w, const uint32_t *x, int n, int words);

/* Run every layer on one input vector of +-1 values. Writes the scores (num_classes
 * floats); when hidden is not NULL, also writes the outputs of the hidden layers as +-1
 * values, one layer after another. Returns the predicted class (first maximum). */
int bnn_forward(const signed char *input, float *scores, signed char *hidden);

#endif
