/* gateway.display.column_kinds: which tile columns of a region are one colour, and whether the
 * region is few-colour at all, in one C pass over its pixels (issue 11 part AH). The encoder's
 * numpy path (gateway/display/encoder.py, numpy_kinds: Pillow's colour count, a copy of the
 * image into numpy, a comparison of every pixel) is the reference; it cost an eighth of each
 * scroll and drag.
 *
 * kinds(rgbx, width, height, bounds, max_colors, multiplier) -> list[(r, g, b) | None] | None
 *
 *   rgbx        width × height pixels of 4 bytes (R, G, B, unused), row by row: what
 *               Image.tobytes("raw", "RGBX") gives for an RGB image.
 *   bounds      the columns' left edges and the right edge: 0 = b0 < b1 < ... < bn = width.
 *   max_colors  1..1024: None as soon as the image shows one more colour than this (Pillow's
 *               getcolors(max_colors) is then None too).
 *   multiplier  an odd 32-bit number for the colour hash, drawn per process by the caller (the
 *               desktop's pixels cannot aim at collisions); the result does not depend on it.
 *
 * Otherwise, per column: its colour (r, g, b) when every pixel in it equals its top-left pixel,
 * else None. tests/display/test_column_kinds.py compares it with numpy_kinds, and runs this
 * file under AddressSanitizer.
 *
 * Attacker-controlled: every pixel. Limits: the buffer must be exactly width × height × 4 bytes
 * and the bounds must cut [0, width) (checked before any read, sizes checked for overflow); at
 * most 1024 colours sit in a table of 4096 slots, so a lookup probes at most 1025 slots and the
 * table never fills; work is linear in the pixels, memory 13 bytes a column. The GIL is released
 * while pixels are read, with the buffer held.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_COLORS 1024
#define TABLE_BITS 12
#define TABLE_SIZE (1u << TABLE_BITS) /* four times MAX_COLORS: short probe runs */
#define EMPTY 0xFFFFFFFFu             /* no 24-bit colour key has its top byte set */

/* A pixel's colour as a key: its first three bytes (R, G, B) of a little-endian word. */
static uint32_t key_at(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v & 0xFFFFFFu;
}

/* Whether the image has at most max_colors colours; marks the columns that are not one colour
 * (same[c] = 0). Runs without the GIL. */
static int scan(const uint8_t *px, Py_ssize_t w, Py_ssize_t h, const Py_ssize_t *bounds,
                Py_ssize_t n, int max_colors, uint32_t multiplier, uint32_t *first,
                uint8_t *same) {
    uint32_t keys[TABLE_SIZE];
    int count = 0;
    uint32_t previous = EMPTY;
    for (unsigned i = 0; i < TABLE_SIZE; i++) keys[i] = EMPTY;
    for (Py_ssize_t c = 0; c < n; c++) {
        first[c] = key_at(px + 4 * bounds[c]);
        same[c] = 1;
    }
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *row = px + 4 * w * y;
        for (Py_ssize_t c = 0; c < n; c++) {
            uint32_t top = first[c];
            int one = same[c];
            for (Py_ssize_t x = bounds[c]; x < bounds[c + 1]; x++) {
                uint32_t key = key_at(row + 4 * x);
                one &= key == top;
                if (key == previous) continue; /* text and flat areas: runs of one colour */
                previous = key;
                uint32_t slot = (key * multiplier) >> (32 - TABLE_BITS);
                while (keys[slot] != EMPTY && keys[slot] != key)
                    slot = (slot + 1) & (TABLE_SIZE - 1);
                if (keys[slot] == EMPTY) {
                    if (count == max_colors) return 0;
                    keys[slot] = key;
                    count++;
                }
            }
            same[c] = (uint8_t)one;
        }
    }
    return 1;
}

static PyObject *kinds(PyObject *module, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t w, h;
    PyObject *edges;
    int max_colors;
    unsigned long multiplier;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nnOik", &buf, &w, &h, &edges, &max_colors, &multiplier))
        return NULL;
    PyObject *result = NULL, *seq = NULL;
    Py_ssize_t n, *bounds = NULL;
    int few;
    uint32_t *first = NULL;
    uint8_t *same = NULL;
    if (w < 1 || h < 1 || h > PY_SSIZE_T_MAX / 4 / w || buf.len != w * h * 4) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not %zdx%zd pixels of 4 bytes", buf.len,
                     w, h);
        goto done;
    }
    if (max_colors < 1 || max_colors > MAX_COLORS || multiplier % 2 == 0 ||
        multiplier > 0xFFFFFFFFul) {
        PyErr_Format(PyExc_ValueError,
                     "max_colors must be 1..%d and the multiplier an odd 32-bit number",
                     MAX_COLORS);
        goto done;
    }
    seq = PySequence_Fast(edges, "bounds must be a sequence of ints");
    if (seq == NULL) goto done;
    n = PySequence_Fast_GET_SIZE(seq) - 1;
    if (n < 1 || n > w) {
        PyErr_SetString(PyExc_ValueError, "bounds must cut the width into columns");
        goto done;
    }
    bounds = PyMem_Malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    first = PyMem_Malloc((size_t)n * sizeof(uint32_t));
    same = PyMem_Malloc((size_t)n);
    if (bounds == NULL || first == NULL || same == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i <= n; i++) {
        bounds[i] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
        if (bounds[i] == -1 && PyErr_Occurred()) goto done;
        if ((i == 0 && bounds[i] != 0) || (i > 0 && bounds[i] <= bounds[i - 1]) ||
            (i == n && bounds[i] != w)) {
            PyErr_SetString(PyExc_ValueError, "bounds must cut the width into columns");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    few = scan(buf.buf, w, h, bounds, n, max_colors, (uint32_t)multiplier, first, same);
    Py_END_ALLOW_THREADS
    if (!few) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyList_New(n);
    for (Py_ssize_t c = 0; result != NULL && c < n; c++) {
        PyObject *item = same[c] ? Py_BuildValue("(iii)", (int)(first[c] & 0xFF),
                                                 (int)(first[c] >> 8 & 0xFF),
                                                 (int)(first[c] >> 16))
                                 : Py_NewRef(Py_None);
        if (item == NULL)
            Py_CLEAR(result);
        else
            PyList_SET_ITEM(result, c, item);
    }
done:
    PyMem_Free(bounds);
    PyMem_Free(first);
    PyMem_Free(same);
    Py_XDECREF(seq);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"kinds", kinds, METH_VARARGS,
     "kinds(rgbx, width, height, bounds, max_colors, multiplier) -> list or None\n\n"
     "Per column, its colour if it is one colour, else None; None past max_colors colours\n"
     "(see the top of column_kinds.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.column_kinds",
    "Which columns of a region are one colour, and whether it is few-colour (column_kinds.c).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_column_kinds(void) { return PyModule_Create(&module_def); }
