/* gateway.display.drift_copy: one copy applied to the watermark's drift map (StampDrift.copy in
 * gateway/display/stamp_drift.py, whose Python is the reference), as one C call (issue 11 part
 * AH). Compiled by mypyc, the per-tile walk cost about 5 µs a destination tile: a tenth of GTK
 * scrolling's CPU, a fifth of dragging's and a quarter of terminal scrolling's.
 *
 * copy(parts, drift, moved, width, height, tile, pitch_x, pitch_y,
 *      src_x, src_y, dst_x, dst_y, w, h, max_parts) -> list[(tile, list[Part])]
 *     ``parts``, ``drift`` and ``moved`` are StampDrift's dicts, changed in place exactly as
 *     StampDrift.copy (with its whole-tile shortcut) changes them: every destination tile's new
 *     state is worked out from the state before the copy, then stored; ``moved`` gets the
 *     pixels copied per drift, its new keys in the order the Python adds them (settle breaks
 *     ties by that order). Tiles left with more than ``max_parts`` parts of several drifts are
 *     stored as they are, and returned, in tile order, for the Python to merge or re-send.
 *
 * A tile's state is read as StampDrift._state reads it: ``parts[t]`` (a list of parts), else
 * ``drift[t]`` (one drift (dx, dy), or a tuple of parts), else drift (0, 0). A part is
 * ((x0, y0, x1, y1), (dx, dy)). Tiles are (column, row) tuples.
 *
 * Attacker-controlled: the copy (from the VNC server; the RFB decoder and the framebuffer keep
 * it inside the desktop, and it is checked again here) and, through earlier copies, the parts
 * (at most MAX_PARTS a tile while a frame's copies are applied). Limits: sizes and coordinates
 * must lie in [0, 2^20], drifts and part coordinates in [-2^30, 2^30] (ValueError otherwise),
 * so no sum or product here can overflow; anything but the types above is a TypeError; memory
 * grows with the parts the copy makes (at most four pieces of each part of the destination
 * tile and one of each part of its source tiles), and the drifts copied are counted in a hash
 * table, so a copy costs time linear in its pieces. The dicts are only read until every new
 * state is known, then written; no Python code runs in between (keys are tuples of ints).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef long long i64;

#define COORD_MAX (1LL << 20)
#define VALUE_MAX (1LL << 30)

typedef struct {
    i64 x0, y0, x1, y1, dx, dy;
} Part;

typedef struct {
    Part *items;
    Py_ssize_t len, cap;
} Parts;

static int push(Parts *p, Part v) {
    if (p->len == p->cap) {
        Py_ssize_t cap = p->cap ? p->cap * 2 : 64;
        if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Part)) {
            PyErr_NoMemory();
            return -1;
        }
        Part *items = PyMem_Realloc(p->items, (size_t)cap * sizeof(Part));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        p->items = items;
        p->cap = cap;
    }
    p->items[p->len++] = v;
    return 0;
}

/* Python's a // b for b > 0. */
static i64 floordiv(i64 a, i64 b) {
    i64 q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static i64 min64(i64 a, i64 b) { return a < b ? a : b; }
static i64 max64(i64 a, i64 b) { return a > b ? a : b; }

/* stamp_drift.reduce_drift: the representative of (dx, dy) modulo the stamp lattice. */
static void reduce(i64 *dx, i64 *dy, i64 sx, i64 sy) {
    if (sx <= 0 || sy <= 0) return;
    i64 k = floordiv(*dy + sy / 2, sy);
    i64 x = *dx - k * (sx / 2), y = *dy - k * sy;
    *dx = x - floordiv(x + sx / 2, sx) * sx;
    *dy = y;
}

/* --- the pixels copied per drift, in the order each drift first appears ------------------- */

typedef struct {
    i64 dx, dy, sum;
    int used;
} Slot;

typedef struct {
    Slot *slots; /* open addressing, capacity a power of two, at most half full */
    Py_ssize_t cap, len;
    Py_ssize_t *order; /* slot index per drift, first seen first */
} Moved;

static size_t slot_of(i64 dx, i64 dy, Py_ssize_t cap) {
    uint64_t h = (uint64_t)dx * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dy * 0xC2B2AE3D27D4EB4FULL;
    return (size_t)(h ^ (h >> 29)) & (size_t)(cap - 1);
}

static int moved_grow(Moved *m) {
    Py_ssize_t cap = m->cap ? m->cap * 2 : 16;
    if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Slot)) {
        PyErr_NoMemory();
        return -1;
    }
    Slot *slots = PyMem_Calloc((size_t)cap, sizeof(Slot));
    Py_ssize_t *order = PyMem_Calloc((size_t)cap, sizeof(Py_ssize_t));
    if (slots == NULL || order == NULL) {
        PyMem_Free(slots);
        PyMem_Free(order);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < m->len; i++) { /* re-insert in order */
        Slot *old = &m->slots[m->order[i]];
        size_t j = slot_of(old->dx, old->dy, cap);
        while (slots[j].used) j = (j + 1) & (size_t)(cap - 1);
        slots[j] = *old;
        order[i] = (Py_ssize_t)j;
    }
    PyMem_Free(m->slots);
    PyMem_Free(m->order);
    m->slots = slots;
    m->order = order;
    m->cap = cap;
    return 0;
}

static int moved_add(Moved *m, i64 dx, i64 dy, i64 area) {
    if ((m->len + 1) * 2 > m->cap && moved_grow(m) < 0) return -1;
    size_t j = slot_of(dx, dy, m->cap);
    while (m->slots[j].used && (m->slots[j].dx != dx || m->slots[j].dy != dy))
        j = (j + 1) & (size_t)(m->cap - 1);
    Slot *s = &m->slots[j];
    if (!s->used) {
        *s = (Slot){dx, dy, 0, 1};
        m->order[m->len++] = (Py_ssize_t)j;
    }
    s->sum += area;
    return 0;
}

/* --- Python values ------------------------------------------------------------------------ */

static PyObject *pair(i64 a, i64 b) {
    PyObject *x = PyLong_FromLongLong(a), *y = x ? PyLong_FromLongLong(b) : NULL;
    if (y == NULL) {
        Py_XDECREF(x);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(x);
        Py_DECREF(y);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, x);
    PyTuple_SET_ITEM(t, 1, y);
    return t;
}

static PyObject *part_object(const Part *p) {
    PyObject *box = Py_BuildValue("(LLLL)", p->x0, p->y0, p->x1, p->y1);
    PyObject *vec = box ? pair(p->dx, p->dy) : NULL;
    PyObject *out = vec ? PyTuple_Pack(2, box, vec) : NULL;
    Py_XDECREF(box);
    Py_XDECREF(vec);
    return out;
}

/* An int in [-VALUE_MAX, VALUE_MAX], or -1 with an exception. */
static int value(PyObject *o, i64 *out) {
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "drift map coordinates must be ints");
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < -VALUE_MAX || v > VALUE_MAX) {
        PyErr_SetString(PyExc_ValueError, "a drift map coordinate lies outside [-2^30, 2^30]");
        return -1;
    }
    *out = v;
    return 0;
}

static int vec_of(PyObject *o, i64 *dx, i64 *dy) {
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) {
        PyErr_SetString(PyExc_TypeError, "a drift must be a tuple (dx, dy)");
        return -1;
    }
    return value(PyTuple_GET_ITEM(o, 0), dx) < 0 || value(PyTuple_GET_ITEM(o, 1), dy) < 0 ? -1
                                                                                          : 0;
}

static int part_of(PyObject *o, Part *p) {
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(o, 0)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(o, 0)) != 4) {
        PyErr_SetString(PyExc_TypeError, "a part must be ((x0, y0, x1, y1), (dx, dy))");
        return -1;
    }
    PyObject *box = PyTuple_GET_ITEM(o, 0);
    if (value(PyTuple_GET_ITEM(box, 0), &p->x0) < 0 || value(PyTuple_GET_ITEM(box, 1), &p->y0) < 0 ||
        value(PyTuple_GET_ITEM(box, 2), &p->x1) < 0 || value(PyTuple_GET_ITEM(box, 3), &p->y1) < 0)
        return -1;
    return vec_of(PyTuple_GET_ITEM(o, 1), &p->dx, &p->dy);
}

/* --- the map ------------------------------------------------------------------------------ */

typedef struct {
    PyObject *parts, *drift;
    i64 width, height, tile;
} Map;

static PyObject *tile_key(i64 tx, i64 ty) { return pair(tx, ty); }

static Part tile_rect(const Map *m, i64 tx, i64 ty) {
    i64 x = tx * m->tile, y = ty * m->tile;
    return (Part){x, y, min64(x + m->tile, m->width), min64(y + m->tile, m->height), 0, 0};
}

/* Tile (tx, ty)'s state appended to ``out`` (StampDrift._state); *one says it is one drift from
 * ``drift`` (or none: (0, 0)), not parts. 0, or -1 with an exception. */
static int read_state(const Map *m, i64 tx, i64 ty, Parts *out, int *one) {
    PyObject *key = tile_key(tx, ty);
    if (key == NULL) return -1;
    PyObject *list = PyDict_GetItemWithError(m->parts, key); /* borrowed */
    PyObject *d = NULL;
    if (list == NULL && !PyErr_Occurred()) d = PyDict_GetItemWithError(m->drift, key);
    Py_DECREF(key);
    if (PyErr_Occurred()) return -1;
    *one = 0;
    if (list != NULL) {
        if (!PyList_Check(list)) {
            PyErr_SetString(PyExc_TypeError, "a tile's parts must be a list");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
            Part p;
            if (part_of(PyList_GET_ITEM(list, i), &p) < 0 || push(out, p) < 0) return -1;
        }
        return 0;
    }
    Part p = tile_rect(m, tx, ty);
    if (d == NULL || (PyTuple_Check(d) && PyTuple_GET_SIZE(d) == 2 &&
                      PyLong_Check(PyTuple_GET_ITEM(d, 0)))) {
        if (d != NULL && vec_of(d, &p.dx, &p.dy) < 0) return -1;
        *one = 1;
        return push(out, p);
    }
    if (!PyTuple_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "a tile's drift must be (dx, dy) or a tuple of parts");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(d); i++) {
        if (part_of(PyTuple_GET_ITEM(d, i), &p) < 0 || push(out, p) < 0) return -1;
    }
    return 0;
}

/* One destination tile's new state: one drift (count < 0) or ``count`` parts from ``start``. */
typedef struct {
    i64 tx, ty, dx, dy;
    Py_ssize_t start, count;
} Entry;

typedef struct {
    Map map;
    i64 dx, dy, pitch_x, pitch_y;
    i64 src_x, src_y, dst_x, dst_y, w, h;
    Parts out, scratch;
    Moved moved;
    /* StampDrift.copy's ``ones``: per source tile of the copy, 0 unknown, 1 one drift. */
    unsigned char *known;
    Part *ones;
    i64 c0, r0, cols, rows;
} Copy;

/* StampDrift._one_drift: 1 and the drift every part under the rectangle shows, 0 if they show
 * several, -1 with an exception. */
static int one_drift(Copy *c, i64 x0, i64 y0, i64 x1, i64 y1, i64 *fx, i64 *fy) {
    int found = 0;
    i64 t = c->map.tile;
    for (i64 ty = floordiv(y0, t); ty <= floordiv(y1 - 1, t); ty++) {
        for (i64 tx = floordiv(x0, t); tx <= floordiv(x1 - 1, t); tx++) {
            i64 ci = tx - c->c0, ri = ty - c->r0;
            int cached = ci >= 0 && ci < c->cols && ri >= 0 && ri < c->rows;
            Py_ssize_t at = cached ? (Py_ssize_t)(ri * c->cols + ci) : 0;
            i64 ddx, ddy;
            if (cached && c->known[at]) {
                ddx = c->ones[at].dx;
                ddy = c->ones[at].dy;
            } else {
                int one;
                c->scratch.len = 0;
                if (read_state(&c->map, tx, ty, &c->scratch, &one) < 0) return -1;
                if (!one) { /* parts: only those under the rectangle count */
                    for (Py_ssize_t i = 0; i < c->scratch.len; i++) {
                        const Part *p = &c->scratch.items[i];
                        if (p->x0 < x1 && x0 < p->x1 && p->y0 < y1 && y0 < p->y1) {
                            if (found && (p->dx != *fx || p->dy != *fy)) return 0;
                            *fx = p->dx;
                            *fy = p->dy;
                            found = 1;
                        }
                    }
                    continue;
                }
                ddx = c->scratch.items[0].dx;
                ddy = c->scratch.items[0].dy;
                if (cached) {
                    c->known[at] = 1;
                    c->ones[at] = c->scratch.items[0];
                }
            }
            if (found && (ddx != *fx || ddy != *fy)) return 0;
            *fx = ddx;
            *fy = ddy;
            found = 1;
        }
    }
    return found;
}

/* StampDrift._after: destination tile (tx, ty)'s parts once the copy is applied, appended to
 * c->out: its own parts outside the copy, then the sources' parts moved by it. */
static int after(Copy *c, i64 tx, i64 ty) {
    Part r = tile_rect(&c->map, tx, ty);
    i64 cx0 = max64(r.x0, c->dst_x), cy0 = max64(r.y0, c->dst_y);
    i64 cx1 = min64(r.x1, c->dst_x + c->w), cy1 = min64(r.y1, c->dst_y + c->h);
    int one;
    if (cx0 != r.x0 || cy0 != r.y0 || cx1 != r.x1 || cy1 != r.y1) {
        c->scratch.len = 0;
        if (read_state(&c->map, tx, ty, &c->scratch, &one) < 0) return -1;
        for (Py_ssize_t i = 0; i < c->scratch.len; i++) { /* stamp_drift.outside */
            Part p = c->scratch.items[i];
            if (p.x1 <= cx0 || cx1 <= p.x0 || p.y1 <= cy0 || cy1 <= p.y0) {
                if (push(&c->out, p) < 0) return -1;
                continue;
            }
            i64 my0 = max64(p.y0, cy0), my1 = min64(p.y1, cy1);
            Part pieces[4] = {{p.x0, p.y0, p.x1, cy0, p.dx, p.dy},
                              {p.x0, cy1, p.x1, p.y1, p.dx, p.dy},
                              {p.x0, my0, cx0, my1, p.dx, p.dy},
                              {cx1, my0, p.x1, my1, p.dx, p.dy}};
            for (int k = 0; k < 4; k++) {
                if (pieces[k].x0 < pieces[k].x1 && pieces[k].y0 < pieces[k].y1 &&
                    push(&c->out, pieces[k]) < 0)
                    return -1;
            }
        }
    }
    i64 sx0 = cx0 - c->dx, sy0 = cy0 - c->dy, sx1 = cx1 - c->dx, sy1 = cy1 - c->dy;
    i64 t = c->map.tile;
    if (sx1 <= sx0 || sy1 <= sy0) return 0;
    for (i64 sty = floordiv(sy0, t); sty <= floordiv(sy1 - 1, t); sty++) {
        for (i64 stx = floordiv(sx0, t); stx <= floordiv(sx1 - 1, t); stx++) {
            c->scratch.len = 0;
            if (read_state(&c->map, stx, sty, &c->scratch, &one) < 0) return -1;
            for (Py_ssize_t i = 0; i < c->scratch.len; i++) {
                const Part *p = &c->scratch.items[i];
                i64 a0 = max64(p->x0, sx0), b0 = max64(p->y0, sy0);
                i64 a1 = min64(p->x1, sx1), b1 = min64(p->y1, sy1);
                if (a0 < a1 && b0 < b1) {
                    i64 ndx = p->dx + c->dx, ndy = p->dy + c->dy;
                    reduce(&ndx, &ndy, c->pitch_x, c->pitch_y);
                    Part moved = {a0 + c->dx, b0 + c->dy, a1 + c->dx, b1 + c->dy, ndx, ndy};
                    if (push(&c->out, moved) < 0 ||
                        moved_add(&c->moved, ndx, ndy, (a1 - a0) * (b1 - b0)) < 0)
                        return -1;
                }
            }
        }
    }
    return 0;
}

/* ``moved[d] = moved.get(d, 0) + pixels`` per drift, new drifts in the order they appeared. */
static int write_moved(Copy *c, PyObject *moved) {
    for (Py_ssize_t i = 0; i < c->moved.len; i++) {
        const Slot *s = &c->moved.slots[c->moved.order[i]];
        PyObject *key = pair(s->dx, s->dy), *add = key ? PyLong_FromLongLong(s->sum) : NULL;
        PyObject *old = add ? PyDict_GetItemWithError(moved, key) : NULL; /* borrowed */
        PyObject *sum = NULL;
        if (add != NULL && !PyErr_Occurred()) sum = old ? PyNumber_Add(old, add) : Py_NewRef(add);
        int bad = sum == NULL || PyDict_SetItem(moved, key, sum) < 0;
        Py_XDECREF(key);
        Py_XDECREF(add);
        Py_XDECREF(sum);
        if (bad) return -1;
    }
    return 0;
}

/* StampDrift._set: drift (0, 0) is the grid, kept as no entry. */
static int set_drift(PyObject *drift, PyObject *key, i64 dx, i64 dy) {
    if (dx == 0 && dy == 0) {
        if (PyDict_DelItem(drift, key) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
            PyErr_Clear();
        }
        return 0;
    }
    PyObject *vec = pair(dx, dy);
    int bad = vec == NULL || PyDict_SetItem(drift, key, vec) < 0;
    Py_XDECREF(vec);
    return bad ? -1 : 0;
}

/* The new state of one destination tile stored (StampDrift.copy's second loop); past
 * ``max_parts`` parts of several drifts, (tile, parts) is also appended to ``many``. */
static int store(Copy *c, const Entry *e, Py_ssize_t max_parts, PyObject *many) {
    PyObject *key = tile_key(e->tx, e->ty);
    if (key == NULL) return -1;
    int bad = 0;
    const Part *ps = c->out.items + e->start;
    int single = e->count < 0;
    i64 dx = e->dx, dy = e->dy;
    if (e->count > 0) {
        single = 1;
        dx = ps[0].dx;
        dy = ps[0].dy;
        for (Py_ssize_t i = 1; i < e->count && single; i++)
            single = ps[i].dx == dx && ps[i].dy == dy;
    }
    if (single) {
        if (PyDict_DelItem(c->map.parts, key) < 0) {
            if (PyErr_ExceptionMatches(PyExc_KeyError))
                PyErr_Clear();
            else
                bad = 1;
        }
        bad = bad || set_drift(c->map.drift, key, dx, dy) < 0;
    } else {
        PyObject *list = PyList_New(e->count);
        for (Py_ssize_t i = 0; list != NULL && i < e->count; i++) {
            PyObject *p = part_object(&ps[i]);
            if (p == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, i, p);
        }
        /* Stored in tile order either way, so that the dict's order is the Python's. */
        bad = list == NULL || PyDict_SetItem(c->map.parts, key, list) < 0;
        if (!bad && e->count > max_parts) {
            PyObject *item = PyTuple_Pack(2, key, list);
            bad = item == NULL || PyList_Append(many, item) < 0;
            Py_XDECREF(item);
        }
        Py_XDECREF(list);
    }
    Py_DECREF(key);
    return bad ? -1 : 0;
}

static int in_range(i64 v, i64 lo, i64 hi) { return v >= lo && v <= hi; }

static PyObject *copy(PyObject *module, PyObject *args) {
    PyObject *parts, *drift, *moved;
    i64 width, height, tile, pitch_x, pitch_y, src_x, src_y, dst_x, dst_y, w, h, max_parts;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!O!O!LLLLLLLLLLLL", &PyDict_Type, &parts, &PyDict_Type, &drift,
                          &PyDict_Type, &moved, &width, &height, &tile, &pitch_x, &pitch_y,
                          &src_x, &src_y, &dst_x, &dst_y, &w, &h, &max_parts))
        return NULL;
    if (!in_range(width, 0, COORD_MAX) || !in_range(height, 0, COORD_MAX) ||
        !in_range(tile, 1, COORD_MAX) || !in_range(pitch_x, 1, COORD_MAX) ||
        !in_range(pitch_y, 1, COORD_MAX) || !in_range(max_parts, 0, COORD_MAX) ||
        !in_range(w, 0, COORD_MAX) || !in_range(h, 0, COORD_MAX) ||
        !in_range(src_x, 0, width - w) || !in_range(src_y, 0, height - h) ||
        !in_range(dst_x, 0, width - w) || !in_range(dst_y, 0, height - h))
        return PyErr_Format(PyExc_ValueError,
                            "a %lldx%lld copy from (%lld, %lld) to (%lld, %lld) does not fit a "
                            "%lldx%lld desktop of %lld-pixel tiles",
                            w, h, src_x, src_y, dst_x, dst_y, width, height, tile);
    PyObject *many = PyList_New(0);
    if (many == NULL || w == 0 || h == 0) return many;
    Copy c = {.map = {parts, drift, width, height, tile},
              .dx = dst_x - src_x, .dy = dst_y - src_y, .pitch_x = pitch_x, .pitch_y = pitch_y,
              .src_x = src_x, .src_y = src_y, .dst_x = dst_x, .dst_y = dst_y, .w = w, .h = h};
    c.c0 = src_x / tile;
    c.r0 = src_y / tile;
    c.cols = (src_x + w - 1) / tile - c.c0 + 1;
    c.rows = (src_y + h - 1) / tile - c.r0 + 1;
    i64 dc0 = dst_x / tile, dr0 = dst_y / tile;
    i64 dcols = (dst_x + w - 1) / tile - dc0 + 1, drows = (dst_y + h - 1) / tile - dr0 + 1;
    /* At most 2^40 tiles each way (2^20 / 1): a count of 2^40 fits, its bytes are checked. */
    c.known = PyMem_Calloc((size_t)(c.cols * c.rows), 1);
    c.ones = PyMem_Calloc((size_t)(c.cols * c.rows), sizeof(Part));
    Entry *entries = PyMem_Calloc((size_t)(dcols * drows), sizeof(Entry));
    Py_ssize_t n = 0;
    int bad = c.known == NULL || c.ones == NULL || entries == NULL;
    if (bad) PyErr_NoMemory();
    for (i64 ty = dr0; !bad && ty < dr0 + drows; ty++) {
        for (i64 tx = dc0; !bad && tx < dc0 + dcols; tx++) {
            Entry *e = &entries[n++];
            *e = (Entry){tx, ty, 0, 0, c.out.len, -1};
            Part r = tile_rect(&c.map, tx, ty);
            if (dst_x <= r.x0 && dst_y <= r.y0 && r.x1 <= dst_x + w && r.y1 <= dst_y + h) {
                i64 fx = 0, fy = 0;
                int got = one_drift(&c, r.x0 - c.dx, r.y0 - c.dy, r.x1 - c.dx, r.y1 - c.dy, &fx,
                                    &fy);
                if (got < 0) {
                    bad = 1;
                    break;
                }
                if (got) {
                    fx += c.dx;
                    fy += c.dy;
                    reduce(&fx, &fy, pitch_x, pitch_y);
                    e->dx = fx;
                    e->dy = fy;
                    bad = moved_add(&c.moved, fx, fy, (r.x1 - r.x0) * (r.y1 - r.y0)) < 0;
                    continue;
                }
            }
            bad = after(&c, tx, ty) < 0;
            e->count = c.out.len - e->start;
        }
    }
    /* Every new state is known: now the dicts change. */
    bad = bad || write_moved(&c, moved) < 0;
    for (Py_ssize_t i = 0; !bad && i < n; i++) bad = store(&c, &entries[i], max_parts, many) < 0;
    PyMem_Free(entries);
    PyMem_Free(c.known);
    PyMem_Free(c.ones);
    PyMem_Free(c.out.items);
    PyMem_Free(c.scratch.items);
    PyMem_Free(c.moved.slots);
    PyMem_Free(c.moved.order);
    if (bad) Py_CLEAR(many);
    return many;
}

static PyMethodDef methods[] = {
    {"copy", copy, METH_VARARGS,
     "copy(parts, drift, moved, width, height, tile, pitch_x, pitch_y, src_x, src_y, dst_x, "
     "dst_y, w, h, max_parts): one copy applied to the drift map; returns the tiles past "
     "max_parts (see drift_copy.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.drift_copy",
    "One copy applied to the watermark's drift map (drift_copy.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_drift_copy(void) { return PyModule_Create(&module_def); }
