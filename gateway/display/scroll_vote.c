/* gateway.display.scroll_vote: scroll detection's vote (RowHashes._vote in
 * gateway/display/scroll.py, whose numpy is the reference), as one C call (issue 11 part AH).
 * numpy's sorts, searches and np.unique over a few thousand rows cost a twentieth of a live GTK
 * scroll step in call overhead.
 *
 * vote(old, new, height, cols, boxes, band_tiles, voting_bands, max_repeats, max_shift,
 *      min_votes) -> int | None
 *
 *   old, new      the hash tables before and after (uint32, bands × height, C order).
 *   cols, boxes   the damage map as scroll._arrays gives it: each damaged tile's column (int64)
 *                 and its box (x0, y0, x1, y1: four int64s), in the map's order.
 *
 * Each band (band_tiles tile columns) that the map names has damaged rows: those its boxes
 * cover. The voting_bands bands with the most damaged rows vote (ties: the band the map names
 * first). Each damaged row y votes, in order, for every old row s of the band whose hash
 * equals y's new hash (s ascending), unless more than max_repeats old rows share it; a vote is
 * the shift s - y, kept if it is not 0 and at most max_shift either way. The shift with the
 * most votes wins, ties going to the one voted for first; None if it has fewer than min_votes
 * (or there are no votes). tests/display/test_scroll_vote.py compares it with the numpy vote.
 *
 * Attacker-controlled: the hashes (of the desktop's pixels, keyed per session). The rows and
 * sizes come from the gateway's damage map, checked here again. Limits: tables of exactly
 * bands × height uint32s with height in [1, 2^20], every box's rows inside [0, height] and its
 * column's band inside the table, at most 2^24 boxes, max_shift in [0, 2^20], max_repeats in [1, 64], band_tiles
 * and voting_bands in [1, 64] (ValueError otherwise); memory is about 13 bytes a row of each
 * band and 16 per possible shift, work n·log n per voting band. The GIL is released while
 * voting.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint32_t hash;
    int32_t row;
} Entry;

static int by_hash_then_row(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* The first entry whose hash is >= h. */
static Py_ssize_t lower_bound(const Entry *e, Py_ssize_t n, uint32_t h) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (e[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    int64_t count;
    int64_t first; /* the index of its first vote, in voting order */
} Tally;

/* One band's votes added to ``tally`` (indexed by shift + max_shift); ``seq`` counts votes. */
static void vote_band(const uint32_t *old, const uint32_t *new, Py_ssize_t height,
                      const int64_t *rows, Py_ssize_t n, Entry *sorted, int max_repeats,
                      Py_ssize_t max_shift, Tally *tally, int64_t *seq) {
    for (Py_ssize_t s = 0; s < height; s++) sorted[s] = (Entry){old[s], (int32_t)s};
    qsort(sorted, (size_t)height, sizeof(Entry), by_hash_then_row);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t y = (Py_ssize_t)rows[i];
        uint32_t h = new[y];
        Py_ssize_t lo = lower_bound(sorted, height, h), count = 0;
        while (lo + count < height && sorted[lo + count].hash == h && count <= max_repeats)
            count++;
        if (count > max_repeats) continue; /* too common to be evidence */
        for (Py_ssize_t k = 0; k < count; k++) {
            Py_ssize_t d = sorted[lo + k].row - y;
            if (d == 0 || d > max_shift || d < -max_shift) continue;
            Tally *t = &tally[d + max_shift];
            if (t->count++ == 0) t->first = *seq;
            (*seq)++;
        }
    }
}

/* Each band's damaged rows (scroll._damaged_rows), then the voting bands' votes; the winning
 * shift's index into tally, or -1. Runs without the GIL. */
static Py_ssize_t run(const uint32_t *old, const uint32_t *new, Py_ssize_t height,
                      Py_ssize_t n_bands, const int64_t *cols, const int64_t *boxes,
                      Py_ssize_t n, Py_ssize_t band_tiles, Py_ssize_t voting_bands,
                      int max_repeats, Py_ssize_t max_shift, int32_t *cover, int64_t *rows,
                      Py_ssize_t *order, Py_ssize_t *counts, Entry *sorted, Tally *tally) {
    Py_ssize_t named = 0; /* bands in the order the map first names them */
    for (Py_ssize_t b = 0; b < n_bands; b++) counts[b] = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t b = (Py_ssize_t)(cols[i] / band_tiles);
        int32_t *c = cover + b * (height + 1);
        if (counts[b] < 0) {
            counts[b] = 0;
            order[named++] = b;
        }
        c[boxes[4 * i + 1]]++; /* +1 where a box starts, -1 past its end */
        c[boxes[4 * i + 3]]--;
    }
    for (Py_ssize_t j = 0; j < named; j++) {
        const int32_t *c = cover + order[j] * (height + 1);
        int64_t run_sum = 0;
        Py_ssize_t k = 0;
        for (Py_ssize_t y = 0; y < height; y++) {
            run_sum += c[y];
            k += run_sum > 0;
        }
        counts[order[j]] = k;
    }
    /* The most damaged bands first, ties in the map's order (a stable insertion sort). */
    for (Py_ssize_t j = 1; j < named; j++) {
        Py_ssize_t b = order[j], i = j;
        for (; i > 0 && counts[order[i - 1]] < counts[b]; i--) order[i] = order[i - 1];
        order[i] = b;
    }
    int64_t votes = 0;
    for (Py_ssize_t j = 0; j < named && j < voting_bands; j++) {
        Py_ssize_t b = order[j], m = 0;
        const int32_t *c = cover + b * (height + 1);
        int64_t run_sum = 0;
        for (Py_ssize_t y = 0; y < height; y++) {
            run_sum += c[y];
            if (run_sum > 0) rows[m++] = y;
        }
        vote_band(old + b * height, new + b * height, height, rows, m, sorted, max_repeats,
                  max_shift, tally, &votes);
    }
    Py_ssize_t best = -1;
    for (Py_ssize_t d = 0; d <= 2 * max_shift; d++) {
        if (tally[d].count == 0) continue;
        if (best < 0 || tally[d].count > tally[best].count ||
            (tally[d].count == tally[best].count && tally[d].first < tally[best].first))
            best = d;
    }
    return best;
}

static PyObject *vote(PyObject *module, PyObject *args) {
    Py_buffer old, new, cols, boxes;
    Py_ssize_t height, band_tiles, voting_bands, max_shift, min_votes;
    int max_repeats;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*nninn", &old, &new, &height, &cols, &boxes,
                          &band_tiles, &voting_bands, &max_repeats, &max_shift, &min_votes))
        return NULL;
    PyObject *result = NULL;
    int32_t *cover = NULL;
    int64_t *rows = NULL;
    Py_ssize_t *order = NULL, *counts = NULL, n = cols.len / 8, n_bands = 0, best = -1;
    Entry *sorted = NULL;
    Tally *tally = NULL;
    int fits = height >= 1 && height <= (1 << 20) && max_shift >= 0 && max_shift <= (1 << 20) &&
               max_repeats >= 1 && max_repeats <= 64 && band_tiles >= 1 && band_tiles <= 64 &&
               voting_bands >= 1 && voting_bands <= 64 && old.len == new.len &&
               old.len % (4 * height) == 0 && (uintptr_t)old.buf % 4 == 0 &&
               (uintptr_t)new.buf % 4 == 0 && cols.len % 8 == 0 && boxes.len == 4 * cols.len &&
               (uintptr_t)cols.buf % 8 == 0 && (uintptr_t)boxes.buf % 8 == 0 &&
               n <= (1 << 24); /* per-row counts stay far inside int32 */
    if (fits) {
        n_bands = old.len / (4 * height);
        const int64_t *c = cols.buf, *b = boxes.buf;
        for (Py_ssize_t i = 0; fits && i < n; i++) {
            fits = c[i] >= 0 && c[i] / band_tiles < n_bands && b[4 * i + 1] >= 0 &&
                   b[4 * i + 1] <= b[4 * i + 3] && b[4 * i + 3] <= height;
        }
    }
    if (!fits) {
        PyErr_SetString(PyExc_ValueError,
                        "the hash tables, the damage map or the limits do not fit");
        goto done;
    }
    cover = PyMem_Calloc((size_t)n_bands * (size_t)(height + 1), sizeof(int32_t));
    rows = PyMem_Malloc((size_t)height * sizeof(int64_t));
    order = PyMem_Malloc((size_t)n_bands * sizeof(Py_ssize_t));
    counts = PyMem_Malloc((size_t)n_bands * sizeof(Py_ssize_t));
    sorted = PyMem_Malloc((size_t)height * sizeof(Entry));
    tally = PyMem_Calloc((size_t)(2 * max_shift + 1), sizeof(Tally));
    if (cover == NULL || rows == NULL || order == NULL || counts == NULL || sorted == NULL ||
        tally == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    best = run(old.buf, new.buf, height, n_bands, cols.buf, boxes.buf, n, band_tiles,
               voting_bands, max_repeats, max_shift, cover, rows, order, counts, sorted, tally);
    Py_END_ALLOW_THREADS
    if (best >= 0 && tally[best].count >= min_votes)
        result = PyLong_FromSsize_t(best - max_shift);
    else
        result = Py_NewRef(Py_None);
done:
    PyMem_Free(cover);
    PyMem_Free(rows);
    PyMem_Free(order);
    PyMem_Free(counts);
    PyMem_Free(sorted);
    PyMem_Free(tally);
    PyBuffer_Release(&old);
    PyBuffer_Release(&new);
    PyBuffer_Release(&cols);
    PyBuffer_Release(&boxes);
    return result;
}

static PyMethodDef methods[] = {
    {"vote", vote, METH_VARARGS,
     "vote(old, new, height, cols, boxes, band_tiles, voting_bands, max_repeats, max_shift,\n"
     "min_votes) -> shift or None\n\n"
     "Scroll detection's vote (see the top of scroll_vote.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "gateway.display.scroll_vote",
    "Scroll detection's vote in one C call (scroll_vote.c).", -1, methods, NULL, NULL, NULL,
    NULL,
};

PyMODINIT_FUNC PyInit_scroll_vote(void) { return PyModule_Create(&module_def); }
