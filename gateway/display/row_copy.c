/* gateway.display.row_copy: a rectangle of rows copied into, or moved within, the framebuffer's
 * bytes, as one C call (issue 11 part AG). The framebuffer's numpy slicing cost about 12 µs a
 * rectangle, and Xvnc sends a scrolled view as ~150 Raw rectangles; a terminal's scroll is
 * several moves a frame, each copied through a numpy snapshot first.
 *
 * blit(dst, stride, x, y, row_bytes, rows, src)
 *     rows × row_bytes bytes of ``src`` (contiguous, exactly that long) into the writable ``dst``,
 *     whose rows are ``stride`` bytes: row r goes to dst[(y + r) · stride + x ...].
 * move(buf, stride, src_x, src_y, x, y, row_bytes, rows)
 *     the rectangle at (src_x, src_y) of ``buf`` to (x, y), as if through a snapshot of the
 *     source: overlapping moves in any direction give what numpy's ``a[dst] = a[src].copy()``
 *     gives (rows are taken bottom-up when moving down; memmove within a row).
 *
 * x and src_x are byte columns (4 × the pixel column). Both return None, and copy nothing when
 * rows or row_bytes is 0. The framebuffer's numpy path is the reference
 * (tests/display/test_row_copy.py compares them, and runs this file under AddressSanitizer).
 *
 * Attacker-controlled: the rectangles (from the VNC server's messages; the RFB decoder and the
 * framebuffer check them first) and the pixels. Limits: every rectangle must lie inside its
 * buffer (each bound checked before any byte moves, without overflow: ValueError otherwise),
 * and ``src`` must be exactly the rectangle's size. The GIL is held throughout: nothing else
 * touches the pixels meanwhile.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* Whether rows × row_bytes bytes at byte column x of row y lie inside a buffer of len bytes
 * made of rows of stride bytes. */
static int inside(Py_ssize_t len, Py_ssize_t stride, Py_ssize_t x, Py_ssize_t y,
                  Py_ssize_t row_bytes, Py_ssize_t rows) {
    if (stride < 0 || x < 0 || y < 0 || row_bytes < 0 || rows < 0) return 0;
    if (row_bytes > stride || x > stride - row_bytes) return 0;
    if (rows == 0 || row_bytes == 0) return 1;
    Py_ssize_t full = len / stride; /* stride > 0 here: row_bytes > 0 */
    return rows <= full && y <= full - rows;
}

static PyObject *outside(Py_ssize_t x, Py_ssize_t y, Py_ssize_t row_bytes, Py_ssize_t rows) {
    return PyErr_Format(PyExc_ValueError,
                        "%zd rows of %zd bytes at byte %zd of row %zd do not fit the buffer",
                        rows, row_bytes, x, y);
}

static PyObject *blit(PyObject *module, PyObject *args) {
    Py_buffer dst, src;
    Py_ssize_t stride, x, y, row_bytes, rows;
    (void)module;
    if (!PyArg_ParseTuple(args, "w*nnnnny*", &dst, &stride, &x, &y, &row_bytes, &rows, &src))
        return NULL;
    PyObject *result = NULL;
    if (!inside(dst.len, stride, x, y, row_bytes, rows)) {
        outside(x, y, row_bytes, rows);
    } else if (src.len != row_bytes * rows) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not %zd rows of %zd bytes", src.len, rows,
                     row_bytes);
    } else {
        if (rows > 0 && row_bytes > 0) { /* else nothing moves, and y may lie anywhere */
            char *to = (char *)dst.buf + y * stride + x;
            const char *from = src.buf;
            if (row_bytes == stride && x == 0) {
                memmove(to, from, (size_t)(row_bytes * rows)); /* whole rows: one copy */
            } else {
                for (Py_ssize_t r = 0; r < rows; r++)
                    memmove(to + r * stride, from + r * row_bytes, (size_t)row_bytes);
            }
        }
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    return result;
}

static PyObject *move(PyObject *module, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t stride, src_x, src_y, x, y, row_bytes, rows;
    (void)module;
    if (!PyArg_ParseTuple(args, "w*nnnnnnn", &buf, &stride, &src_x, &src_y, &x, &y, &row_bytes,
                          &rows))
        return NULL;
    PyObject *result = NULL;
    if (!inside(buf.len, stride, src_x, src_y, row_bytes, rows)) {
        outside(src_x, src_y, row_bytes, rows);
    } else if (!inside(buf.len, stride, x, y, row_bytes, rows)) {
        outside(x, y, row_bytes, rows);
    } else {
        char *base = buf.buf;
        if (row_bytes > 0 && y > src_y) { /* moving down: lower source rows are overwritten first */
            for (Py_ssize_t r = rows - 1; r >= 0; r--)
                memmove(base + (y + r) * stride + x, base + (src_y + r) * stride + src_x,
                        (size_t)row_bytes);
        } else if (row_bytes > 0) {
            for (Py_ssize_t r = 0; r < rows; r++)
                memmove(base + (y + r) * stride + x, base + (src_y + r) * stride + src_x,
                        (size_t)row_bytes);
        }
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"blit", blit, METH_VARARGS,
     "blit(dst, stride, x, y, row_bytes, rows, src): rows of src into dst (see row_copy.c)"},
    {"move", move, METH_VARARGS,
     "move(buf, stride, src_x, src_y, x, y, row_bytes, rows): a rectangle moved within buf, "
     "overlap-safe (see row_copy.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.row_copy",
    "Rectangles of rows copied into or moved within a framebuffer's bytes (row_copy.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_row_copy(void) { return PyModule_Create(&module_def); }
