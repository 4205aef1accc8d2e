/* gateway.display.palette_index: a few-colour image's palette and packed index rows, in one C
 * pass per pixel (the first native kernel of the display path; docs/PERFORMANCE.md, issue 11
 * part AG).
 *
 * index(rgbx, width, height, max_colors, multiplier) -> (palette, rows) | None
 *
 *   rgbx        width × height pixels of 4 bytes (R, G, B, unused), row by row: what
 *               Image.tobytes("raw", "RGBX") gives for an RGB image.
 *   max_colors  1..256: None as soon as the image shows one more colour than this.
 *   multiplier  an odd 32-bit number for the colour hash (gateway.display.palette draws one per
 *               process, so the desktop's pixels cannot aim at collisions); the result does not
 *               depend on it.
 *   palette     3 bytes (R, G, B) per colour, sorted by 0xRRGGBB.
 *   rows        each pixel's place in the palette, packed as gateway.wire.display.palette
 *               lays rows out: 1, 2, 4 or 8 bits (bits_for), most significant bit first, each
 *               row padded to a whole byte.
 *
 * It returns what gateway.display.palette's numpy path returns for the same image, byte for
 * byte (tests/display/test_palette_index.py checks both, and this file under AddressSanitizer).
 *
 * Attacker-controlled: every pixel (whatever the desktop shows). Limits: the buffer must be
 * exactly width × height × 4 bytes (checked before any read, sizes checked for overflow); at
 * most 256 colours sit in a fixed table of 1024 slots on the stack, so a lookup probes at most
 * 257 slots even if every colour collided, and the table never fills; work and memory are one
 * byte per pixel beside the output. The GIL is released while pixels are read: the buffer stays
 * held (exported) until the end, so its owner cannot free or resize it meanwhile.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLORS 256
#define TABLE_BITS 10
#define TABLE_SIZE (1u << TABLE_BITS) /* four times MAX_COLORS: short probe runs */
#define EMPTY 0xFFFFFFFFu             /* no 24-bit colour key has its top byte set */

static int compare_keys(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Each pixel's colour in order of first appearance (ids), the colours in that order (order);
 * returns how many colours, or -1 past max_colors. Runs without the GIL. */
static int count_colors(const uint8_t *px, Py_ssize_t n, int max_colors, uint32_t multiplier,
                        uint8_t *ids, uint32_t *order) {
    uint32_t keys[TABLE_SIZE];
    uint8_t slot_id[TABLE_SIZE];
    uint32_t previous = EMPTY;
    uint8_t previous_id = 0;
    int count = 0;
    for (unsigned i = 0; i < TABLE_SIZE; i++) keys[i] = EMPTY;
    for (Py_ssize_t i = 0; i < n; i++, px += 4) {
        uint32_t key = ((uint32_t)px[0] << 16) | ((uint32_t)px[1] << 8) | px[2];
        if (key == previous) { /* text and flat areas: runs of one colour */
            ids[i] = previous_id;
            continue;
        }
        uint32_t slot = (key * multiplier) >> (32 - TABLE_BITS);
        while (keys[slot] != EMPTY && keys[slot] != key) slot = (slot + 1) & (TABLE_SIZE - 1);
        if (keys[slot] == EMPTY) {
            if (count == max_colors) return -1;
            keys[slot] = key;
            slot_id[slot] = (uint8_t)count;
            order[count++] = key;
        }
        previous = key;
        previous_id = ids[i] = slot_id[slot];
    }
    return count;
}

/* Packs each row's places (place[id]) at ``bits`` bits, most significant first, into ``out``
 * (``stride`` bytes a row, zeroed here). Runs without the GIL. */
static void pack_rows(const uint8_t *ids, Py_ssize_t w, Py_ssize_t h, int bits,
                      const uint8_t *place, uint8_t *out, Py_ssize_t stride) {
    memset(out, 0, (size_t)(stride * h));
    int per = 8 / bits;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *src = ids + y * w;
        uint8_t *dst = out + y * stride;
        if (bits == 8) {
            for (Py_ssize_t x = 0; x < w; x++) dst[x] = place[src[x]];
            continue;
        }
        for (Py_ssize_t x = 0; x < w; x++)
            dst[x / per] |= (uint8_t)(place[src[x]] << (8 - bits * (int)(x % per + 1)));
    }
}

static PyObject *palette_index(PyObject *module, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t w, h;
    int max_colors;
    unsigned long multiplier;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nnik", &buf, &w, &h, &max_colors, &multiplier)) return NULL;
    if (w < 0 || h < 0 || (w > 0 && h > PY_SSIZE_T_MAX / 4 / w) || buf.len != w * h * 4) {
        PyBuffer_Release(&buf);
        return PyErr_Format(PyExc_ValueError, "%zd bytes are not %zdx%zd pixels of 4 bytes",
                            buf.len, w, h);
    }
    if (max_colors < 1 || max_colors > MAX_COLORS || multiplier % 2 == 0
        || multiplier > 0xFFFFFFFFul) {
        PyBuffer_Release(&buf);
        return PyErr_Format(PyExc_ValueError, "max_colors must be 1..%d and the multiplier an "
                            "odd 32-bit number", MAX_COLORS);
    }
    Py_ssize_t n = w * h;
    if (n == 0) {
        PyBuffer_Release(&buf);
        Py_RETURN_NONE; /* no colour, no palette: the caller's other encoders decide */
    }
    uint8_t *ids = PyMem_RawMalloc((size_t)n);
    if (ids == NULL) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    uint32_t order[MAX_COLORS];
    int count;
    Py_BEGIN_ALLOW_THREADS
    count = count_colors(buf.buf, n, max_colors, (uint32_t)multiplier, ids, order);
    Py_END_ALLOW_THREADS
    if (count < 0) {
        PyMem_RawFree(ids);
        PyBuffer_Release(&buf);
        Py_RETURN_NONE;
    }
    uint32_t sorted[MAX_COLORS];
    uint8_t place[MAX_COLORS];
    memcpy(sorted, order, sizeof(uint32_t) * (size_t)count);
    qsort(sorted, (size_t)count, sizeof(uint32_t), compare_keys);
    for (int i = 0; i < count; i++) {
        const uint32_t *found = bsearch(&order[i], sorted, (size_t)count, sizeof(uint32_t),
                                        compare_keys);
        place[i] = (uint8_t)(found - sorted); /* found: order and sorted hold the same keys */
    }
    int bits = count <= 2 ? 1 : count <= 4 ? 2 : count <= 16 ? 4 : 8;
    Py_ssize_t stride = (w * bits + 7) / 8;
    PyObject *palette = PyBytes_FromStringAndSize(NULL, 3 * (Py_ssize_t)count);
    PyObject *rows = PyBytes_FromStringAndSize(NULL, stride * h);
    if (palette == NULL || rows == NULL) {
        Py_XDECREF(palette);
        Py_XDECREF(rows);
        PyMem_RawFree(ids);
        PyBuffer_Release(&buf);
        return NULL;
    }
    uint8_t *rgb = (uint8_t *)PyBytes_AS_STRING(palette);
    for (int i = 0; i < count; i++) {
        rgb[3 * i] = (uint8_t)(sorted[i] >> 16);
        rgb[3 * i + 1] = (uint8_t)(sorted[i] >> 8);
        rgb[3 * i + 2] = (uint8_t)sorted[i];
    }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(rows);
    Py_BEGIN_ALLOW_THREADS
    pack_rows(ids, w, h, bits, place, out, stride);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(ids);
    PyBuffer_Release(&buf);
    PyObject *result = PyTuple_Pack(2, palette, rows);
    Py_DECREF(palette);
    Py_DECREF(rows);
    return result;
}

static PyMethodDef methods[] = {
    {"index", palette_index, METH_VARARGS,
     "index(rgbx, width, height, max_colors, multiplier) -> (palette, rows) or None\n\n"
     "The sorted RGB palette and the packed index rows of a few-colour image, or None past\n"
     "max_colors colours (see the top of palette_index.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.palette_index",
    "A few-colour image's palette and packed index rows in one C pass (palette_index.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_palette_index(void) { return PyModule_Create(&module_def); }
