/*
 * simopen_ref: the C reference for `npm run bench`.
 *
 * Opens TCP connections by simultaneous open (both sockets bind a fixed port and connect() to each
 * other; nobody listens), both sides of each pair from one thread, nonblocking sockets and epoll,
 * many pairs in flight per thread. Each side sends a deterministic payload that the other checks
 * byte by byte, then the pair closes (graceful, reset or simultaneous). Prints one JSON line.
 *
 * It needs a private network namespace whose lo drops the RST a closed port sends back to an early
 * SYN (see lib/core/sandbox.ts); on a plain loopback the first connect of each pair is refused.
 *
 * Build: cc -O2 -pthread -o bench/build/simopen_ref bench/simopen_ref.c
 * Usage: simopen_ref [--pairs N] [--threads T] [--inflight K] [--payload BYTES]
 *                    [--close graceful|reset|simultaneous] [--net A] [--port-base P] [--timeout-ms MS]
 * Exit: 0 all pairs completed, 1 some failed, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum close_kind { CLOSE_GRACEFUL, CLOSE_RESET, CLOSE_SIMULTANEOUS };

/* Pairs of one /8 address: ports from port_base upwards, two per pair. */
static long opt_pairs = 10000;
static int opt_threads = 1;
static int opt_inflight = 64; /* per thread, as stress.ts per worker */
static long opt_payload = 64; /* as stress.ts */
static enum close_kind opt_close = CLOSE_GRACEFUL; /* as stress.ts */
static int opt_net = 1; /* second octet: 127.<net>.x.y, so separate runs never share a 4-tuple */
static int opt_port_base = 10000;
static long opt_timeout_ms = 10000;

#define PORTS_PER_ADDRESS 50000 /* ports port_base .. port_base + 49999 */
#define PAIRS_PER_ADDRESS (PORTS_PER_ADDRESS / 2)

enum side_state { S_CONNECTING, S_OPEN, S_CLOSED };

struct side {
  int fd;
  enum side_state state;
  long sent;
  long received;
};

struct pair {
  long id; /* global pair index, -1 when the slot is free */
  struct side side[2];
  struct timespec started;
  int closing;
};

struct thread_result {
  long completed;
  long failed;
  long bytes_verified;
  long err_connect;
  long err_payload;
  long err_timeout;
  long err_other;
  int first_errno;
};

struct thread_arg {
  int index;
  long first_pair;
  long end_pair;
  pthread_barrier_t *barrier;
  struct thread_result result;
};

/* The streams of lib/core/payloadPattern.ts: A sends (id + k) mod 251, B sends 250 - that. Built once,
 * payload + 251 bytes long; pair id reads them from offset id mod 251, so sending is one send() from the
 * buffer and checking is one memcmp, as in the Node code. */
#define PATTERN_PERIOD 251
static uint8_t *pattern[2];

static void build_patterns(void) {
  for (int side = 0; side < 2; side++) {
    pattern[side] = malloc((size_t)opt_payload + PATTERN_PERIOD);
    if (!pattern[side]) {
      perror("simopen_ref: malloc");
      exit(1);
    }
    for (long k = 0; k < opt_payload + PATTERN_PERIOD; k++) {
      uint8_t value = (uint8_t)(k % PATTERN_PERIOD);
      pattern[side][k] = side == 0 ? value : (uint8_t)(PATTERN_PERIOD - 1 - value);
    }
  }
}

static void pair_address(long pair_id, int side, struct sockaddr_in *out) {
  long address_index = pair_id / PAIRS_PER_ADDRESS;
  long slot = pair_id % PAIRS_PER_ADDRESS;
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  /* 127.<net>.<hi>.<lo+1>: never .0, so 65,000 addresses per run */
  uint32_t host = (127u << 24) | ((uint32_t)opt_net << 16) | (uint32_t)((address_index / 254) << 8) |
                  (uint32_t)(address_index % 254 + 1);
  out->sin_addr.s_addr = htonl(host);
  out->sin_port = htons((uint16_t)(opt_port_base + slot * 2 + side));
}

static double elapsed_ms(const struct timespec *from) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - from->tv_sec) * 1e3 + (now.tv_nsec - from->tv_nsec) / 1e6;
}

static void record_errno(struct thread_result *r, int err) {
  if (!r->first_errno) r->first_errno = err;
}

static int open_side(struct pair *p, int side, int epfd, long slot, struct thread_result *r) {
  struct sockaddr_in local, remote;
  pair_address(p->id, side, &local);
  pair_address(p->id, 1 - side, &remote);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    record_errno(r, errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  p->side[side].fd = fd;
  p->side[side].state = S_CONNECTING;
  if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
    record_errno(r, errno);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                           .data.u64 = ((uint64_t)slot << 1) | (uint64_t)side};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    record_errno(r, errno);
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&remote, sizeof(remote)) < 0 && errno != EINPROGRESS) {
    record_errno(r, errno);
    return -1;
  }
  return 0;
}

static void close_fd(struct side *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->state = S_CLOSED;
}

static void reset_fd(struct side *s) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  if (s->fd >= 0) setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close_fd(s);
}

static void abort_pair(struct pair *p) {
  for (int i = 0; i < 2; i++) reset_fd(&p->side[i]);
  p->id = -1;
}

static int pair_done(struct pair *p) { return p->side[0].state == S_CLOSED && p->side[1].state == S_CLOSED; }

static int side_verified(struct pair *p, int i) { return p->side[i].received == opt_payload; }
static int side_sent(struct pair *p, int i) { return p->side[i].sent == opt_payload; }

/* Starts the close when its moment has come, as stress.ts does (lib/stress/sandboxPair.ts). Graceful: A closes
 * once it has B's payload, B closes on A's FIN (A ends in TIME_WAIT). Simultaneous: both send FIN once
 * both payloads are in, and each closes on the other's FIN. Reset: once both payloads are in, A aborts
 * with RST and B is closed. */
static void maybe_close(struct pair *p) {
  if (p->closing || p->side[0].state != S_OPEN || p->side[1].state != S_OPEN) return;
  switch (opt_close) {
  case CLOSE_GRACEFUL:
    if (!side_verified(p, 0) || !side_sent(p, 0)) return;
    p->closing = 1;
    close_fd(&p->side[0]);
    break;
  case CLOSE_SIMULTANEOUS:
    if (!side_verified(p, 0) || !side_verified(p, 1) || !side_sent(p, 0) || !side_sent(p, 1)) return;
    p->closing = 1;
    shutdown(p->side[0].fd, SHUT_WR);
    shutdown(p->side[1].fd, SHUT_WR);
    break;
  case CLOSE_RESET:
    if (!side_verified(p, 0) || !side_verified(p, 1)) return;
    p->closing = 1;
    reset_fd(&p->side[0]);
    close_fd(&p->side[1]);
    break;
  }
}

/* Returns -1 on a failure of this pair, 0 otherwise. */
static int progress_side(struct pair *p, int i, uint32_t events, uint8_t *buf, size_t buflen,
                         struct thread_result *r) {
  struct side *s = &p->side[i];
  if (s->state == S_CLOSED) return 0;
  if (s->state == S_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return 0;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      r->err_connect++;
      record_errno(r, err);
      return -1;
    }
    s->state = S_OPEN;
  }
  long offset = p->id % PATTERN_PERIOD;
  while (!p->closing && s->sent < opt_payload) {
    ssize_t w = send(s->fd, pattern[i] + offset + s->sent, (size_t)(opt_payload - s->sent), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) break;
      r->err_other++;
      record_errno(r, errno);
      return -1;
    }
    s->sent += w;
  }
  for (;;) {
    ssize_t got = recv(s->fd, buf, buflen, 0);
    if (got < 0) {
      if (errno == EAGAIN) return 0;
      r->err_other++;
      record_errno(r, errno);
      return -1;
    }
    if (got == 0) {
      /* EOF: fine after the whole payload once the close has begun; otherwise the peer quit early. */
      if (!side_verified(p, i) || !p->closing) {
        r->err_payload++;
        return -1;
      }
      close_fd(s);
      return 0;
    }
    if (s->received + got > opt_payload) {
      r->err_payload++;
      return -1;
    }
    if (memcmp(buf, pattern[1 - i] + offset + s->received, (size_t)got) != 0) {
      r->err_payload++;
      return -1;
    }
    s->received += got;
    if (side_verified(p, i)) r->bytes_verified += opt_payload;
  }
}

static void *run_thread(void *arg_) {
  struct thread_arg *arg = arg_;
  struct thread_result *r = &arg->result;
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct pair *slots = calloc((size_t)opt_inflight, sizeof(struct pair));
  struct epoll_event *events = calloc((size_t)opt_inflight * 2, sizeof(struct epoll_event));
  size_t buflen = 65536;
  uint8_t *buf = malloc(buflen);
  if (epfd < 0 || !slots || !events || !buf) {
    perror("simopen_ref: setup");
    exit(1);
  }
  for (int k = 0; k < opt_inflight; k++) slots[k].id = -1;
  long next = arg->first_pair;
  long active = 0;
  pthread_barrier_wait(arg->barrier);

  while (next < arg->end_pair || active > 0) {
    /* Fill the free slots. */
    for (int k = 0; k < opt_inflight && next < arg->end_pair; k++) {
      struct pair *p = &slots[k];
      if (p->id != -1) continue;
      memset(p, 0, sizeof(*p));
      p->id = next++;
      p->side[0].fd = p->side[1].fd = -1;
      clock_gettime(CLOCK_MONOTONIC, &p->started);
      /* A's SYN reaches B's bound, unconnected port; its RST is dropped, so B's SYN meets A in SYN_SENT. */
      if (open_side(p, 0, epfd, k, r) < 0 || open_side(p, 1, epfd, k, r) < 0) {
        r->err_connect++;
        r->failed++;
        abort_pair(p);
        continue;
      }
      active++;
    }
    int n = epoll_wait(epfd, events, opt_inflight * 2, 100);
    if (n < 0 && errno != EINTR) {
      perror("simopen_ref: epoll_wait");
      exit(1);
    }
    for (int e = 0; e < n; e++) {
      long slot = (long)(events[e].data.u64 >> 1);
      int i = (int)(events[e].data.u64 & 1);
      struct pair *p = &slots[slot];
      if (p->id == -1) continue;
      if (progress_side(p, i, events[e].events, buf, buflen, r) < 0) {
        r->failed++;
        abort_pair(p);
        active--;
        continue;
      }
      if (!p->closing) {
        maybe_close(p);
        /* Edge-triggered: a FIN the close just sent is read now rather than after another wait. */
        for (int j = 0; p->closing && j < 2; j++) {
          if (progress_side(p, j, 0, buf, buflen, r) < 0) {
            r->failed++;
            abort_pair(p);
            active--;
            break;
          }
        }
        if (p->id == -1) continue;
      }
      if (pair_done(p)) {
        r->completed++;
        p->id = -1;
        active--;
      }
    }
    /* Per-pair timeout, checked at most every wakeup; cheap relative to the syscalls. */
    if (n == 0) {
      for (int k = 0; k < opt_inflight; k++) {
        struct pair *p = &slots[k];
        if (p->id != -1 && elapsed_ms(&p->started) > (double)opt_timeout_ms) {
          r->err_timeout++;
          r->failed++;
          abort_pair(p);
          active--;
        }
      }
    }
  }
  close(epfd);
  free(slots);
  free(events);
  free(buf);
  return NULL;
}

static void usage(const char *why) {
  fprintf(stderr,
          "simopen_ref: %s\nusage: simopen_ref [--pairs N] [--threads T] [--inflight K] [--payload BYTES] "
          "[--close graceful|reset|simultaneous] [--net 1..254] [--port-base P] [--timeout-ms MS]\n",
          why);
  exit(2);
}

static long parse_long(const char *flag, const char *text, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || *end || end == text || v < min || v > max) {
    char msg[200];
    snprintf(msg, sizeof(msg), "%s: '%s' is not a number in %ld..%ld", flag, text, min, max);
    usage(msg);
  }
  return v;
}

int main(int argc, char **argv) {
  for (int a = 1; a < argc; a++) {
    const char *flag = argv[a];
    if (a + 1 >= argc) usage("missing value after the last flag");
    const char *value = argv[++a];
    if (!strcmp(flag, "--pairs")) opt_pairs = parse_long(flag, value, 1, 100000000);
    else if (!strcmp(flag, "--threads")) opt_threads = (int)parse_long(flag, value, 1, 1024);
    else if (!strcmp(flag, "--inflight")) opt_inflight = (int)parse_long(flag, value, 1, 100000);
    else if (!strcmp(flag, "--payload")) opt_payload = parse_long(flag, value, 0, 1L << 30);
    else if (!strcmp(flag, "--net")) opt_net = (int)parse_long(flag, value, 1, 254);
    else if (!strcmp(flag, "--port-base")) opt_port_base = (int)parse_long(flag, value, 1024, 65535 - PORTS_PER_ADDRESS);
    else if (!strcmp(flag, "--timeout-ms")) opt_timeout_ms = parse_long(flag, value, 1, 3600000);
    else if (!strcmp(flag, "--close")) {
      if (!strcmp(value, "graceful")) opt_close = CLOSE_GRACEFUL;
      else if (!strcmp(value, "reset")) opt_close = CLOSE_RESET;
      else if (!strcmp(value, "simultaneous")) opt_close = CLOSE_SIMULTANEOUS;
      else usage("--close: expected graceful, reset or simultaneous");
    } else {
      char msg[200];
      snprintf(msg, sizeof(msg), "unknown flag '%s'", flag);
      usage(msg);
    }
  }
  if (opt_pairs > (long)PAIRS_PER_ADDRESS * 254 * 254) usage("--pairs: more than the address plan holds");

  /* Each in-flight pair holds two fds. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = (rlim_t)opt_threads * (rlim_t)opt_inflight * 2 + 64;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }

  build_patterns();
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)opt_threads + 1);
  pthread_t *tids = calloc((size_t)opt_threads, sizeof(pthread_t));
  struct thread_arg *args = calloc((size_t)opt_threads, sizeof(struct thread_arg));
  for (int t = 0; t < opt_threads; t++) {
    args[t].index = t;
    args[t].first_pair = opt_pairs * t / opt_threads;
    args[t].end_pair = opt_pairs * (t + 1) / opt_threads;
    args[t].barrier = &barrier;
    if (pthread_create(&tids[t], NULL, run_thread, &args[t]) != 0) {
      perror("simopen_ref: pthread_create");
      return 1;
    }
  }
  struct timespec start;
  pthread_barrier_wait(&barrier);
  clock_gettime(CLOCK_MONOTONIC, &start);
  struct thread_result total = {0};
  for (int t = 0; t < opt_threads; t++) {
    pthread_join(tids[t], NULL);
    struct thread_result *r = &args[t].result;
    total.completed += r->completed;
    total.failed += r->failed;
    total.bytes_verified += r->bytes_verified;
    total.err_connect += r->err_connect;
    total.err_payload += r->err_payload;
    total.err_timeout += r->err_timeout;
    total.err_other += r->err_other;
    if (!total.first_errno) total.first_errno = r->first_errno;
  }
  double ms = elapsed_ms(&start);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const char *close_name = opt_close == CLOSE_RESET ? "reset" : opt_close == CLOSE_GRACEFUL ? "graceful" : "simultaneous";
  printf("{\"pairs\":%ld,\"threads\":%d,\"inflightPerThread\":%d,\"payload\":%ld,\"close\":\"%s\","
         "\"completed\":%ld,\"failed\":%ld,\"bytesVerified\":%ld,\"elapsedMs\":%.1f,\"pairsPerSec\":%.0f,"
         "\"errors\":{\"connect\":%ld,\"payload\":%ld,\"timeout\":%ld,\"other\":%ld},\"firstErrno\":\"%s\","
         "\"peakRssKb\":%ld}\n",
         opt_pairs, opt_threads, opt_inflight, opt_payload, close_name, total.completed, total.failed,
         total.bytes_verified, ms, total.completed / (ms / 1e3), total.err_connect, total.err_payload,
         total.err_timeout, total.err_other, total.first_errno ? strerror(total.first_errno) : "",
         ru.ru_maxrss);
  return total.failed ? 1 : 0;
}
