/* bnn_edge._xnor: XNOR-popcount products of packed binary rows, for the packed engine.
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define XNOR_X86 1
#include <immintrin.h>
#define AVX512_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx512vpopcntdq,popcnt"
#define AVX2_TARGET "avx2,popcnt"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define XNOR_INLINE static inline __attribute__((always_inline))
#else
#define XNOR_INLINE static __inline
#endif

enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_COUNT = 3 };
static const char *const ISA_NAMES[ISA_COUNT] = {"scalar", "avx2", "avx512-vpopcntdq"};

enum { MODE_DOT = 0, MODE_BITS = 1, MODE_SCORES = 2 };

/* Below this many word operations a product runs on one thread (a fork costs ~µs). */
#define PARALLEL_MIN_WORK 200000

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

static int best_isa(void) {
#ifdef XNOR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vpopcntdq"))
        return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) return ISA_AVX2;
#endif
    return ISA_SCALAR;
}

static inline const uint64_t *row_ptr(const job_t *j, int64_t r) {
    return j->x + (r / j->n_pos) * j->sample_stride + (r % j->n_pos) * j->pos_stride;
}

/* The output of one row and one block of 8 from its 8 mismatch counts (portable). */
static void epilogue_scalar(const job_t *j, int64_t r, int64_t b, const int64_t *c) {
    int64_t o0 = b * 8, lanes = j->m - o0 < 8 ? j->m - o0 : 8;
    if (j->mode == MODE_DOT) {
        int32_t *out = (int32_t *)j->out + r * j->m + o0;
        for (int64_t l = 0; l < lanes; l++) out[l] = (int32_t)(j->n - 2 * c[l]);
    } else if (j->mode == MODE_BITS) {
        unsigned byte = 0, fl = j->flip[b];
        for (int64_t l = 0; l < 8; l++) {
            int64_t d = j->n - 2 * c[l], t = j->thr[o0 + l];
            unsigned on = ((fl >> l) & 1u) ? (d <= t) : (d >= t);
            byte |= on << l;
        }
        ((uint8_t *)j->out)[r * j->out_words * 8 + b] = (uint8_t)byte;
    } else {
        float *out = (float *)j->out + r * j->m + o0;
        for (int64_t l = 0; l < lanes; l++) {
            float d = (float)(j->n - 2 * c[l]);
            float s = d + j->pre[o0 + l];
            s = s * j->mul[o0 + l];
            out[l] = s + j->add[o0 + l];
        }
    }
}

/* ---------------------------------------------------------------- portable C */

static inline uint64_t popcount64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return (uint64_t)__builtin_popcountll(v);
#else
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (v * 0x0101010101010101ull) >> 56;
#endif
}

static void tile_scalar(const job_t *j, const uint64_t *const *xr, const int64_t *rows, int rx,
                        int64_t b0, int nb) {
    for (int q = 0; q < nb; q++) {
        const uint64_t *wb = j->w + (b0 + q) * j->k * 8;
        int64_t c[2][8] = {{0}};
        for (int64_t kk = 0; kk < j->k; kk++) {
            const uint64_t *wk = wb + kk * 8;
            for (int r = 0; r < rx; r++) {
                uint64_t xv = xr[r][kk];
                for (int l = 0; l < 8; l++) c[r][l] += (int64_t)popcount64(xv ^ wk[l]);
            }
        }
        for (int r = 0; r < rx; r++) epilogue_scalar(j, rows[r], b0 + q, c[r]);
    }
}

/* ---------------------------------------------------------------- AVX2 */
#ifdef XNOR_X86

__attribute__((target(AVX2_TARGET)))
static inline __m256i popcount_bytes256(__m256i v, __m256i lut, __m256i low) {
    __m256i lo = _mm256_and_si256(v, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

/* rx input rows (1 or 2) against one block of 8 outputs (two registers of 4 lanes). Byte
 * counts are summed for up to 31 words (31 * 8 < 256), then widened with vpsadbw. */
__attribute__((target(AVX2_TARGET)))
static void block_avx2(const job_t *j, const uint64_t *const *xr, int rx, int64_t b, int64_t *c) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    const uint64_t *wb = j->w + b * j->k * 8;
    __m256i acc[2][2] = {{zero, zero}, {zero, zero}};
    for (int64_t k0 = 0; k0 < j->k; k0 += 31) {
        int64_t k1 = k0 + 31 < j->k ? k0 + 31 : j->k;
        __m256i bytes[2][2] = {{zero, zero}, {zero, zero}};
        for (int64_t kk = k0; kk < k1; kk++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + kk * 8));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + kk * 8 + 4));
            for (int r = 0; r < 2; r++) {
                if (r >= rx) break;
                __m256i xv = _mm256_set1_epi64x((long long)xr[r][kk]);
                bytes[r][0] = _mm256_add_epi8(bytes[r][0],
                                              popcount_bytes256(_mm256_xor_si256(xv, w0), lut, low));
                bytes[r][1] = _mm256_add_epi8(bytes[r][1],
                                              popcount_bytes256(_mm256_xor_si256(xv, w1), lut, low));
            }
        }
        for (int r = 0; r < rx; r++)
            for (int h = 0; h < 2; h++)
                acc[r][h] = _mm256_add_epi64(acc[r][h], _mm256_sad_epu8(bytes[r][h], zero));
    }
    for (int r = 0; r < rx; r++) {
        _mm256_storeu_si256((__m256i *)(c + r * 8), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(c + r * 8 + 4), acc[r][1]);
    }
}

__attribute__((target(AVX2_TARGET)))
static void tile_avx2(const job_t *j, const uint64_t *const *xr, const int64_t *rows, int rx,
                      int64_t b0, int nb) {
    int64_t c[16];
    for (int q = 0; q < nb; q++) {
        if (rx == 2) block_avx2(j, xr, 2, b0 + q, c);
        else block_avx2(j, xr, 1, b0 + q, c);
        for (int r = 0; r < rx; r++) epilogue_scalar(j, rows[r], b0 + q, c + r * 8);
    }
}

/* ---------------------------------------------------------------- AVX-512 */

#define RX512 4
#define NB512 4

/* rx input rows x nb blocks of 8 outputs, accumulators in registers; rx and nb are
 * compile-time constants at every call, so the loops unroll. */
XNOR_INLINE __attribute__((target(AVX512_TARGET)))
void tile512_fixed(const job_t *j, const uint64_t *const *xr, const int rx, int64_t b0,
                   const int nb, const int64_t *rows) {
    __m512i acc[RX512][NB512];
    for (int r = 0; r < rx; r++)
        for (int q = 0; q < nb; q++) acc[r][q] = _mm512_setzero_si512();
    const int64_t k = j->k;
    const uint64_t *wb = j->w + b0 * k * 8;
    for (int64_t kk = 0; kk < k; kk++) {
        __m512i wv[NB512];
        for (int q = 0; q < nb; q++) wv[q] = _mm512_loadu_si512((const void *)(wb + (q * k + kk) * 8));
        for (int r = 0; r < rx; r++) {
            __m512i xv = _mm512_set1_epi64((long long)xr[r][kk]);
            for (int q = 0; q < nb; q++)
                acc[r][q] = _mm512_add_epi64(acc[r][q],
                                             _mm512_popcnt_epi64(_mm512_xor_si512(xv, wv[q])));
        }
    }
    const __m512i nv = _mm512_set1_epi64(j->n);
    for (int r = 0; r < rx; r++) {
        for (int q = 0; q < nb; q++) {
            int64_t b = b0 + q, o0 = b * 8;
            __m512i d = _mm512_sub_epi64(nv, _mm512_slli_epi64(acc[r][q], 1));
            if (j->mode == MODE_BITS) {
                __m512i t = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(j->thr + o0)));
                __mmask8 ge = _mm512_cmpge_epi64_mask(d, t), le = _mm512_cmple_epi64_mask(d, t);
                __mmask8 fl = (__mmask8)j->flip[b];
                ((uint8_t *)j->out)[rows[r] * j->out_words * 8 + b] =
                    (uint8_t)((ge & (__mmask8)~fl) | (le & fl));
            } else if (j->mode == MODE_DOT) {
                int64_t lanes = j->m - o0 < 8 ? j->m - o0 : 8;
                __mmask8 keep = (__mmask8)((1u << lanes) - 1u);
                _mm256_mask_storeu_epi32((int32_t *)j->out + rows[r] * j->m + o0, keep,
                                         _mm512_cvtepi64_epi32(d));
            } else {
                int64_t c[8];
                _mm512_storeu_si512((void *)c, acc[r][q]);
                epilogue_scalar(j, rows[r], b, c);
            }
        }
    }
}

__attribute__((target(AVX512_TARGET)))
static void tile_avx512(const job_t *j, const uint64_t *const *xr, const int64_t *rows, int rx,
                        int64_t b0, int nb) {
    /* full tiles first; the remainder tiles as (rx, 1) columns */
    if (nb == NB512) {
        switch (rx) {
        case 4: tile512_fixed(j, xr, 4, b0, 4, rows); return;
        case 3: tile512_fixed(j, xr, 3, b0, 4, rows); return;
        case 2: tile512_fixed(j, xr, 2, b0, 4, rows); return;
        default: tile512_fixed(j, xr, 1, b0, 4, rows); return;
        }
    }
    for (int q = 0; q < nb; q++) {
        switch (rx) {
        case 4: tile512_fixed(j, xr, 4, b0 + q, 1, rows); break;
        case 3: tile512_fixed(j, xr, 3, b0 + q, 1, rows); break;
        case 2: tile512_fixed(j, xr, 2, b0 + q, 1, rows); break;
        default: tile512_fixed(j, xr, 1, b0 + q, 1, rows); break;
        }
    }
}
#endif /* XNOR_X86 */

/* ---------------------------------------------------------------- driver */

/* One tile: rx consecutive rows (at most RXMAX) x nb blocks of 8 outputs. */
#define RXMAX 4

static void run_tile(const job_t *j, int isa, int64_t r0, int rx, int64_t b0, int nb) {
    const uint64_t *xr[RXMAX];
    int64_t rows[RXMAX];
    for (int r = 0; r < rx; r++) {
        rows[r] = r0 + r;
        xr[r] = row_ptr(j, r0 + r);
    }
#ifdef XNOR_X86
    if (isa == ISA_AVX512) {
        tile_avx512(j, xr, rows, rx, b0, nb);
        return;
    }
    if (isa == ISA_AVX2) {
        tile_avx2(j, xr, rows, rx, b0, nb);
        return;
    }
#else
    (void)isa;
#endif
    tile_scalar(j, xr, rows, rx, b0, nb);
}

static void job_tile(const job_t *j, int isa, int64_t t, int64_t groups, int rx, int nb) {
    int64_t rt = t / groups, g = t % groups;
    int64_t r0 = rt * rx, b0 = g * nb;
    int rxx = (int)(j->rows - r0 < rx ? j->rows - r0 : rx);
    int nbb = (int)(j->mb - b0 < nb ? j->mb - b0 : nb);
    run_tile(j, isa, r0, rxx, b0, nbb);
}

static void run_job(const job_t *j, int isa, int threads) {
    const int rx = isa == ISA_AVX512 ? 4 : 2, nb = isa == ISA_AVX512 ? 4 : 1;
    const int64_t row_tiles = (j->rows + rx - 1) / rx, groups = (j->mb + nb - 1) / nb;
    const int64_t tiles = row_tiles * groups;
    const double work = (double)j->rows * (double)j->mb * 8.0 * (double)j->k;
    if (work < PARALLEL_MIN_WORK || tiles < 2) threads = 1;
    int64_t t;
    if (threads <= 1) { /* no OpenMP region at all: it costs ~µs even for one thread */
        for (t = 0; t < tiles; t++) job_tile(j, isa, t, groups, rx, nb);
    } else {
        /* dynamic: a thread the OS takes away (the cores are shared) leaves its tiles to
         * the others instead of holding half of the work */
        const int64_t per = tiles / (16 * (int64_t)threads);
        const int chunk = (int)(per > 1 ? per : 1);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
#endif
        for (t = 0; t < tiles; t++) job_tile(j, isa, t, groups, rx, nb);
        (void)chunk;
    }
    if (j->mode == MODE_BITS && j->out_words * 8 > j->mb) {
        uint8_t *out = (uint8_t *)j->out;
        for (int64_t r = 0; r < j->rows; r++)
            memset(out + r * j->out_words * 8 + j->mb, 0, (size_t)(j->out_words * 8 - j->mb));
    }
}

/* ---------------------------------------------------------------- packing */

static void pack_rows_scalar(const float *x, int64_t rows, int64_t cols, uint64_t *out,
                             int64_t words) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        uint64_t *o = out + r * words;
        for (int64_t wi = 0; wi < words; wi++) {
            uint64_t v = 0;
            int64_t c0 = wi * 64, c1 = c0 + 64 < cols ? c0 + 64 : cols;
            for (int64_t c = c0; c < c1; c++) v |= (uint64_t)(xr[c] >= 0.0f) << (c - c0);
            o[wi] = v;
        }
    }
}

#ifdef XNOR_X86
__attribute__((target(AVX512_TARGET)))
static void pack_rows_avx512(const float *x, int64_t rows, int64_t cols, uint64_t *out,
                             int64_t words) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        uint64_t *o = out + r * words;
        for (int64_t wi = 0; wi < words; wi++) {
            uint64_t v = 0;
            for (int h = 0; h < 4; h++) {
                int64_t c0 = wi * 64 + h * 16;
                if (c0 >= cols) break;
                int64_t left = cols - c0;
                __mmask16 keep = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
                __m512 xv = _mm512_maskz_loadu_ps(keep, xr + c0);
                __mmask16 ge = _mm512_mask_cmp_ps_mask(keep, xv, zero, _CMP_GE_OQ);
                v |= (uint64_t)ge << (16 * h);
            }
            o[wi] = v;
        }
    }
}

__attribute__((target(AVX2_TARGET)))
static void pack_rows_avx2(const float *x, int64_t rows, int64_t cols, uint64_t *out,
                           int64_t words) {
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        uint64_t *o = out + r * words;
        for (int64_t wi = 0; wi < words; wi++) {
            int64_t c0 = wi * 64;
            if (c0 + 64 <= cols) {
                uint64_t v = 0;
                for (int h = 0; h < 8; h++) {
                    __m256 xv = _mm256_loadu_ps(xr + c0 + 8 * h);
                    unsigned ge = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, zero, _CMP_GE_OQ));
                    v |= (uint64_t)ge << (8 * h);
                }
                o[wi] = v;
            } else {
                uint64_t v = 0;
                for (int64_t c = c0; c < cols; c++) v |= (uint64_t)(xr[c] >= 0.0f) << (c - c0);
                o[wi] = v;
            }
        }
    }
}
#endif

static void pack_rows_isa(const float *x, int64_t rows, int64_t cols, uint64_t *out,
                          int64_t words, int isa) {
#ifdef XNOR_X86
    if (isa == ISA_AVX512) { pack_rows_avx512(x, rows, cols, out, words); return; }
    if (isa == ISA_AVX2) { pack_rows_avx2(x, rows, cols, out, words); return; }
#else
    (void)isa;
#endif
    pack_rows_scalar(x, rows, cols, out, words);
}

/* Rows split over threads when there are enough floats to be worth a fork. */
static void pack_rows(const float *x, int64_t rows, int64_t cols, uint64_t *out, int64_t words,
                      int isa, int threads) {
    if ((double)rows * cols < 4.0 * PARALLEL_MIN_WORK || rows < 2) threads = 1;
    if (threads <= 1) {
        pack_rows_isa(x, rows, cols, out, words, isa);
        return;
    }
    int64_t chunks = 16 * (int64_t)threads, c;
    if (chunks > rows) chunks = rows;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (c = 0; c < chunks; c++) {
        int64_t r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks;
        pack_rows_isa(x + r0 * cols, r1 - r0, cols, out + r0 * words, words, isa);
    }
}

/* Channel-major to channels-last: x (n, f, p) float32 -> out (n, p, words) bits, bit j of
 * word w of position t holding feature 64w + j. */
static void pack_transposed_scalar(const float *x, int64_t f, int64_t p, uint64_t *out,
                                   int64_t words) {
    memset(out, 0, (size_t)(8 * p * words));
    for (int64_t c = 0; c < f; c++) {
        const float *row = x + c * p;
        uint64_t bit = (uint64_t)1 << (c % 64);
        uint64_t *o = out + c / 64;
        for (int64_t t = 0; t < p; t++)
            if (row[t] >= 0.0f) o[t * words] |= bit;
    }
}

#ifdef XNOR_X86
/* 16 positions x 64 features at a time: one compare mask of 16 positions per feature,
 * then bit t of the 64 masks is word t (a bit transpose by vptestmw). */
__attribute__((target(AVX512_TARGET)))
static void pack_transposed_avx512(const float *x, int64_t f, int64_t p, uint64_t *out,
                                   int64_t words) {
    const __m512 zero = _mm512_setzero_ps();
    uint16_t masks[64];
    for (int64_t t0 = 0; t0 < p; t0 += 16) {
        int64_t left = p - t0;
        __mmask16 keep = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        int lanes = left >= 16 ? 16 : (int)left;
        for (int64_t w = 0; w < words; w++) {
            for (int j = 0; j < 64; j++) {
                int64_t c = w * 64 + j;
                if (c >= f) {
                    masks[j] = 0;
                    continue;
                }
                __m512 v = _mm512_maskz_loadu_ps(keep, x + c * p + t0);
                masks[j] = (uint16_t)_mm512_mask_cmp_ps_mask(keep, v, zero, _CMP_GE_OQ);
            }
            __m512i lo = _mm512_loadu_si512((const void *)masks);
            __m512i hi = _mm512_loadu_si512((const void *)(masks + 32));
            for (int t = 0; t < lanes; t++) {
                __m512i b = _mm512_set1_epi16((short)(1u << t));
                uint64_t v = (uint64_t)_mm512_test_epi16_mask(lo, b) |
                             ((uint64_t)_mm512_test_epi16_mask(hi, b) << 32);
                out[(t0 + t) * words + w] = v;
            }
        }
    }
}
#endif

static void pack_sample_transposed(const float *x, int64_t f, int64_t p, uint64_t *out,
                                   int64_t words, int isa) {
#ifdef XNOR_X86
    if (isa == ISA_AVX512) {
        pack_transposed_avx512(x, f, p, out, words);
        return;
    }
#endif
    (void)isa;
    pack_transposed_scalar(x, f, p, out, words);
}

static void pack_transposed(const float *x, int64_t n, int64_t f, int64_t p, uint64_t *out,
                            int64_t words, int isa, int threads) {
    if ((double)n * f * p < 4.0 * PARALLEL_MIN_WORK || n < 2) threads = 1;
    int64_t i;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
#endif
    for (i = 0; i < n; i++) pack_sample_transposed(x + i * f * p, f, p, out + i * p * words, words, isa);
}

/* ---------------------------------------------------------------- Python interface */

static int check_isa(int isa) {
    if (isa < 0 || isa >= ISA_COUNT || isa > best_isa()) {
        PyErr_Format(PyExc_ValueError, "isa=%d is not available on this CPU (best: %s)", isa,
                     ISA_NAMES[best_isa()]);
        return -1;
    }
    return 0;
}

static int need(const Py_buffer *b, double bytes, const char *what) {
    if (bytes < 0 || (double)b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %.0f", what, b->len, bytes);
        return -1;
    }
    return 0;
}

static PyObject *py_gemm(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer x = {0}, w = {0}, out = {0}, a = {0}, b = {0}, c = {0};
    job_t j;
    int isa, threads;
    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTuple(args, "y*y*w*z*z*z*LLLLLLLiii", &x, &w, &out, &a, &b, &c, &j.rows,
                          &j.n_pos, &j.sample_stride, &j.pos_stride, &j.k, &j.m, &j.n, &j.mode,
                          &isa, &threads))
        return NULL;
    PyObject *result = NULL;
    j.mb = (j.m + 7) / 8;
    j.out_words = (j.m + 63) / 64;
    if (check_isa(isa) < 0) goto done;
    if (j.rows < 0 || j.n_pos < 1 || j.k < 1 || j.m < 1 || j.n < 0 || j.n > 64 * j.k ||
        j.sample_stride < 0 || j.pos_stride < 0 || j.mode < MODE_DOT || j.mode > MODE_SCORES) {
        PyErr_SetString(PyExc_ValueError, "gemm: bad shape or mode");
        goto done;
    }
    if (j.rows > 0) {
        int64_t last = j.rows - 1;
        double span = (double)(last / j.n_pos) * j.sample_stride +
                      (double)(last % j.n_pos) * j.pos_stride + (double)j.k;
        if (need(&x, 8.0 * span, "x") < 0) goto done;
    }
    if (need(&w, 64.0 * (double)j.mb * (double)j.k, "w") < 0) goto done;
    if (j.mode == MODE_DOT && need(&out, 4.0 * j.rows * j.m, "out") < 0) goto done;
    if (j.mode == MODE_SCORES && need(&out, 4.0 * j.rows * j.m, "out") < 0) goto done;
    if (j.mode == MODE_BITS) {
        if (need(&out, 8.0 * j.rows * j.out_words, "out") < 0 ||
            need(&a, 4.0 * j.mb * 8, "thresholds") < 0 || need(&b, (double)j.mb, "flips") < 0)
            goto done;
        j.thr = (const int32_t *)a.buf;
        j.flip = (const uint8_t *)b.buf;
    }
    if (j.mode == MODE_SCORES) {
        if (need(&a, 4.0 * j.m, "pre") < 0 || need(&b, 4.0 * j.m, "mul") < 0 ||
            need(&c, 4.0 * j.m, "add") < 0)
            goto done;
        j.pre = (const float *)a.buf;
        j.mul = (const float *)b.buf;
        j.add = (const float *)c.buf;
    }
    j.x = (const uint64_t *)x.buf;
    j.w = (const uint64_t *)w.buf;
    j.out = out.buf;
    if (threads < 1) threads = 1;
    if (j.rows > 0) {
        if ((double)j.rows * j.mb * j.k > 20000.0) {
            Py_BEGIN_ALLOW_THREADS
            run_job(&j, isa, threads);
            Py_END_ALLOW_THREADS
        } else {
            run_job(&j, isa, threads);
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&w);
    PyBuffer_Release(&out);
    if (a.obj) PyBuffer_Release(&a);
    if (b.obj) PyBuffer_Release(&b);
    if (c.obj) PyBuffer_Release(&c);
    return result;
}

/* pack(x, out, n, f, p, words, isa, threads): x float32 (n, f, p) -> out (n, p, words);
 * p == 1 is plain rows (n, f) -> (n, words). */
static PyObject *py_pack(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer x = {0}, out = {0};
    long long n, f, p, words;
    int isa, threads;
    if (!PyArg_ParseTuple(args, "y*w*LLLLii", &x, &out, &n, &f, &p, &words, &isa, &threads))
        return NULL;
    PyObject *result = NULL;
    if (check_isa(isa) < 0) goto done;
    if (n < 0 || f < 0 || p < 1 || words < (f + 63) / 64) {
        PyErr_SetString(PyExc_ValueError, "pack: bad shape");
        goto done;
    }
    if (need(&x, 4.0 * n * f * p, "x") < 0 || need(&out, 8.0 * n * p * words, "out") < 0)
        goto done;
    if (threads < 1) threads = 1;
    Py_BEGIN_ALLOW_THREADS
    if (p == 1) {
        memset(out.buf, 0, (size_t)(8 * n * words));
        if (f > 0) pack_rows((const float *)x.buf, n, f, (uint64_t *)out.buf, words, isa, threads);
    } else {
        pack_transposed((const float *)x.buf, n, f, p, (uint64_t *)out.buf, words, isa, threads);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *py_xor_words(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer w = {0}, idx = {0}, masks = {0};
    if (!PyArg_ParseTuple(args, "w*y*y*", &w, &idx, &masks)) return NULL;
    PyObject *result = NULL;
    int64_t n = idx.len / 8, size = w.len / 8;
    const int64_t *ip = (const int64_t *)idx.buf;
    const uint64_t *mp = (const uint64_t *)masks.buf;
    uint64_t *wp = (uint64_t *)w.buf;
    if (masks.len != idx.len) {
        PyErr_SetString(PyExc_ValueError, "xor_words: indices and masks differ in length");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        if (ip[i] < 0 || ip[i] >= size) {
            PyErr_Format(PyExc_IndexError, "xor_words: index %lld out of range",
                         (long long)ip[i]);
            goto done;
        }
    }
    for (int64_t i = 0; i < n; i++) wp[ip[i]] ^= mp[i];
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&idx);
    PyBuffer_Release(&masks);
    return result;
}

/* ---------------------------------------------------------------- chains */

/* A chain: fully connected layers run one after another in one call, each layer's packed
 * output bits feeding the next; the last layer writes DOT or SCORES. The chain holds the
 * buffers of its arrays (weights, thresholds, ...), which the caller may change in place
 * (fault injection XORs the weights) but not reallocate. Any number of layers. */
#define CHAIN_BUFS 4

typedef struct {
    int count;                       /* layers whose buffers are held (set while building) */
    job_t *layers;                   /* one per layer */
    Py_buffer (*bufs)[CHAIN_BUFS];   /* the buffers of each layer */
} chain_t;

static void chain_free(PyObject *capsule) {
    chain_t *ch = (chain_t *)PyCapsule_GetPointer(capsule, "bnn_edge._xnor.chain");
    if (ch == NULL) return;
    for (int l = 0; l < ch->count; l++)
        for (int i = 0; i < CHAIN_BUFS; i++)
            if (ch->bufs[l][i].obj != NULL) PyBuffer_Release(&ch->bufs[l][i]);
    PyMem_Free(ch->layers);
    PyMem_Free(ch->bufs);
    PyMem_Free(ch);
}

static int chain_buffer(PyObject *obj, Py_buffer *view, int writable, double bytes,
                        const char *what) {
    if (obj == Py_None) return 0;
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    return need(view, bytes, what);
}

/* make_chain([(w, k, m, n, mode, a, b, c), ...]) -> capsule */
static PyObject *py_make_chain(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(list);
    if (count < 1 || count > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "make_chain: at least 1 layer, got %zd", count);
        return NULL;
    }
    chain_t *ch = (chain_t *)PyMem_Calloc(1, sizeof(chain_t));
    if (ch == NULL) return PyErr_NoMemory();
    ch->layers = (job_t *)PyMem_Calloc((size_t)count, sizeof(job_t));
    ch->bufs = (Py_buffer(*)[CHAIN_BUFS])PyMem_Calloc((size_t)count, sizeof(*ch->bufs));
    PyObject *capsule = PyCapsule_New(ch, "bnn_edge._xnor.chain", chain_free);
    if (capsule == NULL) {
        PyMem_Free(ch->layers);
        PyMem_Free(ch->bufs);
        PyMem_Free(ch);
        return NULL;
    }
    if (ch->layers == NULL || ch->bufs == NULL) {
        Py_DECREF(capsule);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t l = 0; l < count; l++) {
        PyObject *w, *a, *b, *c;
        job_t *j = &ch->layers[l];
        long long k, m, n;
        int mode;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, l), "OLLLiOOO", &w, &k, &m, &n, &mode, &a,
                              &b, &c))
            goto fail;
        ch->count = (int)l + 1;
        j->k = k;
        j->m = m;
        j->n = n;
        j->mode = mode;
        j->mb = (m + 7) / 8;
        j->out_words = (m + 63) / 64;
        j->n_pos = 1;
        if (k < 1 || m < 1 || n < 0 || n > 64 * k || mode < MODE_DOT || mode > MODE_SCORES ||
            (l + 1 < count && mode != MODE_BITS) ||
            (l > 0 && ch->layers[l - 1].out_words != k)) {
            PyErr_Format(PyExc_ValueError, "make_chain: layer %zd does not fit the chain", l);
            goto fail;
        }
        if (chain_buffer(w, &ch->bufs[l][0], 0, 64.0 * j->mb * k, "w") < 0) goto fail;
        j->w = (const uint64_t *)ch->bufs[l][0].buf;
        if (mode == MODE_BITS) {
            if (chain_buffer(a, &ch->bufs[l][1], 0, 4.0 * j->mb * 8, "thresholds") < 0 ||
                chain_buffer(b, &ch->bufs[l][2], 0, (double)j->mb, "flips") < 0)
                goto fail;
            if (a == Py_None || b == Py_None) {
                PyErr_SetString(PyExc_ValueError, "make_chain: thresholds and flips needed");
                goto fail;
            }
            j->thr = (const int32_t *)ch->bufs[l][1].buf;
            j->flip = (const uint8_t *)ch->bufs[l][2].buf;
        } else if (mode == MODE_SCORES) {
            if (a == Py_None || b == Py_None || c == Py_None) {
                PyErr_SetString(PyExc_ValueError, "make_chain: pre, mul and add needed");
                goto fail;
            }
            if (chain_buffer(a, &ch->bufs[l][1], 0, 4.0 * m, "pre") < 0 ||
                chain_buffer(b, &ch->bufs[l][2], 0, 4.0 * m, "mul") < 0 ||
                chain_buffer(c, &ch->bufs[l][3], 0, 4.0 * m, "add") < 0)
                goto fail;
            j->pre = (const float *)ch->bufs[l][1].buf;
            j->mul = (const float *)ch->bufs[l][2].buf;
            j->add = (const float *)ch->bufs[l][3].buf;
        }
    }
    return capsule;
fail:
    Py_DECREF(capsule);
    return NULL;
}

/* run_chain(chain, x, out, rows, cols, packed, isa, threads): x is float32 (rows x cols,
 * packed as x >= 0) or, with packed=1, uint64 words (rows x k of the first layer). */
static PyObject *py_run_chain(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    Py_buffer x = {0}, out = {0};
    long long rows, cols;
    int packed, isa, threads;
    if (!PyArg_ParseTuple(args, "Oy*w*LLiii", &capsule, &x, &out, &rows, &cols, &packed, &isa,
                          &threads))
        return NULL;
    PyObject *result = NULL;
    uint64_t *bufs[2] = {NULL, NULL};
    chain_t *ch = (chain_t *)PyCapsule_GetPointer(capsule, "bnn_edge._xnor.chain");
    if (ch == NULL || check_isa(isa) < 0) goto done;
    const job_t *first = &ch->layers[0], *last = &ch->layers[ch->count - 1];
    if (rows < 0 || cols < 0 || (packed ? 0 : (cols + 63) / 64 > first->k) ||
        (!packed && cols > 64 * first->k)) {
        PyErr_SetString(PyExc_ValueError, "run_chain: bad input shape");
        goto done;
    }
    if (need(&x, (packed ? 8.0 * first->k : 4.0 * cols) * rows, "x") < 0 ||
        need(&out, 4.0 * rows * last->m, "out") < 0)
        goto done;
    if (rows == 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    int64_t width = first->k;
    for (int l = 0; l < ch->count; l++)
        if (ch->layers[l].out_words > width) width = ch->layers[l].out_words;
    bufs[0] = (uint64_t *)PyMem_RawMalloc((size_t)(8 * rows * width));
    bufs[1] = (uint64_t *)PyMem_RawMalloc((size_t)(8 * rows * width));
    if (bufs[0] == NULL || bufs[1] == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (threads < 1) threads = 1;
    int release = (double)rows * first->k * first->mb > 20000.0;
    PyThreadState *state = release ? PyEval_SaveThread() : NULL;
    const uint64_t *input = (const uint64_t *)x.buf;
    if (!packed) {
        memset(bufs[0], 0, (size_t)(8 * rows * first->k));
        pack_rows((const float *)x.buf, rows, cols, bufs[0], first->k, isa, threads);
        input = bufs[0];
    }
    for (int l = 0; l < ch->count; l++) {
        job_t j = ch->layers[l];
        j.x = input;
        j.rows = rows;
        j.sample_stride = j.k;
        j.pos_stride = 0;
        j.out = l + 1 < ch->count ? (void *)bufs[(l + 1) % 2] : out.buf;
        run_job(&j, isa, threads);
        input = (const uint64_t *)j.out;
    }
    if (state != NULL) PyEval_RestoreThread(state);
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_RawFree(bufs[0]);
    PyMem_RawFree(bufs[1]);
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *py_best_isa(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromLong(best_isa());
}

static PyObject *py_openmp(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"gemm", py_gemm, METH_VARARGS,
     "gemm(x, w, out, a, b, c, rows, n_pos, sample_stride, pos_stride, k, m, n, mode, isa, "
     "threads): packed XNOR-popcount product (see bnn_edge/hardware/kernels.py)"},
    {"pack", py_pack, METH_VARARGS,
     "pack(x, out, n, f, p, words, isa, threads): float32 (n, f, p) -> bits (n, p, words), "
     "bit = x >= 0, zero padded"},
    {"xor_words", py_xor_words, METH_VARARGS,
     "xor_words(w, idx, masks): w[idx[i]] ^= masks[i] in order (repeated indices allowed)"},
    {"make_chain", py_make_chain, METH_VARARGS,
     "make_chain([(w, k, m, n, mode, a, b, c), ...]): fully connected layers run in one call"},
    {"run_chain", py_run_chain, METH_VARARGS,
     "run_chain(chain, x, out, rows, cols, packed, isa, threads): run a chain on a batch"},
    {"best_isa", py_best_isa, METH_NOARGS, "index of the best instruction set of this CPU"},
    {"openmp", py_openmp, METH_NOARGS, "whether this build runs threads (OpenMP)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_xnor",
    "Compiled XNOR-popcount kernels of the packed engine (bnn_edge.hardware.kernels).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__xnor(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *names = PyTuple_New(ISA_COUNT);
    if (names == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (int i = 0; i < ISA_COUNT; i++) PyTuple_SET_ITEM(names, i, PyUnicode_FromString(ISA_NAMES[i]));
    if (PyModule_AddObject(m, "ISA_NAMES", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
