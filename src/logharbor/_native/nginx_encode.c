/* The agent's NGINX text-format path in C: a chunk of lines -> the NDJSON the agent ships.
 *
 * Built by scripts/build_native.py as logharbor._native.nginx_encode; used by
 * logharbor/formats/nginx_chunk.py, which describes a log_format as a *program* (its literals,
 * its groups and what each variable's handler does) and hands a whole chunk to encode_lines().
 *
 * The C path takes only the lines whose result it can write byte for byte as the Python path
 * (parse() -> dict -> pipeline._encode_records -> orjson) would: printable ASCII without a
 * backslash, matching the format, integers of at most 18 digits, a $time_local whose hour the
 * Python parser converts. Every other line is handed to ``fallback(line) -> bytes`` (the Python
 * path itself), in its place, so the payload is the same whichever path wrote each line.
 * tests/formats/test_formats_nginx_chunk.py holds the two byte-identical (hypothesis).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

enum { T_LIT = 0, T_VAR = 1 };
enum { STOP_CHAR = 0, STOP_END = 1 };
enum { BARE_NONE = 0, BARE_INT = 1, BARE_DECIMAL = 2 };
enum {
    OP_SKIP = 0, OP_HTTP_STR, OP_HTTP_INT, OP_REC_STR, OP_REC_INT, OP_REC_DEFAULT, OP_HTTP_MS,
    OP_REC_MS, OP_REQUEST, OP_TRACE, OP_TIME_LOCAL, OP_TIME_CACHED, OP_TIME_ISO8601, OP_COUNT
};
/* fixed key indices (the Python side writes these first, in this order) */
enum { K_SOURCE = 0, K_MESSAGE, K_TIMESTAMP, K_LEVEL, K_HTTP, K_PROTOCOL, K_TRACE_ID, K_TRACE_HEADER };
enum { H_METHOD = 0, H_PATH, H_STATUS };
/* value kinds */
enum { V_SLICE = 0, V_INT, V_RAW, V_JOIN, V_HTTP };

#define MAX_TOKENS 256
#define MAX_KEYS 256
#define MAX_ENTRIES 128
#define MS_CACHE_MAX 8192

typedef struct {
    int type;
    /* literal */
    const char *lit;
    Py_ssize_t lit_len;
    /* variable */
    int stop;
    char stop_char;
    int op;
    int key;      /* rec or http key index (by op) */
    PyObject *aux; /* a Python callable for OP_HTTP_MS, OP_REC_MS, OP_TIME_LOCAL, OP_TIME_CACHED */
    /* per-token caches */
    char last_text[64];
    Py_ssize_t last_len;  /* -1: empty */
    long long last_value;
    PyObject *ms_cache;   /* dict: value bytes -> JSON bytes of its ms (or None: fallback) */
    int bare;             /* a JSON format's unquoted value: BARE_INT or BARE_DECIMAL, else 0 */
} Token;

typedef struct {
    PyObject_HEAD
    PyObject *spec;      /* keeps the literals and the key bytes alive */
    int ntok;
    Token tok[MAX_TOKENS];
    int nrec, nhttp;
    const char *rec_key[MAX_KEYS];
    Py_ssize_t rec_key_len[MAX_KEYS];
    char rec_is_time[MAX_KEYS];
    const char *http_key[MAX_KEYS];
    Py_ssize_t http_key_len[MAX_KEYS];
    const char *source;   /* JSON of the record's "source" value, e.g. "nginx" with its quotes */
    Py_ssize_t source_len;
    /* $time_local's hour: the 20 bytes that name it and its ns */
    char hour_key[20];
    int hour_valid;
    /* a JSON format: the largest http.status its guard lets through (0: a text format, none) */
    long long max_status;
    long long hour_ns;
} Program;

typedef struct {
    int key;
    int kind;
    Py_ssize_t a, b; /* V_SLICE: start, len; V_JOIN: method start,len */
    Py_ssize_t c, d; /* V_JOIN: path start,len */
    long long i;     /* V_INT */
    const char *raw; /* V_RAW */
    Py_ssize_t raw_len;
} Entry;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + need) cap *= 2;
    char *p = PyMem_Realloc(b->data, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->data = p;
    b->cap = cap;
    return 0;
}

static inline void put(Buf *b, const char *s, Py_ssize_t n) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* ---------------------------------------------------------------------------------------------
 * the program, from the spec made by formats/nginx_chunk.py:
 *   (tokens, rec_keys, rec_is_time, http_keys, source_json)
 *   token: (0, literal bytes) | (1, stop, stop_char, op, key, aux)
 */

static void Program_dealloc(Program *self) {
    for (int i = 0; i < self->ntok; i++) {
        Py_XDECREF(self->tok[i].aux);
        Py_XDECREF(self->tok[i].ms_cache);
    }
    Py_XDECREF(self->spec);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int bytes_of(PyObject *o, const char **s, Py_ssize_t *n) {
    if (!PyBytes_Check(o)) { PyErr_SetString(PyExc_TypeError, "program: bytes expected"); return -1; }
    *s = PyBytes_AS_STRING(o);
    *n = PyBytes_GET_SIZE(o);
    return 0;
}

static int Program_init(Program *self, PyObject *args, PyObject *kw) {
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &spec)) return -1;
    PyObject *tokens, *rec_keys, *rec_time, *http_keys, *source;
    long long max_status = 0;
    if (!PyArg_ParseTuple(spec, "O!O!O!O!O!|L", &PyTuple_Type, &tokens, &PyTuple_Type, &rec_keys,
                          &PyTuple_Type, &rec_time, &PyTuple_Type, &http_keys, &PyBytes_Type, &source,
                          &max_status))
        return -1;
    self->max_status = max_status;
    Py_INCREF(spec);
    Py_XSETREF(self->spec, spec);
    Py_ssize_t nt = PyTuple_GET_SIZE(tokens);
    if (nt > MAX_TOKENS || PyTuple_GET_SIZE(rec_keys) > MAX_KEYS ||
        PyTuple_GET_SIZE(http_keys) > MAX_KEYS || PyTuple_GET_SIZE(rec_time) != PyTuple_GET_SIZE(rec_keys) ||
        PyTuple_GET_SIZE(rec_keys) <= K_TRACE_HEADER || PyTuple_GET_SIZE(http_keys) <= H_STATUS) {
        PyErr_SetString(PyExc_ValueError, "program: too many tokens or keys, or fixed keys missing");
        return -1;
    }
    self->nrec = (int)PyTuple_GET_SIZE(rec_keys);
    self->nhttp = (int)PyTuple_GET_SIZE(http_keys);
    for (int i = 0; i < self->nrec; i++) {
        if (bytes_of(PyTuple_GET_ITEM(rec_keys, i), &self->rec_key[i], &self->rec_key_len[i]) < 0) return -1;
        self->rec_is_time[i] = (char)PyObject_IsTrue(PyTuple_GET_ITEM(rec_time, i));
    }
    for (int i = 0; i < self->nhttp; i++)
        if (bytes_of(PyTuple_GET_ITEM(http_keys, i), &self->http_key[i], &self->http_key_len[i]) < 0) return -1;
    if (bytes_of(source, &self->source, &self->source_len) < 0) return -1;
    self->ntok = 0;
    for (Py_ssize_t i = 0; i < nt; i++) {
        PyObject *t = PyTuple_GET_ITEM(tokens, i);
        Token *k = &self->tok[i];
        memset(k, 0, sizeof *k);
        k->last_len = -1;
        self->ntok = (int)i + 1;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < 2) goto bad;
        long type = PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
        if (type == T_LIT) {
            k->type = T_LIT;
            if (bytes_of(PyTuple_GET_ITEM(t, 1), &k->lit, &k->lit_len) < 0) return -1;
            continue;
        }
        if (type != T_VAR || PyTuple_GET_SIZE(t) < 6 || PyTuple_GET_SIZE(t) > 7) goto bad;
        if (PyTuple_GET_SIZE(t) == 7) k->bare = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 6));
        k->type = T_VAR;
        k->stop = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
        k->stop_char = (char)PyLong_AsLong(PyTuple_GET_ITEM(t, 2));
        k->op = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 3));
        k->key = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 4));
        if (PyErr_Occurred()) return -1;
        if (k->op < 0 || k->op >= OP_COUNT || k->key < 0 ||
            k->key >= ((k->op == OP_HTTP_STR || k->op == OP_HTTP_INT || k->op == OP_HTTP_MS) ? self->nhttp : self->nrec))
            goto bad;
        PyObject *aux = PyTuple_GET_ITEM(t, 5);
        if (aux != Py_None) {
            Py_INCREF(aux);
            k->aux = aux;
        }
        if ((k->op == OP_HTTP_MS || k->op == OP_REC_MS || k->op == OP_TIME_LOCAL || k->op == OP_TIME_CACHED
             || k->op == OP_TIME_ISO8601)
            && (k->aux == NULL || !PyCallable_Check(k->aux)))
            goto bad;
        if (k->op == OP_HTTP_MS || k->op == OP_REC_MS) {
            k->ms_cache = PyDict_New();
            if (!k->ms_cache) return -1;
        }
    }
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "program: a malformed token");
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * one line
 */

typedef struct {
    Entry rec[MAX_ENTRIES];
    int nrec;
    Entry http[MAX_ENTRIES];
    int nhttp;
    PyObject *held[MAX_TOKENS]; /* the ms values a V_RAW entry points into, until the line is written */
    int nheld;
} Rec;

static inline void release(Rec *r) {
    while (r->nheld > 0) Py_DECREF(r->held[--r->nheld]);
}

static inline Entry *find(Entry *e, int n, int key) {
    for (int i = 0; i < n; i++)
        if (e[i].key == key) return &e[i];
    return NULL;
}

/* dict[key] = value: replaced in place, or appended (a dict keeps a key's first position) */
static inline Entry *set(Entry *e, int *n, int key) {
    Entry *x = find(e, *n, key);
    if (x) return x;
    if (*n >= MAX_ENTRIES) return NULL;
    x = &e[(*n)++];
    x->key = key;
    return x;
}

static inline void set_slice(Entry *x, Py_ssize_t a, Py_ssize_t n) {
    x->kind = V_SLICE;
    x->a = a;
    x->b = n;
}

/* ASCII digits only, 1..18 of them: the value; else -1 (the Python path decides) */
static inline long long digits(const char *s, Py_ssize_t n) {
    if (n < 1 || n > 18) return -1;
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i] - '0';
        if (c > 9) return -1;
        v = v * 10 + c;
    }
    return v;
}

/* the JSON bytes of a seconds value as ms (a Python callable, cached per value), a new reference
 * (the line holds it: another thread sharing the program may clear the cache during a callback
 * later in the line); NULL with no error set: the Python path takes the line */
static PyObject *ms_json(Token *k, const char *s, Py_ssize_t n) {
    PyObject *key = PyBytes_FromStringAndSize(s, n);
    if (!key) return NULL;
    PyObject *hit = PyDict_GetItemWithError(k->ms_cache, key);
    if (hit) {
        Py_DECREF(key);
        if (hit == Py_None) return NULL;
        Py_INCREF(hit);
        return hit;
    }
    if (PyErr_Occurred()) { Py_DECREF(key); return NULL; }
    PyObject *text = PyUnicode_DecodeASCII(s, n, NULL);
    PyObject *out = text ? PyObject_CallOneArg(k->aux, text) : NULL;
    Py_XDECREF(text);
    if (!out) { Py_DECREF(key); return NULL; }
    if (out != Py_None && !PyBytes_Check(out)) {
        Py_DECREF(out);
        Py_DECREF(key);
        PyErr_SetString(PyExc_TypeError, "ms: bytes or None expected");
        return NULL;
    }
    if (PyDict_GET_SIZE(k->ms_cache) >= MS_CACHE_MAX) PyDict_Clear(k->ms_cache);
    int r = PyDict_SetItem(k->ms_cache, key, out);
    Py_DECREF(key);
    if (r < 0 || out == Py_None) { Py_DECREF(out); return NULL; }
    return out;
}

/* ns of a Python int result, or -1 with no error when it is not an int in [1e17, 2^63) */
static long long ns_of(PyObject *v) {
    if (!PyLong_Check(v)) return -1;
    int overflow = 0;
    long long ns = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (ns == -1 && PyErr_Occurred())) { PyErr_Clear(); return -1; }
    return ns >= 100000000000000000LL ? ns : -1;
}

/* $time_local as formats.nginx_vars.parse_time_local checks and converts it: -1 (no error set)
 * when the Python path must take the line, -2 on an error */
static long long time_local(Program *p, Token *k, const char *s, Py_ssize_t n) {
    if (n != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':' || s[20] != ' ')
        return -1;
    unsigned m1 = (unsigned char)s[15] - '0', m2 = (unsigned char)s[16] - '0';
    unsigned s1 = (unsigned char)s[18] - '0', s2 = (unsigned char)s[19] - '0';
    if (m1 > 9 || m2 > 9 || s1 > 9 || s2 > 9) return -1;
    unsigned minute = m1 * 10 + m2, second = s1 * 10 + s2;
    if (minute > 59 || second > 60) return -1;
    long long within = ((long long)minute * 60 + (second > 59 ? 59 : second)) * 1000000000LL;
    char key[20];
    memcpy(key, s, 14);
    memcpy(key + 14, s + 20, 6);
    if (!(p->hour_valid && memcmp(key, p->hour_key, 20) == 0)) {
        PyObject *text = PyUnicode_DecodeASCII(s, n, NULL);
        if (!text) return -2;
        PyObject *v = PyObject_CallOneArg(k->aux, text);
        Py_DECREF(text);
        if (!v) {
            if (PyErr_ExceptionMatches(PyExc_ValueError)) { PyErr_Clear(); return -1; }
            return -2;
        }
        long long ns = ns_of(v);
        Py_DECREF(v);
        if (ns < 0) return -1;
        memcpy(p->hour_key, key, 20);
        p->hour_ns = ns - within;
        p->hour_valid = 1;
    }
    if (p->hour_ns > LLONG_MAX - within) return -1; /* past 2262: the Python path says so */
    long long ns = p->hour_ns + within;
    return ns < 100000000000000000LL ? -1 : ns; /* before 1973: a text timestamp */
}

/* $time_iso8601 (``2026-11-25T01:02:03+00:00``) as formats.nginx_vars.parse_time_iso8601 reads
 * it: the hour (date, hour, offset) through that function once, minutes and seconds added here */
static long long time_iso8601(Token *k, const char *s, Py_ssize_t n) {
    if (n != 25 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':'
        || (s[19] != '+' && s[19] != '-') || s[22] != ':')
        return -1;
    unsigned m1 = (unsigned char)s[14] - '0', m2 = (unsigned char)s[15] - '0';
    unsigned s1 = (unsigned char)s[17] - '0', s2 = (unsigned char)s[18] - '0';
    if (m1 > 9 || m2 > 9 || s1 > 9 || s2 > 9) return -1;
    unsigned minute = m1 * 10 + m2, second = s1 * 10 + s2;
    if (minute > 59 || second > 60) return -1;
    long long within = ((long long)minute * 60 + (second > 59 ? 59 : second)) * 1000000000LL;
    /* the hour's key: date and hour (13 bytes) and the offset (6), in last_text */
    char key[19];
    memcpy(key, s, 13);
    memcpy(key + 13, s + 19, 6);
    if (!(k->last_len == 19 && memcmp(k->last_text, key, 19) == 0)) {
        PyObject *text = PyUnicode_DecodeASCII(s, n, NULL);
        if (!text) return -2;
        PyObject *v = PyObject_CallOneArg(k->aux, text);
        Py_DECREF(text);
        if (!v) {
            if (PyErr_ExceptionMatches(PyExc_ValueError)) { PyErr_Clear(); return -1; }
            return -2;
        }
        long long ns = ns_of(v);
        Py_DECREF(v);
        if (ns < 0) return -1;
        memcpy(k->last_text, key, 19);
        k->last_len = 19;
        k->last_value = ns - within; /* the hour's ns */
    }
    if (k->last_value > LLONG_MAX - within) return -1;
    long long ns = k->last_value + within;
    return ns < 100000000000000000LL ? -1 : ns;
}

/* a time variable through its handler's refresh(text) -> (text, value), one value remembered */
static long long time_cached(Token *k, const char *s, Py_ssize_t n) {
    if (k->last_len == n && n <= (Py_ssize_t)sizeof k->last_text && memcmp(k->last_text, s, n) == 0)
        return k->last_value;
    PyObject *text = PyUnicode_DecodeASCII(s, n, NULL);
    if (!text) return -2;
    PyObject *r = PyObject_CallOneArg(k->aux, text);
    Py_DECREF(text);
    if (!r) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) { PyErr_Clear(); return -1; }
        return -2;
    }
    long long ns = (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) ? ns_of(PyTuple_GET_ITEM(r, 1)) : -1;
    Py_DECREF(r);
    if (ns < 0) return -1;
    if (n <= (Py_ssize_t)sizeof k->last_text) {
        memcpy(k->last_text, s, n);
        k->last_len = n;
        k->last_value = ns;
    }
    return ns;
}

/* an unquoted value a JSON parser reads as the number its text says: ``0|[1-9][0-9]*``, and for
 * BARE_DECIMAL an optional ``.[0-9]+`` (no sign, exponent or leading zero: the Python path decides) */
static int json_number(const char *s, Py_ssize_t n, int bare) {
    Py_ssize_t i = 0;
    if (n < 1 || s[0] < '0' || s[0] > '9') return 0;
    if (s[0] == '0') i = 1;
    else while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == n) return 1;
    if (bare != BARE_DECIMAL || s[i] != '.' || i + 1 >= n) return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* 1: written into r; 0: the Python path takes the line; -1: error */
static int parse_line(Program *p, const char *s, Py_ssize_t n, Rec *r) {
    r->nrec = r->nhttp = 0;
    release(r);
    Entry *x;
    Py_ssize_t pos = 0;
    x = set(r->rec, &r->nrec, K_SOURCE);
    x->kind = V_RAW;
    x->raw = p->source;
    x->raw_len = p->source_len;
    for (int t = 0; t < p->ntok; t++) {
        Token *k = &p->tok[t];
        if (k->type == T_LIT) {
            if (n - pos < k->lit_len || memcmp(s + pos, k->lit, k->lit_len) != 0) return 0;
            pos += k->lit_len;
            continue;
        }
        Py_ssize_t start = pos, len;
        if (k->stop == STOP_END) {
            pos = n;
        } else {
            const char *hit = memchr(s + pos, k->stop_char, n - pos);
            if (!hit) return 0; /* the literal after the group cannot match */
            pos = hit - s;
        }
        len = pos - start;
        if (k->bare && !json_number(s + start, len, k->bare)) return 0; /* orjson decides */
        if (len == 0 || (len == 1 && s[start] == '-') || k->op == OP_SKIP) continue;
        const char *v = s + start;
        long long num;
        switch (k->op) {
        case OP_HTTP_STR:
            if (!(x = set(r->http, &r->nhttp, k->key))) return 0;
            set_slice(x, start, len);
            break;
        case OP_HTTP_INT:
            if ((num = digits(v, len)) < 0) return 0;
            if (!(x = set(r->http, &r->nhttp, k->key))) return 0;
            x->kind = V_INT;
            x->i = num;
            break;
        case OP_REC_STR:
            if (!(x = set(r->rec, &r->nrec, k->key))) return 0;
            set_slice(x, start, len);
            break;
        case OP_REC_INT:
            if ((num = digits(v, len)) < 0) return 0;
            if (!(x = set(r->rec, &r->nrec, k->key))) return 0;
            x->kind = V_INT;
            x->i = num;
            break;
        case OP_REC_DEFAULT:
            if (find(r->rec, r->nrec, k->key)) break;
            if (!(x = set(r->rec, &r->nrec, k->key))) return 0;
            set_slice(x, start, len);
            break;
        case OP_HTTP_MS:
        case OP_REC_MS: {
            if (k->op == OP_REC_MS && (memchr(v, ',', len) || memchr(v, ':', len))) return 0;
            PyObject *js = ms_json(k, v, len);
            if (!js) return PyErr_Occurred() ? -1 : 0;
            r->held[r->nheld++] = js; /* one per token at most: nheld <= ntok <= MAX_TOKENS */
            x = k->op == OP_HTTP_MS ? set(r->http, &r->nhttp, k->key) : set(r->rec, &r->nrec, k->key);
            if (!x) return 0;
            x->kind = V_RAW;
            x->raw = PyBytes_AS_STRING(js); /* held by r->held until the line is written */
            x->raw_len = PyBytes_GET_SIZE(js);
            break;
        }
        case OP_REQUEST: {
            if (!(x = set(r->rec, &r->nrec, K_MESSAGE))) return 0;
            set_slice(x, start, len);
            const char *sp1 = memchr(v, ' ', len);
            if (!sp1) break;
            Py_ssize_t a = sp1 - v;
            const char *sp2 = memchr(sp1 + 1, ' ', len - a - 1);
            Py_ssize_t b = sp2 ? sp2 - v : len;
            if (sp2 && memchr(sp2 + 1, ' ', len - b - 1)) break; /* four or more parts: nothing */
            if (!(x = set(r->http, &r->nhttp, H_METHOD))) return 0;
            set_slice(x, start, a);
            if (!(x = set(r->http, &r->nhttp, H_PATH))) return 0;
            set_slice(x, start + a + 1, b - a - 1);
            if (sp2) {
                if (!(x = set(r->rec, &r->nrec, K_PROTOCOL))) return 0;
                set_slice(x, start + b + 1, len - b - 1);
            }
            break;
        }
        case OP_TRACE:
            x = set(r->rec, &r->nrec, find(r->rec, r->nrec, K_TRACE_ID) ? K_TRACE_HEADER : K_TRACE_ID);
            if (!x) return 0;
            set_slice(x, start, len);
            break;
        case OP_TIME_LOCAL:
        case OP_TIME_CACHED:
        case OP_TIME_ISO8601:
            num = k->op == OP_TIME_LOCAL ? time_local(p, k, v, len)
                : k->op == OP_TIME_ISO8601 ? time_iso8601(k, v, len) : time_cached(k, v, len);
            if (num == -2) return -1;
            if (num < 0) return 0;
            if (!(x = set(r->rec, &r->nrec, K_TIMESTAMP))) return 0;
            x->kind = V_INT;
            x->i = num;
            break;
        default:
            return 0;
        }
    }
    if (pos != n) return 0;
    /* _finish */
    if (r->nhttp) {
        if (!(x = set(r->rec, &r->nrec, K_HTTP))) return 0;
        x->kind = V_HTTP;
        Entry *st = find(r->http, r->nhttp, H_STATUS);
        if (st) {
            if (st->kind != V_INT || (p->max_status && st->i > p->max_status)) return 0;
            if (!(x = set(r->rec, &r->nrec, K_LEVEL))) return 0;
            x->kind = V_RAW;
            x->raw = st->i >= 500 ? "\"ERROR\"" : st->i >= 400 ? "\"WARN\"" : "\"INFO\"";
            x->raw_len = (Py_ssize_t)strlen(x->raw);
        }
        if (!find(r->rec, r->nrec, K_MESSAGE)) {
            Entry *m = find(r->http, r->nhttp, H_METHOD), *pa = find(r->http, r->nhttp, H_PATH);
            if (m && pa) {
                if (m->kind != V_SLICE || pa->kind != V_SLICE) return 0;
                if (!(x = set(r->rec, &r->nrec, K_MESSAGE))) return 0;
                x->kind = V_JOIN;
                x->a = m->a; x->b = m->b; x->c = pa->a; x->d = pa->b;
            }
        }
    }
    if (!find(r->rec, r->nrec, K_MESSAGE)) {
        if (!(x = set(r->rec, &r->nrec, K_MESSAGE))) return 0;
        set_slice(x, 0, n);
    }
    return 1;
}

/* the inside of a JSON string of printable ASCII without backslashes: only '"' is escaped */
static inline void put_esc(Buf *b, const char *s, Py_ssize_t n) {
    const char *q;
    while ((q = memchr(s, '"', n)) != NULL) {
        Py_ssize_t k = q - s;
        put(b, s, k);
        put(b, "\\\"", 2);
        s += k + 1;
        n -= k + 1;
    }
    put(b, s, n);
}

static inline void put_str(Buf *b, const char *s, Py_ssize_t n) {
    b->data[b->len++] = '"';
    put_esc(b, s, n);
    b->data[b->len++] = '"';
}

static inline void put_int(Buf *b, long long v) {
    char tmp[24];
    int i = 24;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) tmp[--i] = '-';
    put(b, tmp + i, 24 - i);
}

static int put_entries(Buf *b, const char *s, Entry *e, int n, const char *const *keys,
                       const Py_ssize_t *key_len, Rec *r, Program *p) {
    for (int i = 0; i < n; i++) {
        Entry *x = &e[i];
        if (i) b->data[b->len++] = ',';
        put(b, keys[x->key], key_len[x->key]);
        switch (x->kind) {
        case V_SLICE:
            put_str(b, s + x->a, x->b);
            break;
        case V_INT:
            put_int(b, x->i);
            break;
        case V_RAW:
            put(b, x->raw, x->raw_len);
            break;
        case V_JOIN: /* method + ' ' + path, one string */
            b->data[b->len++] = '"';
            put_esc(b, s + x->a, x->b);
            b->data[b->len++] = ' ';
            put_esc(b, s + x->c, x->d);
            b->data[b->len++] = '"';
            break;
        case V_HTTP:
            b->data[b->len++] = '{';
            put_entries(b, s, r->http, r->nhttp, p->http_key, p->http_key_len, r, p);
            b->data[b->len++] = '}';
            break;
        }
    }
    return 0;
}

/* an upper bound of the bytes a parsed line writes (each '"' may double) */
static Py_ssize_t bound(Program *p, Rec *r, Py_ssize_t n) {
    Py_ssize_t total = 64 + p->source_len;
    for (int i = 0; i < r->nrec; i++) {
        Entry *x = &r->rec[i];
        total += p->rec_key_len[x->key] + 8 + 24;
        if (x->kind == V_SLICE) total += 2 * x->b;
        else if (x->kind == V_JOIN) total += 2 * (x->b + x->d) + 1;
        else if (x->kind == V_RAW) total += x->raw_len;
    }
    for (int i = 0; i < r->nhttp; i++) {
        Entry *x = &r->http[i];
        total += p->http_key_len[x->key] + 8 + 24;
        if (x->kind == V_SLICE) total += 2 * x->b;
        else if (x->kind == V_RAW) total += x->raw_len;
    }
    (void)n;
    return total;
}

static PyTypeObject ProgramType;

/* encode_lines(program, lines, head, time_ns, fallback) -> bytes */
static PyObject *encode_lines(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "encode_lines(program, lines, head, time_ns, fallback)");
        return NULL;
    }
    PyObject *prog = args[0], *lines = args[1], *head = args[2], *fallback = args[4];
    if (!PyList_Check(lines) || !PyBytes_Check(head) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "encode_lines: a list of str, head bytes, a callable");
        return NULL;
    }
    if (!PyObject_TypeCheck(prog, &ProgramType)) {
        PyErr_SetString(PyExc_TypeError, "encode_lines: not a Program");
        return NULL;
    }
    Program *p = (Program *)prog;
    long long time_ns = PyLong_AsLongLong(args[3]);
    if (time_ns == -1 && PyErr_Occurred()) return NULL;
    const char *hd = PyBytes_AS_STRING(head);
    Py_ssize_t hd_len = PyBytes_GET_SIZE(head);
    char tsbuf[48];
    Py_ssize_t ts_len;
    {
        Buf t = {tsbuf, 0, sizeof tsbuf};
        put(&t, ",\"timestamp\":", 13);
        put_int(&t, time_ns);
        ts_len = t.len;
    }
    Buf b = {NULL, 0, 0};
    /* one per call: a callback (a time, a fallback line) may let another source's thread run
     * encode_lines meanwhile */
    Rec *r = PyMem_Malloc(sizeof(Rec));
    if (!r) return PyErr_NoMemory();
    r->nheld = 0;
    PyObject *line = NULL;
    /* the list's size read on each turn and the line held: a callback may change the list */
    for (Py_ssize_t li = 0; li < PyList_GET_SIZE(lines); li++) {
        line = PyList_GET_ITEM(lines, li);
        Py_INCREF(line);
        int got = 0;
        if (PyUnicode_Check(line) && PyUnicode_IS_COMPACT_ASCII(line)) {
            const char *s = (const char *)PyUnicode_DATA(line);
            Py_ssize_t n = PyUnicode_GET_LENGTH(line);
            int clean = n > 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f || c == '\\') { clean = 0; break; }
            }
            if (clean) {
                got = parse_line(p, s, n, r);
                if (got < 0) goto fail;
            }
            if (got) {
                if (buf_grow(&b, hd_len + bound(p, r, n) + ts_len) < 0) goto fail;
                put(&b, hd, hd_len);
                if (hd_len > 1) b.data[b.len++] = ',';
                put_entries(&b, s, r->rec, r->nrec, p->rec_key, p->rec_key_len, r, p);
                int has_time = 0;
                for (int i = 0; i < r->nrec; i++)
                    if (p->rec_is_time[r->rec[i].key]) { has_time = 1; break; }
                if (!has_time) put(&b, tsbuf, ts_len);
                b.data[b.len++] = '}';
                b.data[b.len++] = '\n';
            }
            release(r);
        }
        if (!got) {
            PyObject *out = PyObject_CallOneArg(fallback, line);
            if (!out) goto fail;
            if (!PyBytes_Check(out)) {
                Py_DECREF(out);
                PyErr_SetString(PyExc_TypeError, "encode_lines: fallback must return bytes");
                goto fail;
            }
            if (buf_grow(&b, PyBytes_GET_SIZE(out)) < 0) { Py_DECREF(out); goto fail; }
            put(&b, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out));
            Py_DECREF(out);
        }
        Py_CLEAR(line);
    }
    PyObject *res = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    PyMem_Free(r);
    return res;
fail:
    Py_XDECREF(line);
    release(r);
    PyMem_Free(b.data);
    PyMem_Free(r);
    return NULL;
}

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logharbor._native.nginx_encode.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compiled NGINX text log_format (see formats/nginx_chunk.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Program_init,
    .tp_dealloc = (destructor)Program_dealloc,
};

static PyMethodDef methods[] = {
    {"encode_lines", (PyCFunction)(void (*)(void))encode_lines, METH_FASTCALL,
     "encode_lines(program, lines, head, time_ns, fallback) -> NDJSON bytes of every line"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logharbor._native.nginx_encode",
    "The agent's NGINX text-format path: lines -> NDJSON (see formats/nginx_chunk.py).", -1, methods,
};

PyMODINIT_FUNC PyInit_nginx_encode(void) {
    if (PyType_Ready(&ProgramType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ProgramType);
    if (PyModule_AddObject(m, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(&ProgramType);
        Py_DECREF(m);
        return NULL;
    }
#ifndef SOURCE_SHA256
#define SOURCE_SHA256 "" /* scripts/build_native.py defines it: the digest of this file */
#endif
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
