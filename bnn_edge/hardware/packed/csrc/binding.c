/* bnn_edge.hardware.packed._xnor: the CPython binding of the XNOR-popcount kernels
 * (kernels.h): argument parsing, buffer checks, chains of fully connected layers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "kernels.h"

static const char *const ISA_NAMES[ISA_COUNT] = {"scalar", "avx2", "avx512-vpopcntdq"};

/* ---------------------------------------------------------------- Python interface */

static int check_isa(int isa) {
    if (isa < 0 || isa >= ISA_COUNT || isa > xnor_best_isa()) {
        PyErr_Format(PyExc_ValueError, "isa=%d is not available on this CPU (best: %s)", isa,
                     ISA_NAMES[xnor_best_isa()]);
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
            xnor_run_job(&j, isa, threads);
            Py_END_ALLOW_THREADS
        } else {
            xnor_run_job(&j, isa, threads);
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
        if (f > 0) xnor_pack_rows((const float *)x.buf, n, f, (uint64_t *)out.buf, words, isa, threads);
    } else {
        xnor_pack_transposed((const float *)x.buf, n, f, p, (uint64_t *)out.buf, words, isa, threads);
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
        xnor_pack_rows((const float *)x.buf, rows, cols, bufs[0], first->k, isa, threads);
        input = bufs[0];
    }
    for (int l = 0; l < ch->count; l++) {
        job_t j = ch->layers[l];
        j.x = input;
        j.rows = rows;
        j.sample_stride = j.k;
        j.pos_stride = 0;
        j.out = l + 1 < ch->count ? (void *)bufs[(l + 1) % 2] : out.buf;
        xnor_run_job(&j, isa, threads);
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
    return PyLong_FromLong(xnor_best_isa());
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
     "threads): packed XNOR-popcount product (see bnn_edge/hardware/packed/kernels.py)"},
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
    "Compiled XNOR-popcount kernels of the packed engine (bnn_edge.hardware.packed.kernels).", -1,
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
