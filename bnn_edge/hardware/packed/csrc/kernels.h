/* The packed engine's XNOR-popcount kernels (kernels.c), called by the CPython binding
 * binding.c (the extension bnn_edge.hardware.packed._xnor).
 *
 * Bits are 64-bit little-endian words, bit j of word k holding feature 64k + j (the
 * export contract read eight bytes at a time); 1 means +1, 0 means -1; padding bits are
 * 0 in inputs and weights, so they never mismatch. For an input row x and a weight row w
 * of n features, d = n - 2 * popcount(x XOR w) is their +-1 dot product.
 *
 * Weights are kept interleaved by blocks of 8 output rows: word k of row 8b + l sits at
 * w[(b * K + k) * 8 + l]. A kernel then broadcasts one input word against 8 (AVX-512: one
 * register) or 4 (AVX2) weight words at once and never reduces horizontally; tiles of
 * several input rows x several blocks keep the accumulators in registers.
 *
 * Outputs: d as int32 (mode DOT), packed output bits from folded integer thresholds
 * (mode BITS: +1 iff d >= t, or d <= t where the flip bit is set), or real scores
 * ((float)d + pre) * mul + add (mode SCORES). The instruction set is chosen at run time
 * (AVX-512 VPOPCNTDQ, AVX2, portable C), capped by the caller; threads come from OpenMP
 * when the build has it, the count from the caller (torch.get_num_threads()).
 */
#ifndef BNN_EDGE_XNOR_KERNELS_H
#define BNN_EDGE_XNOR_KERNELS_H

#include <stdint.h>

enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_COUNT = 3 };

enum { MODE_DOT = 0, MODE_BITS = 1, MODE_SCORES = 2 };

typedef struct {
    const uint64_t *x;       /* input words */
    int64_t rows;            /* samples * positions */
    int64_t n_pos;           /* positions per sample (1 for a fully connected layer) */
    int64_t sample_stride;   /* words between samples */
    int64_t pos_stride;      /* words between positions of one sample */
    int64_t k;               /* words per input row (fan-in words) */
    const uint64_t *w;       /* interleaved weights: mb blocks of k x 8 words */
    int64_t m;               /* outputs */
    int64_t mb;              /* blocks of 8 outputs: ceil(m / 8) */
    int64_t n;               /* fan-in in features */
    int mode;
    void *out;
    int64_t out_words;       /* BITS: words per output row, ceil(m / 64) */
    const int32_t *thr;      /* BITS: thresholds, mb * 8 (padding: INT32_MAX) */
    const uint8_t *flip;     /* BITS: flip bits, one byte per block */
    const float *pre, *mul, *add; /* SCORES: m each */
} job_t;

/* The best instruction set of this CPU (an ISA_* value). */
int xnor_best_isa(void);

/* The product of job j (its rows x its m outputs) with instruction set isa (at most the
 * best) on up to threads threads. */
void xnor_run_job(const job_t *j, int isa, int threads);

/* Float rows x (rows, cols) -> bits out (rows, words), bit = x >= 0; out must be zeroed. */
void xnor_pack_rows(const float *x, int64_t rows, int64_t cols, uint64_t *out, int64_t words,
                    int isa, int threads);

/* Channel-major floats x (n, f, p) -> channels-last bits out (n, p, words), bit = x >= 0. */
void xnor_pack_transposed(const float *x, int64_t n, int64_t f, int64_t p, uint64_t *out,
                          int64_t words, int isa, int threads);

#endif
