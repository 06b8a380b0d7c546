/* The XNOR-popcount kernels of the packed engine: products, packing (see kernels.h). */
#include "kernels.h"

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

/* Below this many word operations a product runs on one thread (a fork costs ~µs). */
#define PARALLEL_MIN_WORK 200000

int xnor_best_isa(void) {
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

void xnor_run_job(const job_t *j, int isa, int threads) {
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
void xnor_pack_rows(const float *x, int64_t rows, int64_t cols, uint64_t *out, int64_t words,
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

void xnor_pack_transposed(const float *x, int64_t n, int64_t f, int64_t p, uint64_t *out,
                          int64_t words, int isa, int threads) {
    if ((double)n * f * p < 4.0 * PARALLEL_MIN_WORK || n < 2) threads = 1;
    int64_t i;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
#endif
    for (i = 0; i < n; i++) pack_sample_transposed(x + i * f * p, f, p, out + i * p * words, words, isa);
}
