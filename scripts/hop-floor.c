/*
 * The cost of crossing processes on this machine, with no daemon, protocol or database in the
 * way (scripts/hop-floor compiles and runs it; docs/PERFORMANCE.md, "The floor under a relay").
 *
 *   one hop:  A writes a byte to B over a Unix socket pair, B writes one back.
 *   relay:    A -> B -> C -> B -> A, the shape of a call through a daemon: the client, the daemon,
 *             the database.
 *
 * Prints the p50, p90 and p99 round trip of each in microseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, long long *samples, int count) {
    qsort(samples, count, sizeof *samples, by_value);
    printf("%-8s p50 %7.1f us   p90 %7.1f us   p99 %7.1f us\n", name, samples[count / 2] / 1000.0,
           samples[count * 9 / 10] / 1000.0, samples[count * 99 / 100] / 1000.0);
}

static void must(int ok, const char *what) {
    if (!ok) {
        perror(what);
        exit(1);
    }
}

static pid_t spawn(void) {
    pid_t pid = fork();
    must(pid >= 0, "fork");
    return pid;
}

/* Answers every byte read on `fd` with one byte until the peer closes. */
static void echo(int fd) {
    char byte;
    while (read(fd, &byte, 1) == 1)
        if (write(fd, &byte, 1) != 1) break;
    _exit(0);
}

/* Passes every byte from `client` on to `server`, and the answer back, until the client closes. */
static void relay(int client, int server) {
    char byte;
    while (read(client, &byte, 1) == 1) {
        if (write(server, &byte, 1) != 1 || read(server, &byte, 1) != 1 || write(client, &byte, 1) != 1) break;
    }
    _exit(0);
}

static void measure(const char *name, int fd, long long *samples, int count) {
    char byte = 'x';
    for (int i = 0; i < count; i++) {
        long long start = now_ns();
        must(write(fd, &byte, 1) == 1, "write");
        must(read(fd, &byte, 1) == 1, "read");
        samples[i] = now_ns() - start;
    }
    report(name, samples, count);
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 20000;
    if (count < 100) count = 100;
    long long *samples = calloc((size_t)count, sizeof *samples);
    must(samples != NULL, "calloc");

    int pair[2];
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair");
    if (spawn() == 0) {
        close(pair[0]);
        echo(pair[1]);
    }
    close(pair[1]);
    measure("one hop", pair[0], samples, count);
    close(pair[0]);

    int front[2], back[2];
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, front) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, back) == 0, "socketpair");
    if (spawn() == 0) {
        close(front[0]);
        close(back[1]);
        relay(front[1], back[0]);
    }
    if (spawn() == 0) {
        close(front[0]);
        close(front[1]);
        close(back[0]);
        echo(back[1]);
    }
    close(front[1]);
    close(back[0]);
    close(back[1]);
    measure("relay", front[0], samples, count);
    close(front[0]);

    while (wait(NULL) > 0) {}
    free(samples);
    return 0;
}
