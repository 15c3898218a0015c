// Debian's libpq-dev installs its headers under /usr/include/postgresql.
#include <postgresql/libpq-fe.h>
#include <poll.h>
#include <time.h>

// ppoll is a GNU extension the Glibc module does not declare (it is built without _GNU_SOURCE).
extern int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const void *sigmask);

/// Waits up to `nanoseconds` for `fd` to become readable: 1 readable, 0 timed out, -1 error (errno set).
static inline int steprun_wait_readable(int fd, long long nanoseconds) {
    struct pollfd descriptor = { .fd = fd, .events = POLLIN, .revents = 0 };
    struct timespec timeout = { .tv_sec = nanoseconds / 1000000000LL, .tv_nsec = nanoseconds % 1000000000LL };
    return ppoll(&descriptor, 1, &timeout, 0);
}
