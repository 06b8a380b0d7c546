/* Runs the exported classifier on raw test vectors:
 *   cc -std=c99 -O2 bnn.c bnn_check.c -o bnn_check
 *   ./bnn_check classifier_input.i8 N scores.f32 [hidden.i8]
 * classifier_input.i8: N x in_features signed bytes (+1 / -1), as written by the export.
 * Writes N x classes float32 scores (and the hidden layers' +-1 outputs), prints the
 * predicted class of each vector, one per line. Bad arguments print the usage and exit
 * with 2; an unreadable or short input exits with 1 and writes no output file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bnn.h"

static int usage(const char *prog, const char *why) {
    fprintf(stderr, "%s: %s\nusage: %s input.i8 N scores.f32 [hidden.i8]\n"
                    "  N: the number of vectors in input.i8, an integer >= 1\n",
            prog, why, prog);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) return usage(argv[0], "expected 3 or 4 arguments");
    char *end = NULL;
    errno = 0;
    long n = strtol(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || n < 1 || n > 100000000L)
        return usage(argv[0], "N must be an integer >= 1");
    int in = bnn_input_features(), classes = bnn_num_classes(), hidden_size = 0;
    for (int l = 0; l + 1 < bnn_num_layers; l++) hidden_size += bnn_layers[l].out_features;

    FILE *fin = fopen(argv[1], "rb");
    if (fin == NULL) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
        return 1;
    }
    signed char *x = malloc((size_t)in * (size_t)n);
    if (x == NULL) {
        fprintf(stderr, "%s: out of memory for %ld vectors\n", argv[0], n);
        return 1;
    }
    if (fread(x, 1, (size_t)in * (size_t)n, fin) != (size_t)in * (size_t)n) {
        fprintf(stderr, "%s: expected %ld vectors of %d bytes\n", argv[1], n, in);
        return 1;
    }
    fclose(fin);

    FILE *fs = fopen(argv[3], "wb");
    FILE *fh = argc > 4 ? fopen(argv[4], "wb") : NULL;
    if (fs == NULL || (argc > 4 && fh == NULL)) {
        fprintf(stderr, "%s: cannot write the output files\n", argv[0]);
        return 1;
    }
    signed char *h = malloc((size_t)hidden_size + 1);
    float *scores = malloc((size_t)classes * sizeof(float));
    for (long i = 0; i < n; i++) {
        printf("%d\n", bnn_forward(x + (size_t)i * (size_t)in, scores, h));
        fwrite(scores, sizeof(float), (size_t)classes, fs);
        if (fh != NULL) fwrite(h, 1, (size_t)hidden_size, fh);
    }
    fclose(fs);
    if (fh != NULL) fclose(fh);
    free(x);
    free(h);
    free(scores);
    return 0;
}
