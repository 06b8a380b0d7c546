/* Runs the exported classifier on raw test vectors:
 *   cc -std=c99 -O2 bnn.c bnn_check.c -o bnn_check
 *   ./bnn_check classifier_input.i8 N scores.f32 [hidden.i8]
 * classifier_input.i8: N x in_features signed bytes (+1 / -1), as written by the export.
 * Writes N x classes float32 scores (and the hidden layers' +-1 outputs), prints the
 * predicted class of each vector, one per line. */
#include <stdio.h>
#include <stdlib.h>

#include "bnn.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s input.i8 N scores.f32 [hidden.i8]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[2]);
    int in = bnn_input_features(), classes = bnn_num_classes(), hidden_size = 0;
    for (int l = 0; l + 1 < bnn_num_layers; l++) hidden_size += bnn_layers[l].out_features;
    FILE *fin = fopen(argv[1], "rb"), *fs = fopen(argv[3], "wb");
    FILE *fh = argc > 4 ? fopen(argv[4], "wb") : NULL;
    if (fin == NULL || fs == NULL || (argc > 4 && fh == NULL)) {
        fprintf(stderr, "cannot open the input or output files\n");
        return 1;
    }
    signed char *x = malloc((size_t)in);
    signed char *h = malloc((size_t)hidden_size + 1);
    float *scores = malloc((size_t)classes * sizeof(float));
    for (int i = 0; i < n; i++) {
        if (fread(x, 1, (size_t)in, fin) != (size_t)in) {
            fprintf(stderr, "%s: expected %d vectors of %d bytes\n", argv[1], n, in);
            return 1;
        }
        printf("%d\n", bnn_forward(x, scores, h));
        fwrite(scores, sizeof(float), (size_t)classes, fs);
        if (fh != NULL) fwrite(h, 1, (size_t)hidden_size, fh);
    }
    fclose(fin);
    fclose(fs);
    if (fh != NULL) fclose(fh);
    free(x);
    free(h);
    free(scores);
    return 0;
}
