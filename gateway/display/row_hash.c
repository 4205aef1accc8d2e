/* gateway.display.row_hash: scroll detection's row hashes (gateway/display/scroll.py,
 * band_hashes, whose numpy einsum is the reference), as one C call per run of rows (issue 11
 * part AH). numpy widened every 32-bit word to 64 bits before its multiply-sum; here the
 * 64-bit coefficient is split in halves, so each word takes two 32x32-bit multiplies that the
 * compiler vectorises (AVX2 where the CPU has it, chosen at load time; SSE2 otherwise).
 *
 * hash_rows(pixels, stride, x, y, rows, words, lo, hi, out, at)
 *     For each of ``rows`` rows from row ``y`` of ``pixels`` (rows of ``stride`` bytes), the
 *     ``words`` 32-bit little-endian words from byte column ``x``: h = (Σ a_i·x_i mod 2^64)
 *     >> 32, where a_i = lo[i] + 2^32·hi[i] (``lo`` and ``hi`` hold uint32s), written to
 *     ``out`` (uint32s, writable) at index ``at`` onwards. Returns None. ``lo``, ``hi`` and
 *     ``out`` must be 4-byte aligned, as numpy's arrays are.
 *
 * Σ a_i·x_i = Σ lo_i·x_i + 2^32·Σ hi_i·x_i, and modulo 2^64 the second sum only matters
 * modulo 2^32: so one 64-bit and one 32-bit accumulator give numpy's exact value.
 *
 * Attacker-controlled: the pixels (the desktop's content). The rows to hash come from the
 * gateway's own damage map, checked here again. Limits: every row read must lie inside
 * ``pixels``, ``lo`` and ``hi`` must hold ``words`` coefficients and ``out`` room for ``rows``
 * hashes from ``at`` (each checked before anything is read, without overflow: ValueError
 * otherwise). The work is linear in the bytes hashed; the GIL is released meanwhile, with the
 * buffers held.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

CLONES static uint32_t hash_row(const unsigned char *row, const uint32_t *lo, const uint32_t *hi,
                                Py_ssize_t words) {
    uint64_t low = 0;
    uint32_t high = 0;
    for (Py_ssize_t i = 0; i < words; i++) {
        uint32_t x;
        memcpy(&x, row + 4 * i, 4); /* rows need not be aligned */
        low += (uint64_t)x * lo[i];
        high += x * hi[i];
    }
    return (uint32_t)((low + ((uint64_t)high << 32)) >> 32);
}

/* uint32s are read and written in place: their buffers must be 4-byte aligned (numpy's are). */
static int aligned(const void *p) { return (uintptr_t)p % 4 == 0; }

static PyObject *hash_rows(PyObject *module, PyObject *args) {
    Py_buffer pixels, lo, hi, out;
    Py_ssize_t stride, x, y, rows, words, at;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nnnnny*y*w*n", &pixels, &stride, &x, &y, &rows, &words, &lo,
                          &hi, &out, &at))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t row_bytes = words <= PY_SSIZE_T_MAX / 4 ? words * 4 : -1;
    int fits = stride >= 0 && x >= 0 && y >= 0 && rows >= 0 && words >= 0 && at >= 0 &&
               row_bytes >= 0 && row_bytes <= stride && x <= stride - row_bytes &&
               lo.len / 4 >= words && hi.len / 4 >= words && at <= out.len / 4 &&
               rows <= out.len / 4 - at && aligned(lo.buf) && aligned(hi.buf) &&
               aligned(out.buf);
    if (fits && rows > 0 && row_bytes > 0) { /* whole rows y .. y + rows - 1 in pixels */
        Py_ssize_t full = pixels.len / stride;
        fits = rows <= full && y <= full - rows;
    }
    if (!fits) {
        PyErr_Format(PyExc_ValueError,
                     "%zd rows of %zd words at byte %zd of row %zd (into hash %zd) do not fit "
                     "the buffers",
                     rows, words, x, y, at);
    } else {
        uint32_t *dst = out.buf;
        const unsigned char *base = pixels.buf;
        const uint32_t *l = lo.buf, *h = hi.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < rows; r++)
            dst[at + r] = row_bytes ? hash_row(base + (y + r) * stride + x, l, h, words) : 0;
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&pixels);
    PyBuffer_Release(&lo);
    PyBuffer_Release(&hi);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"hash_rows", hash_rows, METH_VARARGS,
     "hash_rows(pixels, stride, x, y, rows, words, lo, hi, out, at): scroll detection's row "
     "hashes into out (see row_hash.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.row_hash",
    "Scroll detection's row hashes (row_hash.c).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_row_hash(void) { return PyModule_Create(&module_def); }
