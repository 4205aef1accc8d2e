/* gateway.display.damage_map: a rectangle added to the framebuffer's damage map
 * (Framebuffer.damage_rect in gateway/display/framebuffer.py, whose Python is the reference), as
 * one C call (issue 11 part AH). Xvnc sends a redrawn view as strips a few rows high across
 * the screen; compiled by mypyc, marking a 1856×4 strip cost 17 µs of its 19 µs blit.
 *
 * damage_rect(damage, touched, tile, x, y, w, h)
 *     ``damage`` maps each grid tile (column, row) to the bounding box (x0, y0, x1, y1) of what
 *     was drawn in it; each tile the rectangle touches gets its part of the rectangle added to
 *     its box (new tiles in row order, then column order, as the Python adds them), and goes
 *     into the set ``touched``. Nothing happens for w or h <= 0. Returns None.
 *
 * Attacker-controlled: the rectangle (from the VNC server's messages, clipped to the desktop
 * by the framebuffer first). Limits: x and y must lie in [-2^30, 2^30], w and h in [0, 2^30],
 * the tile in [1, 2^20], and an old box must hold four ints in [-2^31, 2^31] (ValueError or
 * TypeError otherwise, before the tile changes), so nothing here overflows; the work is one
 * dict and one set operation per tile touched, as in the Python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef long long i64;

#define COORD_MAX (1LL << 30)
#define BOX_MAX (1LL << 31)

/* Python's a // b for b > 0. */
static i64 floordiv(i64 a, i64 b) {
    i64 q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static i64 min64(i64 a, i64 b) { return a < b ? a : b; }
static i64 max64(i64 a, i64 b) { return a > b ? a : b; }

/* The four ints of a box already in the map, or -1 with an exception. */
static int old_box(PyObject *o, i64 out[4]) {
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) {
        PyErr_SetString(PyExc_TypeError, "a damaged box must be a tuple (x0, y0, x1, y1)");
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        PyObject *v = PyTuple_GET_ITEM(o, i);
        int overflow = 0;
        if (!PyLong_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "a damaged box must hold ints");
            return -1;
        }
        out[i] = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (out[i] == -1 && PyErr_Occurred()) return -1;
        if (overflow || out[i] < -BOX_MAX || out[i] > BOX_MAX) {
            PyErr_SetString(PyExc_ValueError, "a damaged box lies outside [-2^31, 2^31]");
            return -1;
        }
    }
    return 0;
}

static PyObject *damage_rect(PyObject *module, PyObject *args) {
    PyObject *damage, *touched;
    i64 tile, x, y, w, h;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!O!LLLLL", &PyDict_Type, &damage, &PySet_Type, &touched, &tile,
                          &x, &y, &w, &h))
        return NULL;
    if (tile < 1 || tile > (1LL << 20) || x < -COORD_MAX || x > COORD_MAX || y < -COORD_MAX ||
        y > COORD_MAX || w > COORD_MAX || h > COORD_MAX)
        return PyErr_Format(PyExc_ValueError,
                            "a %lldx%lld rectangle at (%lld, %lld) in %lld-pixel tiles lies "
                            "outside the damage map's range",
                            w, h, x, y, tile);
    if (w <= 0 || h <= 0) Py_RETURN_NONE;
    i64 x1 = x + w, y1 = y + h;
    for (i64 ty = floordiv(y, tile); ty <= floordiv(y1 - 1, tile); ty++) {
        i64 top = ty * tile, by0 = max64(y, top), by1 = min64(y1, top + tile);
        for (i64 tx = floordiv(x, tile); tx <= floordiv(x1 - 1, tile); tx++) {
            i64 left = tx * tile, box[4] = {max64(x, left), by0, min64(x1, left + tile), by1};
            PyObject *key = Py_BuildValue("(LL)", tx, ty);
            if (key == NULL) return NULL;
            PyObject *old = PyDict_GetItemWithError(damage, key); /* borrowed */
            int bad = old == NULL && PyErr_Occurred(), same = 0;
            if (!bad && old != NULL) {
                i64 o[4];
                bad = old_box(old, o) < 0;
                same = o[0] <= box[0] && o[1] <= box[1] && o[2] >= box[2] && o[3] >= box[3];
                box[0] = min64(o[0], box[0]);
                box[1] = min64(o[1], box[1]);
                box[2] = max64(o[2], box[2]);
                box[3] = max64(o[3], box[3]);
            }
            if (!bad && !same) { /* an old box that holds the part already stays as it is */
                PyObject *value = Py_BuildValue("(LLLL)", box[0], box[1], box[2], box[3]);
                bad = value == NULL || PyDict_SetItem(damage, key, value) < 0;
                Py_XDECREF(value);
            }
            bad = bad || PySet_Add(touched, key) < 0;
            Py_DECREF(key);
            if (bad) return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"damage_rect", damage_rect, METH_VARARGS,
     "damage_rect(damage, touched, tile, x, y, w, h): a rectangle added to the damage map "
     "(see damage_map.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.damage_map",
    "A rectangle added to the framebuffer's damage map (damage_map.c).", -1, methods, NULL,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_damage_map(void) { return PyModule_Create(&module_def); }
