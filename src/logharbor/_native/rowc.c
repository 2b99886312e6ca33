/* rowc: the compiled normaliser of native ingest (issue #24 item 2).
 *
 * An NDJSON body in, store rows out, with the GIL released for the whole body. It is a FAST PATH:
 * it takes a line only when it is sure to write exactly the bytes the Python path writes
 * (server/ingest/ndjson.py -> server/engine/store/rows.py encode_record -> record.py _fold ->
 * orjson.dumps) and says "not mine" for every other line, which then goes through the Python path
 * as before (server/ingest/decoder.py does the per-line fallback and the pattern ids it misses).
 * It never writes an error: any line that would be one (bad JSON, bad UTF-8, a bad timestamp, a
 * limit) is "not mine", so every error message is the Python path's own.
 *
 * What it takes (everything else falls back, see docs/architecture.md "The compiled normaliser"):
 * - a JSON object per line, strict JSON (orjson's grammar), no key written with an escape, no key
 *   twice in one object, nesting at most MAX_DEPTH, no run of 19+ digits anywhere (exactjson's
 *   lossy_lines then reads the line with the exact decoder), no integer "-0", no number with an
 *   exponent, a float only when its text has <= 15 significant digits and orjson prints it
 *   without an exponent (then the printed text is the sent text minus trailing zeros);
 * - at most one key of each canonical field (record.py's alias tables), its value neither null nor
 *   "" unless the key is the canonical name itself (then the field is left out, as _fold does);
 *   string values for message/service/source/host/instance/env/version/tenant/request, a 32-hex
 *   trace id, an ASCII span id, a level text of the alias table (any case) or a pino number >= 10,
 *   an RFC 3339 "...Z" time of record.py's _fast_utc form or an epoch integer;
 * - an "http" object whose known members have their column's type and range (an integer
 *   duration_ms up to 15 digits), the others appended to the attributes as "http.<key>";
 * - none of: "attributes", the server's names (observed_timestamp, severity_number, pattern_id),
 *   a flat "http.*" key, an object under service/host/trace/span/log/deployment, a logger dialect
 *   (dialects.py _dialect_of's predicates, exactly), the tenant of another writer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The Python code this file mirrors, by digest (logharbor.server.ingest.decoder.mirrored_digest:
 * the source of dialects._dialect_of, record._fold, rows.encode_record … and the alias tables).
 * When one of them changes, the server does not use this normaliser ("rowc is off: …") until
 * someone has brought this file in line and written the new digest here. */
#define MIRRORS_SHA256 "da228081927e4913dd074cf4703dc035949cd292fa212dedf771d145aa1cf210"

#define MAX_DEPTH 32
#define MAX_MEMBERS 256
#define MAX_NESTED_KEYS 64
#define NS 1000000000LL
#define MAX_NS 9223372036854775807LL
#define YEAR_2000_NS (946684800LL * NS)

/* ------------------------------------------------------------------------------------------ */
/* growable byte buffer */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = 1; return 0; }
    b->p = p;
    b->cap = cap;
    return 1;
}

static inline void put(buf_t *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void putc1(buf_t *b, char c) {
    if (!buf_reserve(b, 1)) return;
    b->p[b->len++] = c;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------------------------------ */
/* JSON scanning and re-writing as orjson writes it */

enum { T_STR = 1, T_INT, T_FLOAT, T_TRUE, T_FALSE, T_NULL, T_OBJ, T_ARR };

typedef struct {
    const unsigned char *s; /* the line */
    size_t n, i;
    buf_t *out;             /* where values are re-written */
} scan_t;

typedef struct {
    int type;
    size_t start, len;      /* the value as written in out (strings with their quotes) */
    int64_t ival;           /* T_INT: the value (at most 18 digits) */
    int neg;                /* T_INT / T_FLOAT: a minus sign */
    int escaped;            /* T_STR: the written text holds an escape */
    int ascii;              /* T_STR: only ASCII */
} val_t;

static inline void skip_ws(scan_t *sc) {
    while (sc->i < sc->n) {
        unsigned char c = sc->s[sc->i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') sc->i++;
        else break;
    }
}

static const char HEX[] = "0123456789abcdef";

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_u4(scan_t *sc, unsigned *cp) {
    if (sc->i + 4 > sc->n) return 0;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(sc->s[sc->i + k]);
        if (h < 0) return 0;
        v = v * 16 + (unsigned)h;
    }
    sc->i += 4;
    *cp = v;
    return 1;
}

/* the length of a valid UTF-8 sequence starting at s[0] (first byte >= 0x80), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF (as orjson and Python decode) */
static size_t utf8_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

static void put_utf8(buf_t *b, unsigned cp) {
    char t[4];
    if (cp < 0x80) { t[0] = (char)cp; put(b, t, 1); }
    else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); put(b, t, 2); }
    else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F)); put(b, t, 3);
    } else {
        t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); put(b, t, 4);
    }
}

/* a code point below 0x20, '"' or '\\' as orjson escapes it */
static void put_escaped_ascii(buf_t *b, unsigned cp, int *escaped) {
    char t[6];
    *escaped = 1;
    switch (cp) {
    case '"': PUTS(b, "\\\""); return;
    case '\\': PUTS(b, "\\\\"); return;
    case '\b': PUTS(b, "\\b"); return;
    case '\t': PUTS(b, "\\t"); return;
    case '\n': PUTS(b, "\\n"); return;
    case '\f': PUTS(b, "\\f"); return;
    case '\r': PUTS(b, "\\r"); return;
    default:
        t[0] = '\\'; t[1] = 'u'; t[2] = '0'; t[3] = '0'; t[4] = HEX[(cp >> 4) & 0xF]; t[5] = HEX[cp & 0xF];
        put(b, t, 6);
    }
}

/* A string at s[i] == '"': written to out as orjson writes the decoded text. 0: not mine. */
static int scan_string(scan_t *sc, val_t *v, int key) {
    buf_t *b = sc->out;
    const unsigned char *s = sc->s;
    size_t n = sc->n;
    v->type = T_STR;
    v->start = b->len;
    v->escaped = 0;
    v->ascii = 1;
    sc->i++;
    putc1(b, '"');
    size_t run = sc->i;
    for (;;) {
        /* eight plain bytes at a time: none below 0x20, '"', '\\' or above 0x7f */
        while (sc->i + 8 <= n) {
            uint64_t x;
            memcpy(&x, s + sc->i, 8);
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t q = x ^ (ones * '"'), b2 = x ^ (ones * '\\');
            uint64_t special = ((x - ones * 0x20) | ((q - ones) & ~q) | ((b2 - ones) & ~b2) | x) & highs;
            if (special) break;
            sc->i += 8;
        }
        if (sc->i >= n) return 0;
        unsigned char c = s[sc->i];
        if (c == '"') {
            put(b, (const char *)s + run, sc->i - run);
            sc->i++;
            putc1(b, '"');
            v->len = b->len - v->start;
            return 1;
        }
        if (c < 0x20) return 0; /* a raw control character: orjson refuses the line */
        if (c == '\\') {
            if (key) return 0;  /* keys compare by their bytes: no escapes in them */
            put(b, (const char *)s + run, sc->i - run);
            sc->i++;
            if (sc->i >= n) return 0;
            unsigned char e = s[sc->i++];
            unsigned cp;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (!read_u4(sc, &cp)) return 0;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (sc->i + 2 > n || s[sc->i] != '\\' || s[sc->i + 1] != 'u') return 0;
                    sc->i += 2;
                    if (!read_u4(sc, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return 0;
                }
                break;
            default:
                return 0;
            }
            if (cp < 0x20 || cp == '"' || cp == '\\') {
                put_escaped_ascii(b, cp, &v->escaped);
            } else {
                if (cp >= 0x80) v->ascii = 0;
                put_utf8(b, cp);
            }
            run = sc->i;
            continue;
        }
        if (c >= 0x80) {
            if (c < 0xC2) return 0;
            size_t k = utf8_len(s + sc->i, n - sc->i);
            if (!k) return 0;
            v->ascii = 0;
            sc->i += k;
            continue;
        }
        sc->i++;
    }
}

/* A number: integers of at most 18 digits as orjson prints them (the same digits), floats only
 * in the form whose shortest repr is provably the sent digits (<= 15 significant, no exponent,
 * printed by orjson without one: 1e-5 <= |x| < 1e15 or zero). 0: not mine. */
static int scan_number(scan_t *sc, val_t *v) {
    const unsigned char *s = sc->s;
    size_t n = sc->n, i = sc->i;
    int neg = 0;
    if (s[i] == '-') { neg = 1; i++; }
    size_t int_start = i;
    if (i >= n || s[i] < '0' || s[i] > '9') return 0;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t int_len = i - int_start;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) return 0; /* an exponent: not mine */
    if (i < n && s[i] >= '0' && s[i] <= '9') return 0;   /* a leading zero: invalid JSON */
    buf_t *b = sc->out;
    v->neg = neg;
    v->start = b->len;
    if (i >= n || s[i] != '.') {
        if (int_len > 18) return 0;
        int64_t x = 0;
        for (size_t k = int_start; k < i; k++) x = x * 10 + (s[k] - '0');
        if (neg && x == 0) return 0; /* "-0": orjson prints 0 */
        v->type = T_INT;
        v->ival = neg ? -x : x;
        put(b, (const char *)s + sc->i, i - sc->i);
        v->len = b->len - v->start;
        sc->i = i;
        return 1;
    }
    i++; /* the '.' */
    size_t frac_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    size_t frac_len = i - frac_start;
    if (frac_len == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) return 0;
    /* trailing zeros of the fraction are not printed (one digit stays) */
    size_t keep = frac_len;
    while (keep > 1 && s[frac_start + keep - 1] == '0') keep--;
    int int_zero = (int_len == 1 && s[int_start] == '0');
    size_t sig;
    if (!int_zero) {
        if (int_len > 15) return 0;
        sig = int_len + keep;
        if (keep == 1 && s[frac_start] == '0') sig = int_len; /* x.0 */
        /* trailing zeros of the integer part are significant only up to the point; count them as
         * digits, conservative */
    } else {
        size_t lead = 0;
        while (lead < keep && s[frac_start + lead] == '0') lead++;
        if (lead == keep) {
            sig = 0; /* zero */
        } else {
            if (lead > 4) return 0; /* below 1e-5: orjson may print an exponent */
            sig = keep - lead;
        }
    }
    if (sig > 15) return 0;
    v->type = T_FLOAT;
    put(b, (const char *)s + sc->i, frac_start - sc->i);
    put(b, (const char *)s + frac_start, keep);
    v->len = b->len - v->start;
    sc->i = i;
    return 1;
}

static int scan_value(scan_t *sc, val_t *v, int depth);

typedef struct { size_t start, len; } span_t;

static int keys_unique(const unsigned char *s, span_t *keys, int nkeys, span_t key) {
    for (int k = 0; k < nkeys; k++) {
        if (keys[k].len == key.len && memcmp(s + keys[k].start, s + key.start, key.len) == 0) return 0;
    }
    return 1;
}

static int scan_object(scan_t *sc, val_t *v, int depth) {
    buf_t *b = sc->out;
    span_t keys[MAX_NESTED_KEYS];
    int nkeys = 0;
    v->type = T_OBJ;
    v->start = b->len;
    sc->i++;
    putc1(b, '{');
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == '}') {
        sc->i++;
        putc1(b, '}');
        v->len = b->len - v->start;
        return 1;
    }
    for (;;) {
        if (sc->i >= sc->n || sc->s[sc->i] != '"') return 0;
        val_t k, item;
        size_t kstart = sc->i + 1;
        if (!scan_string(sc, &k, 1)) return 0;
        span_t key = {kstart, sc->i - 1 - kstart};
        if (nkeys >= MAX_NESTED_KEYS || !keys_unique(sc->s, keys, nkeys, key)) return 0;
        keys[nkeys++] = key;
        skip_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':') return 0;
        sc->i++;
        putc1(b, ':');
        skip_ws(sc);
        if (!scan_value(sc, &item, depth + 1)) return 0;
        skip_ws(sc);
        if (sc->i >= sc->n) return 0;
        if (sc->s[sc->i] == ',') {
            sc->i++;
            putc1(b, ',');
            skip_ws(sc);
            continue;
        }
        if (sc->s[sc->i] == '}') {
            sc->i++;
            putc1(b, '}');
            v->len = b->len - v->start;
            return 1;
        }
        return 0;
    }
}

static int scan_array(scan_t *sc, val_t *v, int depth) {
    buf_t *b = sc->out;
    v->type = T_ARR;
    v->start = b->len;
    sc->i++;
    putc1(b, '[');
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ']') {
        sc->i++;
        putc1(b, ']');
        v->len = b->len - v->start;
        return 1;
    }
    for (;;) {
        val_t item;
        if (!scan_value(sc, &item, depth + 1)) return 0;
        skip_ws(sc);
        if (sc->i >= sc->n) return 0;
        if (sc->s[sc->i] == ',') {
            sc->i++;
            putc1(b, ',');
            skip_ws(sc);
            continue;
        }
        if (sc->s[sc->i] == ']') {
            sc->i++;
            putc1(b, ']');
            v->len = b->len - v->start;
            return 1;
        }
        return 0;
    }
}

static int scan_literal(scan_t *sc, val_t *v, const char *word, size_t len, int type) {
    if (sc->i + len > sc->n || memcmp(sc->s + sc->i, word, len) != 0) return 0;
    v->type = type;
    v->start = sc->out->len;
    put(sc->out, word, len);
    v->len = len;
    sc->i += len;
    return 1;
}

static int scan_value(scan_t *sc, val_t *v, int depth) {
    if (depth > MAX_DEPTH || sc->i >= sc->n) return 0;
    unsigned char c = sc->s[sc->i];
    switch (c) {
    case '"': return scan_string(sc, v, 0);
    case '{': return scan_object(sc, v, depth);
    case '[': return scan_array(sc, v, depth);
    case 't': return scan_literal(sc, v, "true", 4, T_TRUE);
    case 'f': return scan_literal(sc, v, "false", 5, T_FALSE);
    case 'n': return scan_literal(sc, v, "null", 4, T_NULL);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return scan_number(sc, v);
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the keys of a record: record.py's alias tables and dialects.py's predicates */

enum {
    F_NONE = 0, F_TIMESTAMP, F_MESSAGE, F_LEVEL, F_TRACE, F_SPAN, F_REQUEST, F_SERVICE, F_HOST,
    F_ENV, F_VERSION, F_SOURCE, F_INSTANCE, F_TENANT, F_HTTP, F_COUNT,
    F_REFUSE /* a key this path never takes (attributes, the server's names, dialect markers) */
};

/* flags of a key */
#define K_CANONICAL 1    /* a canonical name: null or "" there is the field left out */
#define K_STRICT_TIME 2  /* timestamp / @timestamp: a value there must be a time */
#define K_NESTED 4       /* dialects.NESTED_KEYS: an object there is unnested */
/* presence bits for dialects._dialect_of */
#define D_T 1u
#define D_MT 2u
#define D_M 4u
#define D_L 8u
#define D_MESSAGE_UP 16u
#define D_PROGRAM 32u
#define D_PRIORITY 64u
#define D_FACILITY 128u
#define D_LEVEL_VALUE 256u
#define D_LOGGER_NAME 512u
#define D_VERSION_AT 1024u
#define D_PID 2048u
#define D_HOSTNAME 4096u
#define D_MSG 8192u
#define D_LEVEL 16384u
#define D_STACKTRACE 32768u
#define D_TS 65536u
#define D_CALLER 131072u
#define D_SOURCE 262144u
#define D_TIME 524288u
#define D_TEXT 1048576u
#define D_RECORD 2097152u
#define D_SHORT_MESSAGE 4194304u
#define D_VERSION 8388608u
#define D_LOGGER_NAME_J 16777216u /* log4j2: loggerName */
#define D_INSTANT 33554432u
#define D_THROWN 67108864u
#define D_FIELDS 134217728u      /* rust tracing: fields + target */
#define D_TARGET 268435456u
#define D_REQUEST 536870912u     /* caddy: request + duration + logger */
#define D_DURATION 1073741824u
#define D_LOGGER 2147483648u

typedef struct {
    const char *name;
    int field;
    int flags;
    unsigned dialect;
} keydef_t;

static const keydef_t KEYS[] = {
    {"timestamp", F_TIMESTAMP, K_CANONICAL | K_STRICT_TIME, 0},
    {"@timestamp", F_TIMESTAMP, K_STRICT_TIME, 0},
    {"time", F_TIMESTAMP, 0, D_TIME},
    {"ts", F_TIMESTAMP, 0, D_TS},
    {"timeMillis", F_TIMESTAMP, 0, 0},
    {"datetime", F_TIMESTAMP, 0, 0},
    {"date", F_TIMESTAMP, 0, 0},
    {"message", F_MESSAGE, K_CANONICAL, 0},
    {"msg", F_MESSAGE, 0, D_MSG},
    {"short_message", F_MESSAGE, 0, D_SHORT_MESSAGE},
    {"log", F_MESSAGE, K_NESTED, 0},
    {"event", F_MESSAGE, 0, 0},
    {"level", F_LEVEL, K_CANONICAL, D_LEVEL},
    {"severity", F_LEVEL, 0, 0},
    {"lvl", F_LEVEL, 0, 0},
    {"levelname", F_REFUSE, 0, 0},  /* python logging's dialect */
    {"log.level", F_LEVEL, 0, 0},
    {"loglevel", F_LEVEL, 0, 0},
    {"severity_text", F_LEVEL, 0, 0},
    {"trace_id", F_TRACE, K_CANONICAL, 0},
    {"traceId", F_TRACE, 0, 0},
    {"trace.id", F_TRACE, 0, 0},
    {"traceparent", F_TRACE, 0, 0},
    {"trace", F_TRACE, K_NESTED, 0},
    {"x_amzn_trace_id", F_TRACE, 0, 0},
    {"X-Amzn-Trace-Id", F_TRACE, 0, 0},
    {"span_id", F_SPAN, K_CANONICAL, 0},
    {"spanId", F_SPAN, 0, 0},
    {"span.id", F_SPAN, 0, 0},
    {"span", F_NONE, K_NESTED, 0},
    {"request_id", F_REQUEST, K_CANONICAL, 0},
    {"requestId", F_REQUEST, 0, 0},
    {"request.id", F_REQUEST, 0, 0},
    {"req_id", F_REQUEST, 0, 0},
    {"x_request_id", F_REQUEST, 0, 0},
    {"X-Request-ID", F_REQUEST, 0, 0},
    {"service", F_SERVICE, K_CANONICAL | K_NESTED, 0},
    {"service.name", F_SERVICE, 0, 0},
    {"service_name", F_SERVICE, 0, 0},
    {"serviceName", F_SERVICE, 0, 0},
    {"host", F_HOST, K_CANONICAL | K_NESTED, 0},
    {"hostname", F_HOST, 0, D_HOSTNAME},
    {"host.name", F_HOST, 0, 0},
    {"env", F_ENV, K_CANONICAL, 0},
    {"environment", F_ENV, 0, 0},
    {"deployment.environment", F_ENV, 0, 0},
    {"deployment", F_NONE, K_NESTED, 0},
    {"version", F_VERSION, K_CANONICAL, D_VERSION},
    {"service.version", F_VERSION, 0, 0},
    {"source", F_SOURCE, K_CANONICAL, D_SOURCE},
    {"instance", F_INSTANCE, K_CANONICAL, 0},
    {"tenant", F_TENANT, K_CANONICAL, 0},
    {"http", F_HTTP, K_CANONICAL, 0},
    {"attributes", F_REFUSE, 0, 0},
    {"observed_timestamp", F_REFUSE, 0, 0},
    {"severity_number", F_REFUSE, 0, 0},
    {"pattern_id", F_REFUSE, 0, 0},
    /* dialect markers that are never aliases */
    {"@t", F_NONE, 0, D_T},
    {"@mt", F_NONE, 0, D_MT},
    {"@m", F_NONE, 0, D_M},
    {"@l", F_NONE, 0, D_L},
    {"httpRequest", F_REFUSE, 0, 0},
    {"serviceContext", F_REFUSE, 0, 0},
    {"timestampSeconds", F_REFUSE, 0, 0},
    {"MESSAGE", F_NONE, 0, D_MESSAGE_UP},
    {"PROGRAM", F_NONE, 0, D_PROGRAM},
    {"PRIORITY", F_NONE, 0, D_PRIORITY},
    {"FACILITY", F_NONE, 0, D_FACILITY},
    {"level_value", F_NONE, 0, D_LEVEL_VALUE},
    {"logger_name", F_NONE, 0, D_LOGGER_NAME},
    {"@version", F_NONE, 0, D_VERSION_AT},
    {"ecs.version", F_REFUSE, 0, 0},
    {"ecs", F_REFUSE, 0, 0},
    {"pid", F_NONE, 0, D_PID},
    {"stacktrace", F_NONE, 0, D_STACKTRACE},
    {"caller", F_NONE, 0, D_CALLER},
    {"text", F_NONE, 0, D_TEXT},     /* loguru serialize=True: {"text", "record"} */
    {"record", F_NONE, 0, D_RECORD},
    {"loggerFqcn", F_REFUSE, 0, 0},       /* log4j2 JsonLayout */
    {"loggerName", F_NONE, 0, D_LOGGER_NAME_J},
    {"instant", F_NONE, 0, D_INSTANT},
    {"thrown", F_NONE, 0, D_THROWN},
    {"LogLevel", F_REFUSE, 0, 0},         /* .NET JsonConsoleFormatter (with Category or EventId) */
    {"fields", F_NONE, 0, D_FIELDS},
    {"target", F_NONE, 0, D_TARGET},
    {"resp_headers", F_REFUSE, 0, 0},     /* caddy */
    {"request", F_NONE, 0, D_REQUEST},
    {"duration", F_NONE, 0, D_DURATION},
    {"logger", F_NONE, 0, D_LOGGER},
    {"DownstreamStatus", F_REFUSE, 0, 0}, /* traefik */
};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

#define KEY_SLOTS 512
static int key_slot[KEY_SLOTS]; /* index + 1 into KEYS, 0 empty; filled at import */

static uint32_t hash_bytes(const unsigned char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < n; k++) { h ^= s[k]; h *= 16777619u; }
    return h;
}

static void keys_init(void) {
    memset(key_slot, 0, sizeof(key_slot));
    for (size_t k = 0; k < NKEYS; k++) {
        const char *name = KEYS[k].name;
        uint32_t h = hash_bytes((const unsigned char *)name, strlen(name)) & (KEY_SLOTS - 1);
        while (key_slot[h]) h = (h + 1) & (KEY_SLOTS - 1);
        key_slot[h] = (int)k + 1;
    }
}

static const keydef_t *key_lookup(const unsigned char *s, size_t n) {
    uint32_t h = hash_bytes(s, n) & (KEY_SLOTS - 1);
    while (key_slot[h]) {
        const keydef_t *d = &KEYS[key_slot[h] - 1];
        if (strlen(d->name) == n && memcmp(d->name, s, n) == 0) return d;
        h = (h + 1) & (KEY_SLOTS - 1);
    }
    return NULL;
}

/* dialects._dialect_of, on the presence bits (gcp, python, ecs keys refuse on their own) */
static int is_dialect(unsigned d) {
    if ((d & D_T) && (d & (D_MT | D_M | D_L))) return 1;
    if ((d & D_MESSAGE_UP) && (d & (D_PROGRAM | D_PRIORITY | D_FACILITY))) return 1;
    if ((d & D_LEVEL_VALUE) && (d & (D_LOGGER_NAME | D_VERSION_AT))) return 1;
    if ((d & D_PID) && (d & D_HOSTNAME) && (d & D_MSG) && (d & D_LEVEL)) return 1;
    if ((d & D_STACKTRACE) && (d & (D_TS | D_CALLER))) return 1;
    if ((d & D_SOURCE) && (d & D_MSG) && (d & D_TIME) && (d & D_LEVEL)) return 1;
    if ((d & D_TEXT) && (d & D_RECORD)) return 1; /* loguru */
    if ((d & D_SHORT_MESSAGE) && (d & D_VERSION)) return 1; /* gelf */
    if ((d & D_LOGGER_NAME_J) && (d & (D_INSTANT | D_THROWN))) return 1; /* log4j2 */
    if ((d & D_FIELDS) && (d & D_TARGET)) return 1; /* rust tracing */
    if ((d & D_REQUEST) && (d & D_DURATION) && (d & D_LOGGER)) return 1; /* caddy */
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* values of the canonical fields */

static int days_in_month(int y, int m) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
    return dim[m - 1] + leap;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const unsigned char *s, size_t n, int *out) {
    int v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        v = v * 10 + (s[k] - '0');
    }
    *out = v;
    return 1;
}

/* record._fast_utc: YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, year >= 1970, every field in range */
static int fast_utc(const unsigned char *t, size_t n, int64_t *ns) {
    if (!(n == 20 || (n >= 22 && n <= 30)) || t[n - 1] != 'Z' || t[16] != ':') return 0;
    if (t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':') return 0;
    int y, mo, d, hh, mm, ss;
    if (!digits(t, 4, &y) || !digits(t + 5, 2, &mo) || !digits(t + 8, 2, &d)) return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || y < 1970) return 0;
    if (!digits(t + 11, 2, &hh) || !digits(t + 14, 2, &mm) || !digits(t + 17, 2, &ss)) return 0;
    if (hh > 23 || mm > 59 || ss > 59) return 0;
    int64_t frac = 0;
    if (n > 20) {
        if (t[19] != '.') return 0;
        size_t nd = n - 21;
        for (size_t k = 0; k < nd; k++) {
            unsigned char c = t[20 + k];
            if (c < '0' || c > '9') return 0;
            frac = frac * 10 + (c - '0');
        }
        for (size_t k = nd; k < 9; k++) frac *= 10;
    }
    __int128 total = (__int128)(days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss) * NS + frac;
    if (total > MAX_NS) return 0;
    *ns = (int64_t)total;
    return 1;
}

/* record._epoch_to_ns of an integer; 0 when it is the record's error (not mine) */
static int epoch_int(int64_t v, int64_t *ns) {
    if (v < 0) return 0;
    __int128 x;
    if (v < 100000000000LL) x = (__int128)v * NS;
    else if (v < 100000000000000LL) x = (__int128)v * 1000000;
    else if (v < 100000000000000000LL) x = (__int128)v * 1000;
    else x = v;
    if (x > MAX_NS) return 0;
    *ns = (int64_t)x;
    return 1;
}

static const char *LEVELS[6] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
static const int SEVERITY[6] = {1, 5, 9, 13, 17, 21};

typedef struct { const char *name; int level; } alias_t;
static const alias_t LEVEL_ALIASES[] = {
    {"trace", 0}, {"trc", 0}, {"verbose", 0}, {"finest", 0}, {"finer", 0},
    {"debug", 1}, {"dbg", 1}, {"fine", 1}, {"config", 1},
    {"info", 2}, {"information", 2}, {"informational", 2}, {"inf", 2}, {"notice", 2}, {"log", 2},
    {"warn", 3}, {"warning", 3}, {"wrn", 3},
    {"error", 4}, {"err", 4}, {"eror", 4}, {"severe", 4}, {"exception", 4},
    {"fatal", 5}, {"critical", 5}, {"crit", 5}, {"alert", 5}, {"emerg", 5}, {"emergency", 5},
    {"panic", 5}, {"dpanic", 5},
    {"silly", 0}, {"http", 2},
};

/* record.normalize_level of a text of ASCII letters (any case, no spaces); -1: not mine */
static int level_of_text(const unsigned char *t, size_t n) {
    char low[16];
    if (n == 0 || n > 13) return -1;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = t[k];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        else if (!(c >= 'a' && c <= 'z')) return -1;
        low[k] = (char)c;
    }
    low[n] = 0;
    for (size_t k = 0; k < sizeof(LEVEL_ALIASES) / sizeof(LEVEL_ALIASES[0]); k++) {
        if (strcmp(LEVEL_ALIASES[k].name, low) == 0) return LEVEL_ALIASES[k].level;
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* the pattern-id cache: (tenant, service, message) as written in the row -> 16 hex digits. The
 * id is a pure function of the three texts (patterns.pattern_id of template_of), computed in
 * Python on a miss (rows._sid) and remembered here, so a hit needs no GIL. */

#define SID_SLOTS 65536
#define SID_MAX 20000
#define SID_KEY_MAX 2048

typedef struct { uint64_t hash; char *key; size_t len; char sid[16]; } sid_entry_t;
static sid_entry_t *sid_table;
static size_t sid_count;
static pthread_mutex_t sid_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash64(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) { h ^= (unsigned char)s[k]; h *= 1099511628211ULL; }
    return h;
}

static int sid_get(const char *key, size_t len, uint64_t h, char *sid) {
    int found = 0;
    pthread_mutex_lock(&sid_lock);
    if (sid_table) {
        size_t at = h & (SID_SLOTS - 1);
        while (sid_table[at].key) {
            if (sid_table[at].hash == h && sid_table[at].len == len && memcmp(sid_table[at].key, key, len) == 0) {
                memcpy(sid, sid_table[at].sid, 16);
                found = 1;
                break;
            }
            at = (at + 1) & (SID_SLOTS - 1);
        }
    }
    pthread_mutex_unlock(&sid_lock);
    return found;
}

static void sid_clear_locked(void) {
    for (size_t k = 0; k < SID_SLOTS; k++) {
        free(sid_table[k].key);
        sid_table[k].key = NULL;
    }
    sid_count = 0;
}

static void sid_put(const char *key, size_t len, const char *sid) {
    if (len > SID_KEY_MAX) return;
    uint64_t h = hash64(key, len);
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, key, len);
    pthread_mutex_lock(&sid_lock);
    if (!sid_table) sid_table = calloc(SID_SLOTS, sizeof(sid_entry_t));
    if (!sid_table) { pthread_mutex_unlock(&sid_lock); free(copy); return; }
    if (sid_count >= SID_MAX) sid_clear_locked();
    size_t at = h & (SID_SLOTS - 1);
    while (sid_table[at].key) {
        if (sid_table[at].hash == h && sid_table[at].len == len && memcmp(sid_table[at].key, key, len) == 0) {
            pthread_mutex_unlock(&sid_lock);
            free(copy);
            return;
        }
        at = (at + 1) & (SID_SLOTS - 1);
    }
    sid_table[at].hash = h;
    sid_table[at].key = copy;
    sid_table[at].len = len;
    memcpy(sid_table[at].sid, sid, 16);
    sid_count++;
    pthread_mutex_unlock(&sid_lock);
}

/* ------------------------------------------------------------------------------------------ */
/* one line -> one row */

typedef struct {
    size_t key_start, key_len; /* in the line */
    val_t v;                   /* in the scratch buffer */
    const keydef_t *def;
} member_t;

typedef struct {
    int64_t received_ns;
    char observed[24];
    size_t observed_len;
    const char *tenant; /* the writer's tenant as orjson writes it (content, no quotes), or NULL */
    size_t tenant_len;
    int patterns;
    int64_t max_fields, max_field_bytes, max_depth;
} opts_t;

typedef struct {
    size_t hole;  /* where the 16 digits go in out */
    size_t tenant_start, tenant_len; int has_tenant; /* texts as written in out (no quotes) */
    size_t service_start, service_len;
    size_t message_start, message_len;
} miss_t;

typedef struct {
    miss_t *p;
    size_t len, cap;
    int oom;
} misses_t;

static void miss_add(misses_t *m, miss_t x) {
    if (m->len == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        miss_t *p = realloc(m->p, cap * sizeof(miss_t));
        if (!p) { m->oom = 1; return; }
        m->p = p;
        m->cap = cap;
    }
    m->p[m->len++] = x;
}

/* rows._ts: "%010d.%09d" of the seconds and the nanoseconds (ns >= 0) */
static void put_ts(buf_t *b, int64_t ns) {
    char t[32];
    int64_t sec = ns / NS, frac = ns % NS;
    char *p = t + sizeof(t);
    for (int k = 0; k < 9; k++) { *--p = (char)('0' + frac % 10); frac /= 10; }
    *--p = '.';
    int k = 0;
    do { *--p = (char)('0' + sec % 10); sec /= 10; k++; } while (sec || k < 10);
    put(b, p, (size_t)(t + sizeof(t) - p));
}

static void put_int(buf_t *b, long long x) {
    char t[24];
    int k = snprintf(t, sizeof(t), "%lld", x);
    put(b, t, (size_t)k);
}

/* the content of a written string value (without its quotes) */
#define CONTENT(scr, v) ((scr)->p + (v)->start + 1)
#define CONTENT_LEN(v) ((v)->len - 2)

static const char *HTTP_NAMES[8] = {"method", "path", "status", "duration_ms", "client_ip",
                                    "user_agent", "bytes_sent", "referer"};
enum { H_STR, H_STATUS, H_DURATION, H_BYTES };
static const int HTTP_KIND[8] = {H_STR, H_STR, H_STATUS, H_DURATION, H_STR, H_STR, H_BYTES, H_STR};

typedef struct {
    size_t key_start, key_len; /* in the line */
    val_t v;
    int known;                 /* index into HTTP_NAMES, or -1 */
} http_member_t;

/* The row of one stripped line, appended to out; 1 taken, 0 not mine (out is left as it was). */
static int encode_line(const unsigned char *line, size_t n, const opts_t *o, buf_t *out, buf_t *scr,
                       misses_t *misses, member_t *members, http_member_t *hmembers) {
    /* limits: the Python path asks RecordLimits.check past these, which finds nothing to say when
     * the line is no longer than max_field_bytes (no string in it is longer) and nests at most
     * max_depth deep (this scanner takes at most MAX_DEPTH levels); otherwise the line is not mine */
    if ((int64_t)n > o->max_field_bytes) return 0;
    if (o->max_depth < MAX_DEPTH && (int64_t)n >= 2 * o->max_depth) return 0;
    /* (a run of 19+ digits, which exactjson.lossy_lines sends to the exact decoder, is read the
     * same by both decoders when it is not an integer beyond 18 digits, which scan_number refuses) */
    if (n == 0 || line[0] != '{') return 0;
    scr->len = 0;
    scan_t sc = {line, n, 1, scr};
    int nm = 0;
    unsigned dialect = 0;
    const member_t *field[F_COUNT] = {0};
    skip_ws(&sc);
    if (sc.i < n && line[sc.i] == '}') {
        sc.i++;
    } else {
        for (;;) {
            if (sc.i >= n || line[sc.i] != '"' || nm >= MAX_MEMBERS) return 0;
            member_t *m = &members[nm];
            val_t k;
            m->key_start = sc.i + 1;
            if (!scan_string(&sc, &k, 1)) return 0;
            m->key_len = sc.i - 1 - m->key_start;
            for (int j = 0; j < nm; j++) {
                if (members[j].key_len == m->key_len &&
                    memcmp(line + members[j].key_start, line + m->key_start, m->key_len) == 0) return 0;
            }
            skip_ws(&sc);
            if (sc.i >= n || line[sc.i] != ':') return 0;
            sc.i++;
            skip_ws(&sc);
            if (!scan_value(&sc, &m->v, 2)) return 0;
            m->def = key_lookup(line + m->key_start, m->key_len);
            if (!m->def && m->key_len >= 5 && memcmp(line + m->key_start, "http.", 5) == 0) return 0;
            if (!m->def && m->key_len >= 23 && memcmp(line + m->key_start, "logging.googleapis.com/", 23) == 0)
                return 0;
            nm++;
            skip_ws(&sc);
            if (sc.i >= n) return 0;
            if (line[sc.i] == ',') { sc.i++; skip_ws(&sc); continue; }
            if (line[sc.i] == '}') { sc.i++; break; }
            return 0;
        }
    }
    skip_ws(&sc);
    if (sc.i != n) return 0; /* content after the object */
    if (nm > o->max_fields) return 0;
    for (int j = 0; j < nm; j++) {
        const keydef_t *d = members[j].def;
        if (!d) continue;
        if (d->field == F_REFUSE) return 0;
        dialect |= d->dialect;
        if ((d->flags & K_NESTED) && members[j].v.type == T_OBJ) return 0;
        if (d->field == F_NONE) continue;
        int empty = members[j].v.type == T_NULL || (members[j].v.type == T_STR && members[j].v.len == 2);
        if (empty) {
            if (!(d->flags & K_CANONICAL)) return 0; /* an unused alias goes back: not mine */
            continue;
        }
        if (field[d->field]) return 0; /* two keys of one field */
        field[d->field] = &members[j];
    }
    if (is_dialect(dialect)) return 0;

    /* the values of the fields */
    int64_t timestamp = o->received_ns;
    const member_t *f = field[F_TIMESTAMP];
    if (f) {
        if (f->v.type == T_STR) {
            if (!fast_utc((const unsigned char *)CONTENT(scr, &f->v), CONTENT_LEN(&f->v), &timestamp)) return 0;
        } else if (f->v.type == T_INT) {
            if (!epoch_int(f->v.ival, &timestamp)) return 0;
            if (!(f->def->flags & K_STRICT_TIME) && timestamp < YEAR_2000_NS) return 0;
        } else {
            return 0;
        }
    }
    static const int STRING_FIELDS[] = {F_MESSAGE, F_SERVICE, F_HOST, F_ENV, F_VERSION, F_SOURCE,
                                        F_INSTANCE, F_TENANT, F_REQUEST};
    for (size_t k = 0; k < sizeof(STRING_FIELDS) / sizeof(int); k++) {
        const member_t *s = field[STRING_FIELDS[k]];
        if (s && s->v.type != T_STR) return 0;
    }
    char trace[32];
    const member_t *t = field[F_TRACE];
    if (t) {
        if (t->v.type != T_STR || CONTENT_LEN(&t->v) != 32) return 0;
        const char *c = CONTENT(scr, &t->v);
        int zero = 1;
        for (int k = 0; k < 32; k++) {
            int h = hexval((unsigned char)c[k]);
            if (h < 0) return 0;
            trace[k] = HEX[h];
            if (h) zero = 0;
        }
        if (zero) return 0;
    }
    const member_t *sp = field[F_SPAN];
    if (sp && (sp->v.type != T_STR || !sp->v.ascii || sp->v.escaped)) return 0;

    /* http: its known members in the order sent, the others to the attributes */
    int nh = 0;
    int64_t status = 0;
    const member_t *h = field[F_HTTP];
    if (h) {
        if (h->v.type != T_OBJ) return 0;
        /* re-read the written object (compact, keys unescaped, values as orjson writes them) */
        scan_t hs = {(const unsigned char *)scr->p + h->v.start, h->v.len, 1, NULL};
        buf_t dummy = {0};
        hs.out = &dummy;
        if (hs.n > 2) {
            for (;;) {
                if (nh >= MAX_NESTED_KEYS) { free(dummy.p); return 0; }
                http_member_t *hm = &hmembers[nh];
                val_t k;
                hm->key_start = hs.i + 1;
                dummy.len = 0;
                if (!scan_string(&hs, &k, 1)) { free(dummy.p); return 0; }
                hm->key_len = hs.i - 1 - hm->key_start;
                hs.i++; /* ':' */
                size_t vstart = hs.i;
                dummy.len = 0;
                if (!scan_value(&hs, &hm->v, 2)) { free(dummy.p); return 0; }
                /* point the value at the written text (the scan copy is identical) */
                hm->v.start = h->v.start + vstart;
                hm->v.len = hs.i - vstart;
                hm->known = -1;
                for (int q = 0; q < 8; q++) {
                    if (strlen(HTTP_NAMES[q]) == hm->key_len &&
                        memcmp(HTTP_NAMES[q], hs.s + hm->key_start, hm->key_len) == 0) { hm->known = q; break; }
                }
                hm->key_start += h->v.start; /* now an offset into scr */
                nh++;
                if (hs.s[hs.i] == ',') { hs.i++; continue; }
                break; /* '}' */
            }
        }
        free(dummy.p);
        for (int q = 0; q < nh; q++) {
            http_member_t *hm = &hmembers[q];
            if (hm->known < 0 || hm->v.type == T_NULL) continue;
            switch (HTTP_KIND[hm->known]) {
            case H_STR:
                if (hm->v.type != T_STR) return 0;
                break;
            case H_STATUS:
                if (hm->v.type != T_INT || hm->v.ival < 0 || hm->v.ival > 65535) return 0;
                status = hm->v.ival;
                break;
            case H_BYTES:
                if (hm->v.type != T_INT || hm->v.ival < 0) return 0;
                break;
            case H_DURATION:
                if (hm->v.type == T_INT) {
                    if (hm->v.ival < 0 || hm->v.ival >= 1000000000000000LL) return 0;
                } else if (hm->v.type != T_FLOAT || hm->v.neg) {
                    return 0;
                }
                break;
            }
        }
    }

    int level = -1;
    const member_t *lv = field[F_LEVEL];
    if (lv) {
        if (lv->v.type == T_STR) {
            level = level_of_text((const unsigned char *)CONTENT(scr, &lv->v), CONTENT_LEN(&lv->v));
        } else if (lv->v.type == T_INT && lv->v.ival >= 10) {
            int64_t q = lv->v.ival / 10;
            level = (int)(q > 6 ? 6 : q) - 1;
        }
        if (level < 0) return 0; /* kept aside as level_raw by the Python path */
    } else {
        level = status ? (status >= 500 ? 4 : status >= 400 ? 3 : 2) : 2;
    }

    /* the tenant of the row */
    const char *tenant = NULL;
    size_t tenant_len = 0;
    const member_t *tn = field[F_TENANT];
    if (o->tenant) {
        tenant = o->tenant;
        tenant_len = o->tenant_len;
        if (tn && (CONTENT_LEN(&tn->v) != tenant_len || memcmp(CONTENT(scr, &tn->v), tenant, tenant_len) != 0))
            return 0; /* another writer's tenant is kept aside: not mine */
    } else if (tn) {
        tenant = CONTENT(scr, &tn->v);
        tenant_len = CONTENT_LEN(&tn->v);
    }

    /* the row, in encode_record's order */
    size_t row_start = out->len;
    const member_t *msg = field[F_MESSAGE];
    int has_message = msg && CONTENT_LEN(&msg->v) > 0;
    size_t hole = 0;
    if (o->patterns && has_message) {
        PUTS(out, "{\"pattern_id\":\"");
        hole = out->len;
        PUTS(out, "0000000000000000\",\"timestamp\":\"");
    } else {
        PUTS(out, "{\"timestamp\":\"");
    }
    put_ts(out, timestamp);
    PUTS(out, "\",\"observed_timestamp\":\"");
    put(out, o->observed, o->observed_len);
    PUTS(out, "\",\"level\":\"");
    put(out, LEVELS[level], strlen(LEVELS[level]));
    PUTS(out, "\",\"severity_number\":");
    put_int(out, SEVERITY[level]);
    PUTS(out, ",\"service\":");
    size_t service_start, service_len;
    const member_t *sv = field[F_SERVICE];
    if (sv) {
        service_start = out->len + 1;
        service_len = CONTENT_LEN(&sv->v);
        put(out, scr->p + sv->v.start, sv->v.len);
    } else {
        service_start = out->len + 1;
        service_len = 7;
        PUTS(out, "\"unknown\"");
    }
#define OPTIONAL(F, NAME)                                   \
    if (field[F]) {                                         \
        PUTS(out, ",\"" NAME "\":");                        \
        put(out, scr->p + field[F]->v.start, field[F]->v.len); \
    }
    OPTIONAL(F_SOURCE, "source")
    OPTIONAL(F_HOST, "host")
    OPTIONAL(F_INSTANCE, "instance")
    OPTIONAL(F_ENV, "env")
    OPTIONAL(F_VERSION, "version")
    PUTS(out, ",\"message\":");
    size_t message_start = out->len + 1, message_len = 0;
    if (msg) {
        message_len = CONTENT_LEN(&msg->v);
        put(out, scr->p + msg->v.start, msg->v.len);
    } else {
        PUTS(out, "\"\"");
    }
    if (t) {
        PUTS(out, ",\"trace_id\":\"");
        put(out, trace, 32);
        putc1(out, '"');
    }
    if (sp) {
        PUTS(out, ",\"span_id\":\"");
        const char *c = CONTENT(scr, &sp->v);
        for (size_t k = 0; k < CONTENT_LEN(&sp->v); k++) {
            char ch = c[k];
            putc1(out, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
        }
        putc1(out, '"');
    }
    OPTIONAL(F_REQUEST, "request_id")
#undef OPTIONAL
    size_t tenant_start = 0;
    if (tenant) {
        PUTS(out, ",\"tenant\":\"");
        tenant_start = out->len;
        put(out, tenant, tenant_len);
        putc1(out, '"');
    }
    for (int q = 0; q < nh; q++) {
        http_member_t *hm = &hmembers[q];
        if (hm->known < 0 || hm->v.type == T_NULL) continue;
        PUTS(out, ",\"http_");
        put(out, HTTP_NAMES[hm->known], strlen(HTTP_NAMES[hm->known]));
        PUTS(out, "\":");
        put(out, scr->p + hm->v.start, hm->v.len);
        if (HTTP_KIND[hm->known] == H_DURATION && hm->v.type == T_INT) PUTS(out, ".0");
    }
    int nattr = 0;
    for (int j = 0; j < nm; j++) {
        const member_t *m = &members[j];
        if (m->def && m->def->field != F_NONE) continue; /* an alias: taken or left out */
        if (nattr) PUTS(out, ",\"");
        else PUTS(out, ",\"attributes\":{\"");
        put(out, (const char *)line + m->key_start, m->key_len);
        PUTS(out, "\":");
        put(out, scr->p + m->v.start, m->v.len);
        nattr++;
    }
    for (int q = 0; q < nh; q++) {
        http_member_t *hm = &hmembers[q];
        if (hm->known >= 0) continue;
        if (nattr) PUTS(out, ",\"http.");
        else PUTS(out, ",\"attributes\":{\"http.");
        put(out, scr->p + hm->key_start, hm->key_len);
        PUTS(out, "\":");
        put(out, scr->p + hm->v.start, hm->v.len);
        nattr++;
    }
    if (nattr) putc1(out, '}');
    putc1(out, '}');
    if (out->oom) return 0;

    if (o->patterns && has_message) {
        /* the cache key: tenant (or \x01 for none), '"', service, '"', message: a '"' and a raw
         * control byte never occur inside a written string, so the key is unambiguous */
        size_t klen = (tenant ? tenant_len : 1) + 2 + service_len + message_len;
        char stack[512];
        char *key = klen <= sizeof(stack) ? stack : malloc(klen);
        if (!key) { out->len = row_start; return 0; }
        size_t at = 0;
        if (tenant) { memcpy(key, out->p + tenant_start, tenant_len); at = tenant_len; }
        else key[at++] = 1;
        key[at++] = '"';
        memcpy(key + at, out->p + service_start, service_len); at += service_len;
        key[at++] = '"';
        memcpy(key + at, out->p + message_start, message_len); at += message_len;
        char sid[16];
        if (sid_get(key, klen, hash64(key, klen), sid)) {
            memcpy(out->p + hole, sid, 16);
        } else {
            miss_t x = {hole, tenant_start, tenant_len, tenant != NULL, service_start, service_len,
                        message_start, message_len};
            miss_add(misses, x);
        }
        if (key != stack) free(key);
        if (misses->oom) { out->len = row_start; return 0; }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* the body */

typedef struct { Py_ssize_t number, offset, start, end; } fallback_t;

/* bodies being decoded right now without the GIL (tests/record/test_differential.py reads it from
 * another Python thread: a count above 0 seen there is that thread running during a decode) */
static long in_flight;

static int is_strip_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

PyDoc_STRVAR(decode_doc,
"decode(body, received_ns, max_line_bytes, max_fields, max_field_bytes, max_depth, tenant, patterns)\n"
"-> (rows, accepted, fallbacks, misses)\n\n"
"rows: the rows of the lines taken, each followed by a newline; fallbacks: (line number, offset in\n"
"rows, start, end of the line in body) of each line left to the Python path, in order; misses:\n"
"(hole, tenant start or -1, tenant end, service start, service end, message start, message end)\n"
"offsets in rows of the pattern ids not in the cache. Runs without the GIL.");

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer body;
    long long received_ns, max_line_bytes, max_fields, max_field_bytes, max_depth;
    const char *tenant = NULL;
    Py_ssize_t tenant_len = 0;
    int patterns;
    if (!PyArg_ParseTuple(args, "y*LLLLLz#p", &body, &received_ns, &max_line_bytes, &max_fields,
                          &max_field_bytes, &max_depth, &tenant, &tenant_len, &patterns))
        return NULL;
    opts_t o;
    o.received_ns = received_ns;
    o.tenant = tenant;
    o.tenant_len = (size_t)tenant_len;
    o.patterns = patterns;
    o.max_fields = max_fields;
    o.max_field_bytes = max_field_bytes;
    o.max_depth = max_depth;
    if (received_ns < 0) {
        PyBuffer_Release(&body);
        PyErr_SetString(PyExc_ValueError, "received_ns before 1970");
        return NULL;
    }
    snprintf(o.observed, sizeof(o.observed), "%010lld.%09lld", received_ns / NS, received_ns % NS);
    o.observed_len = strlen(o.observed);

    buf_t out = {0}, scr = {0};
    misses_t misses = {0};
    fallback_t *fb = NULL;
    size_t nfb = 0, cap_fb = 0;
    int oom = 0;
    Py_ssize_t accepted = 0;
    member_t *members = malloc(sizeof(member_t) * MAX_MEMBERS);
    http_member_t *hmembers = malloc(sizeof(http_member_t) * MAX_NESTED_KEYS);
    if (!members || !hmembers) {
        free(members); free(hmembers);
        PyBuffer_Release(&body);
        return PyErr_NoMemory();
    }

    Py_BEGIN_ALLOW_THREADS
    __atomic_add_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
    const unsigned char *s = body.buf;
    size_t n = (size_t)body.len, pos = 0;
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) pos = 3;
    Py_ssize_t number = 0;
    buf_reserve(&out, n + n / 2 + 256);
    while (pos <= n && !oom) {
        number++;
        const unsigned char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t a = pos, z = end;
        while (a < z && is_strip_space(s[a])) a++;
        while (z > a && is_strip_space(s[z - 1])) z--;
        int taken = 0, blank = 0;
        if ((long long)(end - pos) <= max_line_bytes) {
            if (a == z) blank = 1;
            else taken = encode_line(s + a, z - a, &o, &out, &scr, &misses, members, hmembers);
        }
        if (taken) {
            putc1(&out, '\n');
            accepted++;
        } else if (!blank) {
            if (nfb == cap_fb) {
                cap_fb = cap_fb ? cap_fb * 2 : 16;
                fallback_t *p = realloc(fb, cap_fb * sizeof(fallback_t));
                if (!p) { oom = 1; break; }
                fb = p;
            }
            fallback_t x = {number, (Py_ssize_t)out.len, (Py_ssize_t)pos, (Py_ssize_t)end};
            fb[nfb++] = x;
        }
        if (out.oom || misses.oom) oom = 1;
        if (!nl) break;
        pos = end + 1;
    }
    __atomic_sub_fetch(&in_flight, 1, __ATOMIC_SEQ_CST);
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&body);
    free(members);
    free(hmembers);
    free(scr.p);
    PyObject *result = NULL, *rows = NULL, *fbl = NULL, *ml = NULL;
    if (oom) {
        PyErr_NoMemory();
        goto done;
    }
    rows = PyByteArray_FromStringAndSize(out.p ? out.p : "", (Py_ssize_t)out.len);
    fbl = PyList_New((Py_ssize_t)nfb);
    ml = PyList_New((Py_ssize_t)misses.len);
    if (!rows || !fbl || !ml) goto done;
    for (size_t k = 0; k < nfb; k++) {
        PyObject *x = Py_BuildValue("(nnnn)", fb[k].number, fb[k].offset, fb[k].start, fb[k].end);
        if (!x) goto done;
        PyList_SET_ITEM(fbl, (Py_ssize_t)k, x);
    }
    for (size_t k = 0; k < misses.len; k++) {
        miss_t *m = &misses.p[k];
        PyObject *x = Py_BuildValue("(nnnnnnn)", (Py_ssize_t)m->hole,
                                    m->has_tenant ? (Py_ssize_t)m->tenant_start : (Py_ssize_t)-1,
                                    (Py_ssize_t)(m->tenant_start + m->tenant_len),
                                    (Py_ssize_t)m->service_start, (Py_ssize_t)(m->service_start + m->service_len),
                                    (Py_ssize_t)m->message_start, (Py_ssize_t)(m->message_start + m->message_len));
        if (!x) goto done;
        PyList_SET_ITEM(ml, (Py_ssize_t)k, x);
    }
    result = Py_BuildValue("(OnOO)", rows, accepted, fbl, ml);
done:
    Py_XDECREF(rows);
    Py_XDECREF(fbl);
    Py_XDECREF(ml);
    free(out.p);
    free(misses.p);
    free(fb);
    return result;
}

PyDoc_STRVAR(remember_doc,
"remember(key, sid): keep a pattern id for the cache key of a miss (see decode).");

static PyObject *remember(PyObject *self, PyObject *args) {
    const char *key, *sid;
    Py_ssize_t klen, slen;
    if (!PyArg_ParseTuple(args, "y#y#", &key, &klen, &sid, &slen)) return NULL;
    if (slen != 16) {
        PyErr_SetString(PyExc_ValueError, "a pattern id is 16 hex digits");
        return NULL;
    }
    sid_put(key, (size_t)klen, sid);
    Py_RETURN_NONE;
}

static PyObject *forget(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&sid_lock);
    if (sid_table) sid_clear_locked();
    pthread_mutex_unlock(&sid_lock);
    Py_RETURN_NONE;
}

static PyObject *bodies_in_flight(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(__atomic_load_n(&in_flight, __ATOMIC_SEQ_CST));
}

static PyMethodDef methods[] = {
    {"in_flight", bodies_in_flight, METH_NOARGS, "Bodies being decoded now, without the GIL."},
    {"decode", decode, METH_VARARGS, decode_doc},
    {"remember", remember, METH_VARARGS, remember_doc},
    {"forget", forget, METH_NOARGS, "Empty the pattern-id cache."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logharbor._native.rowc",
    "The compiled normaliser of native ingest (NDJSON body -> store rows without the GIL).", -1, methods,
};

/* a fork while another thread holds the cache's lock (a decode pool's worker started while a
 * thread decodes) would leave the child's lock held for ever: the fork waits for it instead */
static void before_fork(void) { pthread_mutex_lock(&sid_lock); }
static void after_fork(void) { pthread_mutex_unlock(&sid_lock); }

PyMODINIT_FUNC PyInit_rowc(void) {
    keys_init();
    static int atfork_done;
    if (!atfork_done) {
        if (pthread_atfork(before_fork, after_fork, after_fork) != 0) {
            PyErr_SetString(PyExc_OSError, "rowc: pthread_atfork failed");
            return NULL;
        }
        atfork_done = 1;
    }
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0) return NULL;
    if (PyModule_AddStringConstant(m, "MIRRORS", MIRRORS_SHA256) < 0) return NULL;
    return m;
}
