/* gateway.display.stamp_blend: a region's BGRX pixels turned into RGBX with the watermark's
 * stamps blended in, in one pass and one new bytes object (issue 11 part AI). Before it, each
 * region went through Pillow four times: frombytes (BGRX to RGB), a crop and a paste per stamp
 * piece, then tobytes("raw", "RGBX") once for the column kinds and once more for the palette:
 * a fifth of a GTK scroll step, most of it allocation and call overhead around small images.
 *
 * rgbx(bgrx, w, h, stamp, stamp_w, stamp_h, places) -> bytes
 *     bgrx is w × h pixels of 4 bytes (B, G, R, unused), rows packed; stamp is stamp_w ×
 *     stamp_h RGBA pixels; places is a sequence of (sx0, sy0, sx1, sy1, ax, ay): the stamp's
 *     rectangle [sx0, sx1) × [sy0, sy1) blended with its top-left at (ax, ay) of the region,
 *     in order. The result is exactly what Image.tobytes("raw", "RGBX") gives for
 *     Image.frombytes("RGB", (w, h), bgrx, "raw", "BGRX") after ``im.paste(piece, box, piece)``
 *     of each place (Pillow's paste_mask_RGBA: every byte of the pixel, the fourth included,
 *     blended by the piece's alpha with Pillow's rounding). Callers read only R, G and B.
 *     gateway.display.watermark's Pillow path is the reference (tests/display/test_stamp_blend.py
 *     compares them, and runs this file under AddressSanitizer and UBSan).
 *
 * Attacker-controlled: the pixels (whatever the desktop shows). The places come from the
 * gateway's own watermark layer and drift map, but are checked anyway: every place must lie
 * inside the stamp and the region (ValueError before any pixel is written), and the buffers must
 * be exactly their sizes. The pixel pass runs without the GIL: the buffers stay exported (so
 * pinned) until it ends, and the result is a new object no one else sees yet.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* Pillow's DIV255 and BLEND (libImaging/Paste.c): the same rounding, so the same bytes. */
static inline uint8_t blend(unsigned a, unsigned under, unsigned over) {
    unsigned tmp = under * (255u - a) + over * a + 128u;
    return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

typedef struct {
    Py_ssize_t sx0, sy0, sx1, sy1, ax, ay;
} Place;

/* Parse and check every place before any pixel is written; returns the count, or -1 with an
 * exception set. *out is PyMem-allocated (NULL when there are none). */
static Py_ssize_t read_places(PyObject *places, Py_ssize_t w, Py_ssize_t h, Py_ssize_t sw,
                              Py_ssize_t sh, Place **out) {
    *out = NULL;
    PyObject *seq = PySequence_Fast(places, "places must be a sequence");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Place *all = n > 0 ? PyMem_New(Place, (size_t)n) : NULL;
    if (n > 0 && all == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t v[6];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 6) {
            PyErr_SetString(PyExc_TypeError, "a place is a tuple (sx0, sy0, sx1, sy1, ax, ay)");
            goto fail;
        }
        for (int k = 0; k < 6; k++) {
            v[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, k));
            if (v[k] == -1 && PyErr_Occurred()) goto fail;
        }
        Place p = {v[0], v[1], v[2], v[3], v[4], v[5]};
        /* Each comparison stays within Py_ssize_t: every value is checked against a bound
         * before it is used in a sum. */
        if (p.sx0 < 0 || p.sy0 < 0 || p.sx1 < p.sx0 || p.sy1 < p.sy0 || p.sx1 > sw
            || p.sy1 > sh || p.ax < 0 || p.ay < 0 || p.ax > w || p.ay > h
            || p.sx1 - p.sx0 > w - p.ax || p.sy1 - p.sy0 > h - p.ay) {
            PyErr_Format(PyExc_ValueError,
                         "place %zd (%zd, %zd, %zd, %zd at %zd, %zd) is outside the stamp "
                         "(%zd x %zd) or the region (%zd x %zd)",
                         i, p.sx0, p.sy0, p.sx1, p.sy1, p.ax, p.ay, sw, sh, w, h);
            goto fail;
        }
        all[i] = p;
    }
    Py_DECREF(seq);
    *out = all;
    return n;
fail:
    Py_DECREF(seq);
    PyMem_Free(all);
    return -1;
}

/* Whether w × h pixels of 4 bytes are exactly len bytes (without overflow). */
static int fits(Py_ssize_t len, Py_ssize_t w, Py_ssize_t h) {
    if (w < 0 || h < 0) return 0;
    if (w == 0 || h == 0) return len == 0;
    return w <= PY_SSIZE_T_MAX / 4 / h && len == w * h * 4;
}

static PyObject *rgbx(PyObject *module, PyObject *args) {
    Py_buffer src, stamp;
    Py_ssize_t w, h, sw, sh;
    PyObject *places;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*nny*nnO", &src, &w, &h, &stamp, &sw, &sh, &places))
        return NULL;
    PyObject *result = NULL;
    Place *all = NULL;
    Py_ssize_t n = -1;
    /* Error messages: PyErr_Format takes ASCII only. */
    if (!fits(src.len, w, h)) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not %zd x %zd pixels of 4 bytes", src.len,
                     w, h);
    } else if (!fits(stamp.len, sw, sh)) {
        PyErr_Format(PyExc_ValueError, "a stamp of %zd bytes is not %zd x %zd RGBA pixels",
                     stamp.len, sw, sh);
    } else {
        n = read_places(places, w, h, sw, sh, &all);
    }
    if (n >= 0) result = PyBytes_FromStringAndSize(NULL, src.len);
    if (result != NULL) {
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
        const uint8_t *in = src.buf, *ink = stamp.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < src.len; i += 4) { /* Pillow's unpackBGRX: X becomes 255 */
            out[i] = in[i + 2];
            out[i + 1] = in[i + 1];
            out[i + 2] = in[i];
            out[i + 3] = 255;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            Place p = all[k];
            Py_ssize_t cols = p.sx1 - p.sx0;
            for (Py_ssize_t r = 0; r < p.sy1 - p.sy0; r++) {
                uint8_t *o = out + ((p.ay + r) * w + p.ax) * 4;
                const uint8_t *s = ink + ((p.sy0 + r) * sw + p.sx0) * 4;
                for (Py_ssize_t c = 0; c < cols; c++, o += 4, s += 4) {
                    unsigned a = s[3];
                    if (a == 0) continue; /* blend(0, u, v) == u */
                    o[0] = blend(a, o[0], s[0]);
                    o[1] = blend(a, o[1], s[1]);
                    o[2] = blend(a, o[2], s[2]);
                    o[3] = blend(a, o[3], s[3]);
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(all);
    PyBuffer_Release(&src);
    PyBuffer_Release(&stamp);
    return result;
}

static PyMethodDef methods[] = {
    {"rgbx", rgbx, METH_VARARGS,
     "rgbx(bgrx, w, h, stamp, stamp_w, stamp_h, places): the region as RGBX bytes with the "
     "stamp pieces blended in (see stamp_blend.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.stamp_blend",
    "A region's BGRX pixels as RGBX with the watermark's stamps blended in (stamp_blend.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_stamp_blend(void) { return PyModule_Create(&module_def); }
