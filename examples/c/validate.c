/* A small C client of `warden serve`: validates requests given on the command line as
 * TENANT AGENT TOOL RESOURCE, or, with `--bench N`, one request N times and prints the
 * round trip's p50 and p99.
 *
 *     cc -O2 -I include examples/c/validate.c -o validate -lpthread
 *     ./validate warden.sock acme planner-1 fs.read /data/acme/q3.csv
 */
#define WARDEN_IMPLEMENTATION
#include "warden.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s SOCKET TENANT AGENT TOOL RESOURCE [--bench N]\n", argv[0]);
        return 2;
    }
    char err[512];
    warden_client *c;
    if (warden_connect(argv[1], &c, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    warden_request r = warden_request_check(argv[2], argv[3], argv[4], argv[5]);
    warden_verdict v;
    if (argc == 8 && strcmp(argv[6], "--bench") == 0) {
        long n = atol(argv[7]);
        uint64_t *t = malloc(sizeof(uint64_t) * (size_t)n);
        struct timespec a, b;
        for (long i = 0; i < n; i++) {
            clock_gettime(CLOCK_MONOTONIC, &a);
            warden_validate(c, &r, &v);
            clock_gettime(CLOCK_MONOTONIC, &b);
            t[i] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
        }
        qsort(t, (size_t)n, sizeof t[0], cmp);
        printf("{\"n\": %ld, \"p50_ns\": %llu, \"p99_ns\": %llu}\n", n,
               (unsigned long long)t[n / 2], (unsigned long long)t[n * 99 / 100]);
        free(t);
        warden_close(c);
        return 0;
    }
    int rc = warden_validate(c, &r, &v);
    printf("%s %s%s\n", warden_decision_name(v.decision), warden_reason_name(v.reason),
           rc < 0 ? " (decided by the client: no verdict from the server)" : "");
    warden_close(c);
    return v.decision == WARDEN_DENY ? 1 : 0;
}
