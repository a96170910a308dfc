/*
 * warden.h: the C client of `warden serve` (shared memory over a Unix socket).
 *
 * A single-header library: include it where you call it, and in exactly one C file define
 * WARDEN_IMPLEMENTATION before including it. Or build a shared library for other languages
 * (the Python client loads this one):
 *
 *     cc -O2 -shared -fPIC -DWARDEN_IMPLEMENTATION -x c include/warden.h -o libwarden.so
 *
 *     warden_client *c = NULL;
 *     char err[256];
 *     if (warden_connect("warden.sock", &c, err, sizeof err) != 0) { puts(err); return 1; }
 *     warden_request r = warden_request_check("acme", "planner-1", "fs.read", "/data/acme/q3.csv");
 *     warden_verdict v;
 *     warden_validate(c, &r, &v);
 *     printf("%s %s\n", warden_decision_name(v.decision), warden_reason_name(v.reason));
 *     warden_close(c);
 *
 * Fail closed: when the server is gone, the request does not fit a slot, every slot is busy
 * or no verdict comes within the timeout, `warden_validate` fills in a deny (shutting_down,
 * content_too_large, overloaded, timeout) and returns a negative number; it never allows.
 * Thread-safe: threads may share one client; each call takes a slot of its own. A connection
 * belongs to the process that made it: after fork(), warden_validate in the child returns -2
 * with a shutting_down deny (connect again there); a child sharing its parent's slots would mix
 * their requests and verdicts.
 *
 * The layout mirrors src/ipc/shm.rs and the wire format src/request.rs; tests/serve.rs checks
 * this file against them (the constants, the reason names) and runs examples/c/validate.c.
 */
#ifndef WARDEN_H
#define WARDEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Operations (`kind` of warden_request). */
enum {
    WARDEN_OP_VALIDATE_AGENT = 0,
    WARDEN_OP_AUTHORIZE_TOOL = 1,
    WARDEN_OP_SCAN_CONTENT = 2, /* arg: the content's origin, WARDEN_ORIGIN_* */
    WARDEN_OP_CHECK = 3,        /* arg: the content's origin, WARDEN_ORIGIN_* */
    WARDEN_OP_CRYPTO = 4, /* arg: 0 encrypt, 1 decrypt, 2 sign, 3 verify */
    WARDEN_OP_AUDIT = 5,
    WARDEN_OP_CUSTOM = 6  /* arg: the validator's id */
};
/* Where the content of a scan or check comes from (`arg` of WARDEN_OP_SCAN_CONTENT and
 * WARDEN_OP_CHECK): written to the agent (a message, the agent's tool input); read by it (a
 * tool's result, a fetched page, a retrieved document, a mail), in which words addressed to the
 * model weigh more; or a person's message in a chat, in which commands and paths quoted in
 * prose are mentions and count at most medium (check the tool call that follows as a prompt). */
enum { WARDEN_ORIGIN_PROMPT = 0, WARDEN_ORIGIN_DATA = 1, WARDEN_ORIGIN_USER = 2 };
enum { WARDEN_ALLOW = 0, WARDEN_DENY = 1, WARDEN_ALLOW_WITH = 2 };
enum {
    WARDEN_UNCLASSIFIED = 0, WARDEN_CUI = 1, WARDEN_CONFIDENTIAL = 2, WARDEN_SECRET = 3,
    WARDEN_TOP_SECRET = 4
};
enum {
    WARDEN_CRITICAL = 0, WARDEN_HIGH = 1, WARDEN_MEDIUM = 2, WARDEN_LOW = 3, WARDEN_BACKGROUND = 4
};
/* A few reason codes a caller may test for; warden_reason_name names them all. */
enum {
    WARDEN_REASON_NONE = 0, WARDEN_REASON_CONTENT_TOO_LARGE = 4, WARDEN_REASON_OVERLOADED = 5,
    WARDEN_REASON_INTERNAL = 6, WARDEN_REASON_SHUTTING_DOWN = 8, WARDEN_REASON_TIMEOUT = 9,
    WARDEN_REASON_TENANT_NOT_PERMITTED = 29
};

typedef struct {
    uint8_t kind;           /* WARDEN_OP_* */
    uint16_t arg;
    uint8_t classification; /* WARDEN_UNCLASSIFIED .. WARDEN_TOP_SECRET */
    uint8_t priority;       /* WARDEN_CRITICAL .. WARDEN_BACKGROUND */
    uint64_t timestamp_ms;  /* needed with a credential: milliseconds since the epoch */
    uint64_t nonce;         /* needed with a credential: unique per request */
    const char *tenant; size_t tenant_len;
    const char *agent; size_t agent_len;
    const uint8_t *credential; size_t credential_len; /* a wdn1 token, or empty */
    const char *tool; size_t tool_len;
    const char *action; size_t action_len;
    const char *resource; size_t resource_len;
    const uint8_t *content; size_t content_len;
} warden_request;

typedef struct {
    uint8_t decision;       /* WARDEN_ALLOW, WARDEN_DENY, WARDEN_ALLOW_WITH */
    uint8_t threat_level;   /* 0 none .. 4 critical */
    uint8_t classification; /* the effective classification */
    uint8_t cache_hit;
    uint16_t reason;        /* 0 when allowed; warden_reason_name */
    uint16_t reason_arg;    /* the field, input issue, token issue, level or retry-after ms */
    uint32_t indicators;
    uint32_t rule;
    uint32_t latency_ns;
    uint16_t core;
    uint8_t audit_required;
    uint8_t trust_pct;      /* the agent's trust score it was judged at, in hundredths; 255: none */
    uint64_t memory_bytes;
    uint64_t file_bytes;
    uint32_t cpu_time_ms;
    uint32_t operations;
    uint32_t redactions;
    uint8_t pad1[12];
} warden_verdict;

typedef struct warden_client warden_client;

/* Connects to the server on `socket_path` if it runs as root or as this process's uid. 0 on
 * success; otherwise -1 and `err` says why (no server, this uid refused and why, a server of
 * another uid, not a warden server). */
int warden_connect(const char *socket_path, warden_client **out, char *err, size_t err_len);
/* The same, trusting only a server that runs as `server_uid` (a service account). */
int warden_connect_uid(const char *socket_path, uint32_t server_uid, warden_client **out,
                       char *err, size_t err_len);
/* Validates one request; blocks until the verdict. 0: the server answered (`out` holds its
 * verdict, allow or deny); negative: `out` holds a deny made here (see above); -2: this
 * connection was made by another process (before a fork): connect again. */
int warden_validate(warden_client *c, const warden_request *r, warden_verdict *out);
/* How long warden_validate waits for a verdict (default 5000 ms). */
void warden_set_timeout_ms(warden_client *c, uint32_t ms);
void warden_close(warden_client *c);
/* Lets go of a connection this process inherited (warden_validate returned -2): unmaps and
 * closes this process's copies, leaving the parent's connection as it is. Then connect
 * again. (warden_close would also tear down a lock the parent may have held at the fork.) */
void warden_close_inherited(warden_client *c);
/* A check of `tool` on `resource` by (`tenant`, `agent`), the common request. */
warden_request warden_request_check(const char *tenant, const char *agent, const char *tool,
                                    const char *resource);
const char *warden_reason_name(uint16_t reason);
const char *warden_decision_name(uint8_t decision);
/* Bytes of a request in the wire format (what must fit a slot). */
size_t warden_encoded_len(const warden_request *r);

#ifdef __cplusplus
}
#endif

#ifdef WARDEN_IMPLEMENTATION

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Linux's memfd seals, for C libraries that show them only under _GNU_SOURCE. */
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

/* Layout of the shared memory (src/ipc/shm.rs). */
#define WARDEN_MAGIC 0x494e4457u
#define WARDEN_VERSION 1u
#define WARDEN_HEADER_BYTES 4096u
#define WARDEN_SLOT_HEADER_BYTES 128u
#define WARDEN_VERDICT_OFFSET 64u
#define WARDEN_H_SLOTS 8u
#define WARDEN_H_SLOT_BYTES 12u
#define WARDEN_H_SPIN_NS 20u
#define WARDEN_H_HOME_CPU 24u /* the home core's CPU, 0xffffffff when not pinned */
#define WARDEN_H_TAIL 64u
#define WARDEN_H_CORE_SLEEPING 192u
#define WARDEN_S_FREE 0u
#define WARDEN_S_SUBMITTED 1u
#define WARDEN_S_SLEEPING 2u
#define WARDEN_S_DONE 3u
/* Wire format of a request (src/request.rs). */
#define WARDEN_WIRE_MAGIC 0x5744u
#define WARDEN_WIRE_VERSION 2u
#define WARDEN_WIRE_HEADER 56u

struct warden_client {
    int sock, wake; /* wake: a byte sent rings the server's core (a socket: never blocks us) */
    uint64_t epoch;  /* this process's epoch when connected (see warden_epoch) */
    uint32_t *abandoned; /* slots given up on (timeouts), taken back once their verdict came */
    uint32_t abandoned_n;
    uint8_t *base;
    size_t bytes;
    uint32_t slots, slot_bytes, spin_ns, timeout_ms;
    pthread_mutex_t lock; /* guards tail and the free list */
    uint32_t tail;
    uint32_t *free_list;
    uint32_t free_n;
    _Atomic int dead;
};

/* Which process a connection belongs to, without a syscall per call: a page the kernel wipes
 * in every child (MADV_WIPEONFORK: fork, _Fork, clone without CLONE_VM alike) holds this
 * process's epoch, set at its first connect; a connection stores it. In a child the page
 * reads 0 until the child connects, when it gets an epoch its parent never had. */
static _Atomic uint64_t *warden_epoch_page;
static _Atomic uint64_t warden_epoch_next;
static pthread_once_t warden_epoch_once = PTHREAD_ONCE_INIT;
static void warden_epoch_init(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    if (madvise(p, 4096, 18 /* MADV_WIPEONFORK */) != 0) { munmap(p, 4096); return; }
    warden_epoch_page = (_Atomic uint64_t *)p;
}
/* This process's epoch (made now if it has none); 0 when the page could not be made. */
static uint64_t warden_epoch(void) {
    pthread_once(&warden_epoch_once, warden_epoch_init);
    if (!warden_epoch_page) return 0;
    uint64_t e = atomic_load(warden_epoch_page);
    if (e == 0) {
        uint64_t fresh = atomic_fetch_add(&warden_epoch_next, 1) + 1;
        if (atomic_compare_exchange_strong(warden_epoch_page, &e, fresh)) e = fresh;
    }
    return e;
}

static const char *const warden_reason_names[] = {
    "none", "missing_field", "field_too_large", "malformed", "content_too_large",
    "overloaded", "internal", "no_stage", "shutting_down", "timeout", "custom", "input",
    "unknown_tenant", "unknown_agent", "unknown_tool", "not_granted", "level_too_high",
    "read_up", "write_down", "tenant_isolation", "resource_not_allowed", "rate_limited",
    "identity", "threat_detected", "quarantined", "audit_backpressure", "audit_unavailable",
    "hsm_unavailable", "hsm_required", "tenant_not_permitted", "low_trust",
    "threat_at_low_trust", "fleet_stale",
};

const char *warden_reason_name(uint16_t reason) {
    if (reason < sizeof warden_reason_names / sizeof warden_reason_names[0])
        return warden_reason_names[reason];
    return "unknown";
}

const char *warden_decision_name(uint8_t d) {
    return d == WARDEN_ALLOW ? "allow" : d == WARDEN_ALLOW_WITH ? "allow_with" : "deny";
}

static size_t warden_page_up(size_t n) { return (n + 4095u) & ~(size_t)4095u; }
/* Layout arithmetic in size_t, on a geometry already bounded (slots <= 1024, slot_bytes
 * <= 16 MiB), so no sum wraps. */
static size_t warden_stride(const warden_client *c) {
    return ((size_t)WARDEN_SLOT_HEADER_BYTES + (size_t)c->slot_bytes + 63u) & ~(size_t)63u;
}
static size_t warden_slot_off(const warden_client *c, uint32_t i) {
    return warden_page_up((size_t)WARDEN_HEADER_BYTES + (size_t)4 * c->slots) +
           (size_t)i * warden_stride(c);
}
static _Atomic uint32_t *warden_u32(const warden_client *c, size_t off) {
    return (_Atomic uint32_t *)(void *)(c->base + off);
}

warden_request warden_request_check(const char *tenant, const char *agent, const char *tool,
                                    const char *resource) {
    warden_request r;
    memset(&r, 0, sizeof r);
    r.kind = WARDEN_OP_CHECK;
    r.priority = WARDEN_MEDIUM;
    r.tenant = tenant; r.tenant_len = strlen(tenant);
    r.agent = agent; r.agent_len = strlen(agent);
    r.tool = tool; r.tool_len = strlen(tool);
    r.resource = resource; r.resource_len = strlen(resource);
    return r;
}

size_t warden_encoded_len(const warden_request *r) {
    /* Each field is at most 4 GiB, so on a 64-bit size_t the sum cannot wrap; a field over
     * that (which the wire format cannot carry) makes the whole too large. */
    const size_t lens[7] = {r->tenant_len, r->agent_len, r->credential_len, r->tool_len,
                            r->action_len, r->resource_len, r->content_len};
    size_t n = WARDEN_WIRE_HEADER;
    for (int i = 0; i < 7; i++) {
        if (lens[i] > 0xffffffffu) return (size_t)-1;
        n += lens[i];
    }
    return n;
}

static void warden_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void warden_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void warden_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes the wire form of `r` into `out` (warden_encoded_len bytes). */
static void warden_encode(const warden_request *r, uint8_t *out) {
    const void *parts[7] = {r->tenant, r->agent, r->credential, r->tool, r->action, r->resource,
                            r->content};
    size_t lens[7] = {r->tenant_len, r->agent_len, r->credential_len, r->tool_len,
                      r->action_len, r->resource_len, r->content_len};
    warden_put16(out, WARDEN_WIRE_MAGIC);
    out[2] = WARDEN_WIRE_VERSION;
    out[3] = r->priority;
    warden_put32(out + 4, 0);
    warden_put64(out + 8, r->timestamp_ms);
    warden_put64(out + 16, r->nonce);
    out[24] = r->kind;
    out[25] = r->classification;
    warden_put16(out + 26, r->arg);
    size_t pos = WARDEN_WIRE_HEADER;
    for (int i = 0; i < 7; i++) {
        warden_put32(out + 28 + 4 * i, (uint32_t)lens[i]);
        if (lens[i]) memcpy(out + pos, parts[i], lens[i]);
        pos += lens[i];
    }
}

static void warden_deny(warden_verdict *v, uint16_t reason) {
    memset(v, 0, sizeof *v);
    v->decision = WARDEN_DENY;
    v->reason = reason;
    v->core = 0xffff;
}

static void warden_err(char *err, size_t n, const char *fmt, const char *a) {
    if (err && n) snprintf(err, n, fmt, a);
}

#define WARDEN_ANY_TRUSTED_UID 0xffffffffu

static int warden_open(const char *path, uint32_t server_uid, warden_client **out, char *err,
                       size_t err_len);

int warden_connect(const char *path, warden_client **out, char *err, size_t err_len) {
    return warden_open(path, WARDEN_ANY_TRUSTED_UID, out, err, err_len);
}

int warden_connect_uid(const char *path, uint32_t server_uid, warden_client **out, char *err,
                       size_t err_len) {
    return warden_open(path, server_uid, out, err, err_len);
}

static int warden_open(const char *path, uint32_t server_uid, warden_client **out, char *err,
                       size_t err_len) {
    *out = NULL;
    uint64_t epoch = warden_epoch();
    if (epoch == 0) {
        warden_err(err, err_len, "%s: cannot make the page that tells a forked child apart",
                   path);
        return -1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        warden_err(err, err_len, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        warden_err(err, err_len, "cannot connect to warden at %s (is `warden serve` running?)",
                   path);
        if (s >= 0) close(s);
        return -1;
    }
    /* Who listens there: root, this process's uid, or the uid asked for. */
    struct { pid_t pid; uid_t uid; gid_t gid; } cred; /* struct ucred, without _GNU_SOURCE */
    socklen_t cred_len = sizeof cred;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 ||
        (server_uid == WARDEN_ANY_TRUSTED_UID ? (cred.uid != 0 && cred.uid != geteuid())
                                              : cred.uid != server_uid)) {
        warden_err(err, err_len,
                   "not connecting: %s is served by a uid that is neither root, this process's "
                   "uid, nor the one asked for",
                   path);
        close(s);
        return -1;
    }
    /* A server that never answers cannot hang the connect: 5 s for the hello. */
    struct timeval hello_wait = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &hello_wait, sizeof hello_wait);
    uint8_t hello[16];
    union { char buf[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } ctl;
    struct iovec iov = {hello, sizeof hello};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
    int fds[2] = {-1, -1};
    int nfds = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
            int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                if (nfds < 2) fds[nfds++] = fd; else close(fd);
            }
        }
    }
    if (n >= 8 && memcmp(hello, "WDNR", 4) == 0) {
        for (int i = 0; i < nfds; i++) close(fds[i]);
        char why[512];
        size_t have = (size_t)n - 8;
        memcpy(why, hello + 8, have);
        ssize_t m = recv(s, why + have, sizeof why - 1 - have, 0);
        why[have + (m > 0 ? (size_t)m : 0)] = 0;
        warden_err(err, err_len, "warden refused this client: %s", why);
        close(s);
        return -1;
    }
    uint32_t version = (uint32_t)hello[4] | (uint32_t)hello[5] << 8 | (uint32_t)hello[6] << 16 |
                       (uint32_t)hello[7] << 24;
    if (n != 16 || memcmp(hello, "WDNH", 4) != 0 || nfds != 2 || version != WARDEN_VERSION) {
        warden_err(err, err_len, "%s is not a warden server (bad hello)", path);
        for (int i = 0; i < nfds; i++) close(fds[i]);
        close(s);
        return -1;
    }
    uint64_t bytes = 0;
    for (int i = 0; i < 8; i++) bytes |= (uint64_t)hello[8 + i] << (8 * i);
    /* The file must hold what was announced and be sealed against shrinking: a page that
     * vanished under a read would be a SIGBUS here. */
    struct stat st;
    int seals = fcntl(fds[0], F_GET_SEALS);
    int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if (fstat(fds[0], &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size < bytes ||
        bytes < WARDEN_HEADER_BYTES || bytes > ((uint64_t)1 << 34) || seals < 0 ||
        (seals & need) != need) {
        warden_err(err, err_len, "%s sent memory that is too small or not sealed", path);
        close(fds[0]); close(fds[1]); close(s);
        return -1;
    }
    void *base = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    close(fds[0]);
    if (base == MAP_FAILED) {
        warden_err(err, err_len, "cannot map the memory warden sent: %s", strerror(errno));
        close(fds[1]); close(s);
        return -1;
    }
    warden_client *c = calloc(1, sizeof *c);
    if (!c) {
        warden_err(err, err_len, "%s: out of memory", path);
        munmap(base, (size_t)bytes); close(fds[1]); close(s);
        return -1;
    }
    c->sock = s; c->wake = fds[1];
    c->epoch = epoch;
    c->base = base; c->bytes = (size_t)bytes;
    c->slots = atomic_load_explicit(warden_u32(c, WARDEN_H_SLOTS), memory_order_relaxed);
    c->slot_bytes = atomic_load_explicit(warden_u32(c, WARDEN_H_SLOT_BYTES), memory_order_relaxed);
    c->spin_ns = atomic_load_explicit(warden_u32(c, WARDEN_H_SPIN_NS), memory_order_relaxed);
    if (c->spin_ns > 1000000u) c->spin_ns = 1000000u; /* at most 1 ms, whatever it says */
    c->timeout_ms = 5000;
    if (*(uint32_t *)base != WARDEN_MAGIC || c->slots == 0 || c->slots > 1024u ||
        (c->slots & (c->slots - 1)) || c->slot_bytes < 256u || c->slot_bytes > (1u << 24) ||
        warden_page_up(warden_slot_off(c, c->slots)) != c->bytes) {
        warden_err(err, err_len, "%s sent memory of an unknown layout", path);
        munmap(base, c->bytes); close(c->wake); close(s); free(c);
        return -1;
    }
    struct timeval no_wait = {0, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &no_wait, sizeof no_wait);
    pthread_mutex_init(&c->lock, NULL);
    c->free_list = malloc(sizeof(uint32_t) * c->slots);
    c->abandoned = malloc(sizeof(uint32_t) * c->slots);
    if (!c->free_list || !c->abandoned) {
        free(c->free_list); free(c->abandoned);
        warden_err(err, err_len, "%s: out of memory", path);
        munmap(base, c->bytes); close(c->wake); close(s); pthread_mutex_destroy(&c->lock);
        free(c);
        return -1;
    }
    for (uint32_t i = 0; i < c->slots; i++) c->free_list[i] = c->slots - 1 - i;
    c->free_n = c->slots;
    *out = c;
    return 0;
}

void warden_set_timeout_ms(warden_client *c, uint32_t ms) { c->timeout_ms = ms; }

void warden_close_inherited(warden_client *c) {
    if (!c) return;
    munmap(c->base, c->bytes);
    close(c->wake); close(c->sock);
    free(c->free_list);
    free(c->abandoned);
    free(c);
}

void warden_close(warden_client *c) {
    if (!c) return;
    munmap(c->base, c->bytes);
    close(c->wake); close(c->sock);
    pthread_mutex_destroy(&c->lock);
    free(c->free_list);
    free(c->abandoned);
    free(c);
}

static uint64_t warden_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int warden_server_gone(warden_client *c) {
    char b;
    ssize_t n = recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) atomic_store(&c->dead, 1);
    return atomic_load(&c->dead);
}

static void warden_release(warden_client *c, uint32_t slot) {
    pthread_mutex_lock(&c->lock);
    c->free_list[c->free_n++] = slot;
    pthread_mutex_unlock(&c->lock);
}

int warden_validate(warden_client *c, const warden_request *r, warden_verdict *out) {
    if (!warden_epoch_page || atomic_load_explicit(warden_epoch_page, memory_order_relaxed) !=
                                  c->epoch) {
        warden_deny(out, WARDEN_REASON_SHUTTING_DOWN);
        return -2;
    }
    if (atomic_load(&c->dead)) { warden_deny(out, WARDEN_REASON_SHUTTING_DOWN); return -1; }
    size_t len = warden_encoded_len(r);
    if (len > c->slot_bytes) { warden_deny(out, WARDEN_REASON_CONTENT_TOO_LARGE); return -1; }
    pthread_mutex_lock(&c->lock);
    if (c->free_n == 0) {
        /* take back the slots given up on whose verdict has come since */
        uint32_t kept = 0;
        for (uint32_t i = 0; i < c->abandoned_n; i++) {
            uint32_t a = c->abandoned[i];
            _Atomic uint32_t *st = warden_u32(c, warden_slot_off(c, a));
            if (atomic_load_explicit(st, memory_order_acquire) == WARDEN_S_DONE) {
                atomic_store_explicit(st, WARDEN_S_FREE, memory_order_relaxed);
                c->free_list[c->free_n++] = a;
            } else {
                c->abandoned[kept++] = a;
            }
        }
        c->abandoned_n = kept;
    }
    if (c->free_n == 0) {
        pthread_mutex_unlock(&c->lock);
        warden_deny(out, WARDEN_REASON_OVERLOADED);
        return -1;
    }
    uint32_t slot = c->free_list[--c->free_n];
    pthread_mutex_unlock(&c->lock);
    size_t off = warden_slot_off(c, slot);
    warden_encode(r, c->base + off + WARDEN_SLOT_HEADER_BYTES);
    atomic_store_explicit(warden_u32(c, off + 4), (uint32_t)len, memory_order_relaxed);
    _Atomic uint32_t *state = warden_u32(c, off);
    atomic_store_explicit(state, WARDEN_S_SUBMITTED, memory_order_relaxed);
    pthread_mutex_lock(&c->lock);
    atomic_store_explicit(warden_u32(c, WARDEN_HEADER_BYTES + 4u * (c->tail & (c->slots - 1))),
                          slot, memory_order_relaxed);
    c->tail++;
    atomic_store_explicit(warden_u32(c, WARDEN_H_TAIL), c->tail, memory_order_release);
    pthread_mutex_unlock(&c->lock);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(warden_u32(c, WARDEN_H_CORE_SLEEPING), memory_order_seq_cst)) {
        char one = 1; /* a full buffer drops it: a wake-up is pending then anyway */
        if (send(c->wake, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { }
    }
    uint64_t t0 = warden_now_ns();
    for (;;) {
        uint32_t s = atomic_load_explicit(state, memory_order_acquire);
        if (s == WARDEN_S_DONE) break;
        if (warden_now_ns() - t0 < c->spin_ns) continue;
        uint32_t expect = WARDEN_S_SUBMITTED;
        if (s == WARDEN_S_SUBMITTED &&
            !atomic_compare_exchange_strong(state, &expect, WARDEN_S_SLEEPING))
            continue;
        struct timespec ts = {0, 10000000}; /* 10 ms, then look at the socket */
        syscall(SYS_futex, (uint32_t *)state, FUTEX_WAIT, WARDEN_S_SLEEPING, &ts, NULL, 0);
        if (atomic_load_explicit(state, memory_order_acquire) == WARDEN_S_DONE) break;
        if (warden_server_gone(c)) { warden_deny(out, WARDEN_REASON_SHUTTING_DOWN); return -1; }
        if (warden_now_ns() - t0 > (uint64_t)c->timeout_ms * 1000000u) {
            /* the server may still write the slot: it waits among the abandoned ones */
            pthread_mutex_lock(&c->lock);
            c->abandoned[c->abandoned_n++] = slot;
            pthread_mutex_unlock(&c->lock);
            warden_deny(out, WARDEN_REASON_TIMEOUT);
            return -1;
        }
    }
    memcpy(out, c->base + off + WARDEN_VERDICT_OFFSET, sizeof *out);
    atomic_store_explicit(state, WARDEN_S_FREE, memory_order_relaxed);
    warden_release(c, slot);
    if (out->decision > WARDEN_ALLOW_WITH || (out->decision == WARDEN_DENY) != (out->reason != 0)) {
        warden_deny(out, WARDEN_REASON_INTERNAL);
        return -1;
    }
    return 0;
}

#endif /* WARDEN_IMPLEMENTATION */
#endif /* WARDEN_H */
