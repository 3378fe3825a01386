/*
 * _rankhash: the inspector ranking of DESIGN §4 step 5 (QSDRAW-1) in C.
 *
 * For each enterprise the rank key of inspector i is SHA-256(prefix + id_i), where prefix is
 * b"QSDRAW-1\x00" + seed + b"\x02" + uscc + b"\x00" (built by the caller) and id_i the UTF-8
 * bytes of the inspector id. This module keeps, per enterprise, the k eligible inspectors
 * with the smallest keys (ties, never seen with SHA-256, by id bytes) and the number of
 * eligible inspectors: exactly what qsampling.core.assignment computes with hashlib, faster.
 *
 * SHA-256 is implemented here (FIPS 180-4): with the x86 SHA extensions when the CPU has them
 * (chosen at run time), otherwise in portable C. The prefix's whole 64-byte blocks are
 * compressed once per enterprise (its midstate); per inspector only the remaining blocks are.
 * The GIL is released while hashing, so Python threads run calls in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RANKHASH_X86 1
#include <immintrin.h>
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static const uint32_t IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* ------------------------------------------------------------------ portable SHA-256 */

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void compress_portable(uint32_t st[8], const uint8_t *data, size_t blocks)
{
    uint32_t w[64];
    for (; blocks; blocks--, data += 64) {
        for (int t = 0; t < 16; t++) w[t] = load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K256[t] + w[t];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
        st[4] += e;
        st[5] += f;
        st[6] += g;
        st[7] += h;
    }
}

/* LANES messages hashed together: each from the same midstate, all of the same block count */
#define LANES 4

static void group_portable(const uint32_t mid[8], const uint8_t *const msg[LANES], int n,
                           size_t blocks, uint32_t out[LANES][8])
{
    for (int j = 0; j < n; j++) {
        memcpy(out[j], mid, 32);
        compress_portable(out[j], msg[j], blocks);
    }
}

/* ------------------------------------------------------------------ SHA extensions (x86) */

#ifdef RANKHASH_X86
#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* state words A..H  <->  the (ABEF, CDGH) register pair the SHA instructions use */
SHANI static inline void shani_load(const uint32_t s[8], __m128i *abef, __m128i *cdgh)
{
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[0]), 0xB1);
    __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&s[4]), 0x1B);
    *abef = _mm_alignr_epi8(t, u, 8);
    *cdgh = _mm_blend_epi16(u, t, 0xF0);
}

SHANI static inline void shani_store(__m128i abef, __m128i cdgh, uint32_t s[8])
{
    __m128i t = _mm_shuffle_epi32(abef, 0x1B);
    __m128i u = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&s[0], _mm_blend_epi16(t, u, 0xF0));
    _mm_storeu_si128((__m128i *)&s[4], _mm_alignr_epi8(u, t, 8));
}

#define SHANI_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

/* 4 message words of group i (words 4i..4i+3) from the last four groups m[] */
#define SHANI_SCHEDULE(m, i)                                                                   \
    _mm_sha256msg2_epu32(                                                                      \
        _mm_add_epi32(_mm_sha256msg1_epu32((m)[(i) & 3], (m)[((i) + 1) & 3]),                   \
                      _mm_alignr_epi8((m)[((i) + 3) & 3], (m)[((i) + 2) & 3], 4)),              \
        (m)[((i) + 3) & 3])

SHANI static void compress_shani(uint32_t st[8], const uint8_t *data, size_t blocks)
{
    __m128i s0, s1;
    shani_load(st, &s0, &s1);
    for (; blocks; blocks--, data += 64) {
        __m128i a0 = s0, a1 = s1, m[4], k;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m128i w = i < 4 ? _mm_shuffle_epi8(
                                    _mm_loadu_si128((const __m128i *)(data + 16 * i)), SHANI_MASK)
                              : SHANI_SCHEDULE(m, i);
            m[i & 3] = w;
            k = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&K256[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, k);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k, 0x0E));
        }
        s0 = _mm_add_epi32(s0, a0);
        s1 = _mm_add_epi32(s1, a1);
    }
    shani_store(s0, s1, st);
}

/* Four independent messages in lock step: each round depends on the one before, so with
 * one message the SHA unit mostly waits; interleaved, four keep it busy. A group of fewer
 * than four repeats its first message in the spare lanes. */
SHANI static void group_shani(const uint32_t mid[8], const uint8_t *const msg[LANES], int n,
                              size_t blocks, uint32_t out[LANES][8])
{
    const uint8_t *p[LANES];
    __m128i s0[LANES], s1[LANES];
    for (int j = 0; j < LANES; j++) p[j] = msg[j < n ? j : 0];
    shani_load(mid, &s0[0], &s1[0]);
    for (int j = 1; j < LANES; j++) {
        s0[j] = s0[0];
        s1[j] = s1[0];
    }
    for (size_t blk = 0; blk < blocks; blk++) {
        __m128i a0[LANES], a1[LANES], m[LANES][4];
        for (int j = 0; j < LANES; j++) {
            a0[j] = s0[j];
            a1[j] = s1[j];
        }
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m128i kk = _mm_loadu_si128((const __m128i *)&K256[4 * i]), k[LANES];
#pragma GCC unroll 4
            for (int j = 0; j < LANES; j++) {
                __m128i w =
                    i < 4 ? _mm_shuffle_epi8(
                                _mm_loadu_si128((const __m128i *)(p[j] + 64 * blk + 16 * i)),
                                SHANI_MASK)
                          : SHANI_SCHEDULE(m[j], i);
                m[j][i & 3] = w;
                k[j] = _mm_add_epi32(w, kk);
            }
#pragma GCC unroll 4
            for (int j = 0; j < LANES; j++) s1[j] = _mm_sha256rnds2_epu32(s1[j], s0[j], k[j]);
#pragma GCC unroll 4
            for (int j = 0; j < LANES; j++)
                s0[j] = _mm_sha256rnds2_epu32(s0[j], s1[j], _mm_shuffle_epi32(k[j], 0x0E));
        }
        for (int j = 0; j < LANES; j++) {
            s0[j] = _mm_add_epi32(s0[j], a0[j]);
            s1[j] = _mm_add_epi32(s1[j], a1[j]);
        }
    }
    for (int j = 0; j < n; j++) shani_store(s0[j], s1[j], out[j]);
}

static int cpu_has_shani(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") &&
           __builtin_cpu_supports("ssse3");
}
#endif /* RANKHASH_X86 */

/* ------------------------------------------------------------------ implementations */

typedef void (*compress_fn)(uint32_t st[8], const uint8_t *data, size_t blocks);
typedef void (*group_fn)(const uint32_t mid[8], const uint8_t *const msg[LANES], int n,
                         size_t blocks, uint32_t out[LANES][8]);

typedef struct {
    const char *name;
    compress_fn compress;
    group_fn group;
} impl_t;

static const impl_t IMPL_PORTABLE = {"portable", compress_portable, group_portable};
#ifdef RANKHASH_X86
static const impl_t IMPL_SHANI = {"sha-ni", compress_shani, group_shani};
#endif
static const impl_t *impl_default = &IMPL_PORTABLE;

/* None: the fastest this CPU runs; else the named one, which must be available. */
static const impl_t *impl_by_name(PyObject *name)
{
    if (name == NULL || name == Py_None) return impl_default;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "impl must be a str or None");
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(name, "portable") == 0) return &IMPL_PORTABLE;
#ifdef RANKHASH_X86
    if (PyUnicode_CompareWithASCIIString(name, "sha-ni") == 0 && impl_default == &IMPL_SHANI)
        return &IMPL_SHANI;
#endif
    PyErr_Format(PyExc_ValueError, "SHA-256 implementation %R is not available here", name);
    return NULL;
}

/* ------------------------------------------------------------------ messages */

/* The inspector ids, copied out of Python objects so the hashing can run without the GIL,
 * with their padded message tails laid out for the current prefix length. */
typedef struct {
    Py_ssize_t n;
    uint8_t *bytes;      /* all ids back to back */
    Py_ssize_t *start;   /* n + 1 offsets into bytes */
    uint8_t *tail;       /* per id: id + 0x80 + zeros + bit length, for prefix length plen */
    Py_ssize_t *tail_at; /* offset of each id's tail in tail */
    uint32_t *blocks;    /* blocks per id after the prefix's midstate */
    Py_ssize_t tail_cap; /* bytes allocated to each id's tail */
    Py_ssize_t plen;     /* prefix length the tails are laid out for, -1: none yet */
    Py_ssize_t max_len;
} ids_t;

static void ids_free(ids_t *ids)
{
    PyMem_RawFree(ids->bytes);
    PyMem_RawFree(ids->start);
    PyMem_RawFree(ids->tail);
    PyMem_RawFree(ids->tail_at);
    PyMem_RawFree(ids->blocks);
    memset(ids, 0, sizeof(*ids));
}

/* bytes objects of a sequence, copied into one buffer; 0 on success */
static int copy_bytes_seq(PyObject *seq, const char *what, Py_ssize_t *n_out, uint8_t **bytes_out,
                          Py_ssize_t **start_out, Py_ssize_t *max_len_out)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast), total = 0, max_len = 0;
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "%s must hold bytes", what);
            Py_DECREF(fast);
            return -1;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(items[i]);
        total += len;
        if (len > max_len) max_len = len;
    }
    uint8_t *bytes = PyMem_RawMalloc(total ? (size_t)total : 1);
    Py_ssize_t *start = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    if (bytes == NULL || start == NULL) {
        PyMem_RawFree(bytes);
        PyMem_RawFree(start);
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len = PyBytes_GET_SIZE(items[i]);
        start[i] = at;
        memcpy(bytes + at, PyBytes_AS_STRING(items[i]), (size_t)len);
        at += len;
    }
    start[n] = at;
    Py_DECREF(fast);
    *n_out = n;
    *bytes_out = bytes;
    *start_out = start;
    *max_len_out = max_len;
    return 0;
}

static int ids_init(ids_t *ids, PyObject *seq)
{
    memset(ids, 0, sizeof(*ids));
    if (copy_bytes_seq(seq, "ids", &ids->n, &ids->bytes, &ids->start, &ids->max_len) < 0)
        return -1;
    /* the longest tail: 63 prefix bytes in its first block, the id, 9 bytes of padding */
    ids->tail_cap = ((63 + ids->max_len + 9 + 63) / 64) * 64;
    size_t n = (size_t)(ids->n ? ids->n : 1);
    ids->tail = PyMem_RawMalloc(n * (size_t)ids->tail_cap);
    ids->tail_at = PyMem_RawMalloc(n * sizeof(Py_ssize_t));
    ids->blocks = PyMem_RawMalloc(n * sizeof(uint32_t));
    ids->plen = -1;
    if (ids->tail == NULL || ids->tail_at == NULL || ids->blocks == NULL) {
        ids_free(ids);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Lay out every id's message tail for a prefix of plen bytes: the message after the
 * prefix's whole blocks is prefix[plen - r:] + id + 0x80 + zeros + 64-bit bit length, where
 * r = plen % 64; the tail stored here starts at the id (the r prefix bytes are the caller's).
 */
static void ids_layout(ids_t *ids, Py_ssize_t plen)
{
    if (ids->plen == plen) return;
    Py_ssize_t r = plen % 64;
    for (Py_ssize_t i = 0; i < ids->n; i++) {
        Py_ssize_t len = ids->start[i + 1] - ids->start[i];
        Py_ssize_t blocks = (r + len + 9 + 63) / 64;
        uint8_t *t = ids->tail + i * ids->tail_cap;
        Py_ssize_t tlen = blocks * 64 - r;
        memcpy(t, ids->bytes + ids->start[i], (size_t)len);
        memset(t + len, 0, (size_t)(tlen - len));
        t[len] = 0x80;
        uint64_t bits = (uint64_t)(plen + len) * 8;
        for (int j = 0; j < 8; j++) t[tlen - 1 - j] = (uint8_t)(bits >> (8 * j));
        ids->tail_at[i] = i * ids->tail_cap;
        ids->blocks[i] = (uint32_t)blocks;
    }
    ids->plen = plen;
}

/* Per-enterprise hashing context: the midstate after the prefix's whole blocks, and one work
 * buffer a lane whose first r bytes hold the rest of the prefix. */
typedef struct {
    uint32_t mid[8];
    Py_ssize_t r;
    uint8_t *buf[LANES];
} prefix_ctx;

static int prefix_ctx_alloc(prefix_ctx *c, const ids_t *ids)
{
    size_t size = (size_t)(63 + ids->tail_cap + 64);
    int ok = 1;
    for (int j = 0; j < LANES; j++) {
        c->buf[j] = PyMem_RawMalloc(size);
        ok = ok && c->buf[j] != NULL;
    }
    return ok ? 0 : -1;
}

static void prefix_ctx_free(prefix_ctx *c)
{
    for (int j = 0; j < LANES; j++) {
        PyMem_RawFree(c->buf[j]);
        c->buf[j] = NULL;
    }
}

static void prefix_begin(prefix_ctx *c, const impl_t *impl, ids_t *ids, const uint8_t *prefix,
                         Py_ssize_t plen)
{
    Py_ssize_t whole = plen / 64;
    memcpy(c->mid, IV256, sizeof(IV256));
    if (whole) impl->compress(c->mid, prefix, (size_t)whole);
    c->r = plen % 64;
    for (int j = 0; j < LANES; j++) memcpy(c->buf[j], prefix + whole * 64, (size_t)c->r);
    ids_layout(ids, plen);
}

/* the digests (as state words) of ids which[0..n-1], all of the same block count */
static inline void hash_group(const prefix_ctx *c, const impl_t *impl, const ids_t *ids,
                              const Py_ssize_t *which, int n, uint32_t out[LANES][8])
{
    uint32_t blocks = ids->blocks[which[0]];
    size_t len = (size_t)(blocks * 64 - c->r);
    const uint8_t *msg[LANES];
    for (int j = 0; j < n; j++) {
        memcpy(c->buf[j] + c->r, ids->tail + ids->tail_at[which[j]], len);
        msg[j] = c->buf[j];
    }
    impl->group(c->mid, msg, n, blocks, out);
}

/* ------------------------------------------------------------------ top k */

typedef struct {
    uint32_t h[8];
    int32_t index;
} ranked_t;

/* digest words compare as the big-endian digest bytes do; equal digests by id bytes, as
 * Python compares (digest, id) tuples */
static int ranked_less(const uint32_t h[8], Py_ssize_t i, const ranked_t *other, const ids_t *ids)
{
    for (int w = 0; w < 8; w++)
        if (h[w] != other->h[w]) return h[w] < other->h[w];
    Py_ssize_t j = other->index;
    Py_ssize_t li = ids->start[i + 1] - ids->start[i], lj = ids->start[j + 1] - ids->start[j];
    int c = memcmp(ids->bytes + ids->start[i], ids->bytes + ids->start[j],
                   (size_t)(li < lj ? li : lj));
    return c < 0 || (c == 0 && li < lj);
}

typedef struct {
    ranked_t *top;
    Py_ssize_t k, count;
} topk_t;

static inline void topk_offer(topk_t *t, const ids_t *ids, const uint32_t h[8], Py_ssize_t i)
{
    Py_ssize_t pos = t->count;
    if (pos == t->k) {
        /* the first word settles all but about one comparison in four billion */
        if (h[0] > t->top[pos - 1].h[0] || !ranked_less(h, i, &t->top[pos - 1], ids)) return;
        pos--;
    } else {
        t->count++;
    }
    while (pos > 0 && ranked_less(h, i, &t->top[pos - 1], ids)) {
        t->top[pos] = t->top[pos - 1];
        pos--;
    }
    memcpy(t->top[pos].h, h, 32);
    t->top[pos].index = (int32_t)i;
}

/* ------------------------------------------------------------------ Python functions */

static int get_int32_buffer(PyObject *obj, Py_buffer *view, const char *what, Py_ssize_t *n)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len % 4 != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s must be a buffer of 32-bit integers", what);
        return -1;
    }
    *n = view->len / 4;
    return 0;
}

PyDoc_STRVAR(rank_doc,
             "rank(prefixes, ids, id_units, local_units, excluded_start, excluded, k, impl=None)\n"
             "--\n\n"
             "For each prefix: the number of eligible ids and the k eligible ids with the\n"
             "smallest SHA-256(prefix + id), best first (ties by id bytes), as indexes into\n"
             "ids padded with -1. Id i is not eligible for prefix p when local_units[p] >= 0\n"
             "and id_units[i] == local_units[p], or when i is among\n"
             "excluded[excluded_start[p]:excluded_start[p + 1]]. Integer arguments are\n"
             "buffers of native int32 (array('i')). Returns (eligible, best) as bytes of\n"
             "native int32. Runs without the GIL.");

static PyObject *rank(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"prefixes", "ids", "id_units", "local_units", "excluded_start",
                             "excluded", "k", "impl", NULL};
    PyObject *prefixes_obj, *ids_obj, *id_units_obj, *local_obj, *exstart_obj, *ex_obj;
    PyObject *impl_obj = Py_None;
    Py_ssize_t k;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOn|O:rank", kwlist, &prefixes_obj,
                                     &ids_obj, &id_units_obj, &local_obj, &exstart_obj, &ex_obj,
                                     &k, &impl_obj))
        return NULL;
    const impl_t *impl = impl_by_name(impl_obj);
    if (impl == NULL) return NULL;
    if (k < 1 || k > 1 << 20) {
        PyErr_SetString(PyExc_ValueError, "k must be between 1 and 2**20");
        return NULL;
    }

    PyObject *result = NULL, *eligible_obj = NULL, *best_obj = NULL;
    ids_t ids;
    uint8_t *pbytes = NULL;
    prefix_ctx ctx = {{0}, 0, {NULL}};
    Py_ssize_t *pstart = NULL, n = 0, max_plen = 0;
    uint32_t *stamp = NULL;
    ranked_t *top = NULL;
    Py_buffer id_units = {0}, local = {0}, exstart = {0}, ex = {0};
    Py_ssize_t n_id_units, n_local, n_exstart, n_ex;
    int have_ids = 0, have[4] = {0, 0, 0, 0};

    if (ids_init(&ids, ids_obj) < 0) goto done;
    have_ids = 1;
    if (copy_bytes_seq(prefixes_obj, "prefixes", &n, &pbytes, &pstart, &max_plen) < 0) goto done;
    if (get_int32_buffer(id_units_obj, &id_units, "id_units", &n_id_units) < 0) goto done;
    have[0] = 1;
    if (get_int32_buffer(local_obj, &local, "local_units", &n_local) < 0) goto done;
    have[1] = 1;
    if (get_int32_buffer(exstart_obj, &exstart, "excluded_start", &n_exstart) < 0) goto done;
    have[2] = 1;
    if (get_int32_buffer(ex_obj, &ex, "excluded", &n_ex) < 0) goto done;
    have[3] = 1;
    if (n_id_units != ids.n || n_local != n || n_exstart != n + 1) {
        PyErr_SetString(PyExc_ValueError,
                        "id_units, local_units and excluded_start must have len(ids), "
                        "len(prefixes) and len(prefixes) + 1 items");
        goto done;
    }
    const int32_t *id_unit = id_units.buf, *local_unit = local.buf, *exs = exstart.buf,
                  *exi = ex.buf;
    for (Py_ssize_t p = 0; p < n; p++) {
        if (exs[p] < 0 || exs[p] > exs[p + 1] || exs[p + 1] > n_ex) {
            PyErr_SetString(PyExc_ValueError, "excluded_start must rise within excluded");
            goto done;
        }
    }
    for (Py_ssize_t e = 0; e < n_ex; e++) {
        if (exi[e] < 0 || exi[e] >= ids.n) {
            PyErr_SetString(PyExc_IndexError, "excluded holds an index outside ids");
            goto done;
        }
    }

    eligible_obj = PyBytes_FromStringAndSize(NULL, n * 4);
    best_obj = PyBytes_FromStringAndSize(NULL, n * k * 4);
    if (eligible_obj == NULL || best_obj == NULL) goto done;
    stamp = PyMem_RawCalloc((size_t)(ids.n ? ids.n : 1), sizeof(uint32_t));
    top = PyMem_RawMalloc(sizeof(ranked_t) * (size_t)k);
    if (prefix_ctx_alloc(&ctx, &ids) < 0 || stamp == NULL || top == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int32_t *eligible_out = (int32_t *)PyBytes_AS_STRING(eligible_obj);
    int32_t *best_out = (int32_t *)PyBytes_AS_STRING(best_obj);

    Py_BEGIN_ALLOW_THREADS
    uint32_t h[LANES][8];
    Py_ssize_t wait[LANES];
    for (Py_ssize_t p = 0; p < n; p++) {
        /* stamp[i] == p + 1: inspector i is excluded for this enterprise */
        uint32_t mark = (uint32_t)(p + 1);
        for (int32_t e = exs[p]; e < exs[p + 1]; e++) stamp[exi[e]] = mark;
        int32_t lu = local_unit[p];
        prefix_begin(&ctx, impl, &ids, pbytes + pstart[p], pstart[p + 1] - pstart[p]);
        topk_t t = {top, k, 0};
        Py_ssize_t count = 0;
        int nw = 0;
        /* eligible ids in groups of LANES of the same block count (ids of mixed lengths
         * may break a group early) */
        for (Py_ssize_t i = 0; i <= ids.n; i++) {
            int last = i == ids.n;
            if (!last) {
                if (stamp[i] == mark || (lu >= 0 && id_unit[i] == lu)) continue;
                count++;
            }
            if (nw > 0 && (last || ids.blocks[wait[0]] != ids.blocks[i])) {
                hash_group(&ctx, impl, &ids, wait, nw, h);
                for (int j = 0; j < nw; j++) topk_offer(&t, &ids, h[j], wait[j]);
                nw = 0;
            }
            if (last) break;
            wait[nw++] = i;
            if (nw == LANES) {
                hash_group(&ctx, impl, &ids, wait, nw, h);
                for (int j = 0; j < nw; j++) topk_offer(&t, &ids, h[j], wait[j]);
                nw = 0;
            }
        }
        eligible_out[p] = (int32_t)count;
        for (Py_ssize_t j = 0; j < k; j++) best_out[p * k + j] = j < t.count ? t.top[j].index : -1;
    }
    Py_END_ALLOW_THREADS

    result = PyTuple_Pack(2, eligible_obj, best_obj);

done:
    Py_XDECREF(eligible_obj);
    Py_XDECREF(best_obj);
    if (have[0]) PyBuffer_Release(&id_units);
    if (have[1]) PyBuffer_Release(&local);
    if (have[2]) PyBuffer_Release(&exstart);
    if (have[3]) PyBuffer_Release(&ex);
    if (have_ids) ids_free(&ids);
    PyMem_RawFree(pbytes);
    PyMem_RawFree(pstart);
    prefix_ctx_free(&ctx);
    PyMem_RawFree(stamp);
    PyMem_RawFree(top);
    return result;
}

PyDoc_STRVAR(digests_doc, "digests(prefix, ids, impl=None)\n--\n\n"
                          "[SHA-256(prefix + id) for id in ids], computed as rank() does.");

static PyObject *digests(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"prefix", "ids", "impl", NULL};
    Py_buffer prefix;
    PyObject *ids_obj, *impl_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*O|O:digests", kwlist, &prefix, &ids_obj,
                                     &impl_obj))
        return NULL;
    PyObject *out = NULL;
    prefix_ctx ctx = {{0}, 0, {NULL}};
    ids_t ids;
    const impl_t *impl = impl_by_name(impl_obj);
    if (impl == NULL || ids_init(&ids, ids_obj) < 0) {
        PyBuffer_Release(&prefix);
        return NULL;
    }
    uint32_t(*h)[8] = PyMem_RawMalloc(32 * (size_t)(ids.n + LANES));
    if (prefix_ctx_alloc(&ctx, &ids) < 0 || h == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    prefix_begin(&ctx, impl, &ids, prefix.buf, prefix.len);
    /* in groups of LANES of the same block count, as rank() hashes them */
    Py_ssize_t i = 0;
    while (i < ids.n) {
        Py_ssize_t which[LANES];
        int nw = 0;
        while (nw < LANES && i + nw < ids.n && ids.blocks[i + nw] == ids.blocks[i]) {
            which[nw] = i + nw;
            nw++;
        }
        hash_group(&ctx, impl, &ids, which, nw, h + i);
        i += nw;
    }
    out = PyList_New(ids.n);
    if (out == NULL) goto done;
    for (i = 0; i < ids.n; i++) {
        uint8_t d[32];
        for (int w = 0; w < 8; w++) {
            uint32_t v = h[i][w];
            d[4 * w] = (uint8_t)(v >> 24);
            d[4 * w + 1] = (uint8_t)(v >> 16);
            d[4 * w + 2] = (uint8_t)(v >> 8);
            d[4 * w + 3] = (uint8_t)v;
        }
        PyObject *b = PyBytes_FromStringAndSize((const char *)d, 32);
        if (b == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, b);
    }
done:
    PyBuffer_Release(&prefix);
    ids_free(&ids);
    prefix_ctx_free(&ctx);
    PyMem_RawFree(h);
    return out;
}

PyDoc_STRVAR(implementations_doc,
             "implementations()\n--\n\n"
             "The SHA-256 implementations this CPU runs, the default (fastest) first.");

static PyObject *implementations(PyObject *self, PyObject *unused)
{
#ifdef RANKHASH_X86
    if (impl_default == &IMPL_SHANI) return Py_BuildValue("(ss)", "sha-ni", "portable");
#endif
    return Py_BuildValue("(s)", "portable");
}

static PyMethodDef methods[] = {
    {"rank", (PyCFunction)(void (*)(void))rank, METH_VARARGS | METH_KEYWORDS, rank_doc},
    {"digests", (PyCFunction)(void (*)(void))digests, METH_VARARGS | METH_KEYWORDS, digests_doc},
    {"implementations", implementations, METH_NOARGS, implementations_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rankhash",
    "Inspector ranking of QSDRAW-1 step 5: SHA-256 top-k per enterprise, without the GIL.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__rankhash(void)
{
#ifdef RANKHASH_X86
    if (cpu_has_shani()) impl_default = &IMPL_SHANI;
#endif
    return PyModule_Create(&module);
}
