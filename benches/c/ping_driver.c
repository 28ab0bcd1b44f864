/* The C API as it ships, driven by the benchmarks: this program links the libpie.so that
 * `make` builds (cdylib only, what `make install` installs), not the Rust test build the
 * benchmark binary links, and runs pings on command so that pie_bench can interleave its
 * rounds with the other clients' rounds.
 *
 * Usage: ping_driver URL. Commands on stdin, one per line, each answered by one line on stdout:
 *   inflight K   K batches of 64 pie_client_ping_async, each batch waited for and freed
 *                -> "inflight <wall ns> <cpu ns> <context switches>"
 *   ping N       N blocking pie_client_ping one after another
 *                -> "ping <ns> <ns> ..." (one latency per ping)
 * Any failure is one line "error <text>" and the exit status 1. */
#include <pie.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BATCH 64

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void usage_of_process(long long *cpu_ns, long long *switches) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *cpu_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
            (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
  *switches = ru.ru_nvcsw + ru.ru_nivcsw;
}

static int fail(const char *what, PieError *err) {
  printf("error %s: %s\n", what, err ? pie_error_message(err) : "(no error object)");
  fflush(stdout);
  pie_error_free(err);
  return 1;
}

static int in_flight(PieClient *client, long batches) {
  PieOp *ops[BATCH];
  PieError *err = NULL;
  long long cpu0, sw0, cpu1, sw1;
  usage_of_process(&cpu0, &sw0);
  long long t0 = now_ns();
  for (long b = 0; b < batches; b++) {
    for (int i = 0; i < BATCH; i++) {
      if (pie_client_ping_async(client, &ops[i], &err) != PIE_STATUS_OK) {
        return fail("pie_client_ping_async", err);
      }
    }
    for (int i = 0; i < BATCH; i++) {
      PieStatus st = pie_op_wait(ops[i], -1, &err);
      pie_op_free(ops[i]);
      if (st != PIE_STATUS_OK) return fail("pie_op_wait", err);
    }
  }
  long long wall = now_ns() - t0;
  usage_of_process(&cpu1, &sw1);
  printf("inflight %lld %lld %lld\n", wall, cpu1 - cpu0, sw1 - sw0);
  fflush(stdout);
  return 0;
}

static int one_by_one(PieClient *client, long pings) {
  PieError *err = NULL;
  long long *took = malloc(sizeof *took * (size_t)(pings > 0 ? pings : 1));
  if (!took) return fail("out of memory", NULL);
  for (long i = 0; i < pings; i++) {
    long long t0 = now_ns();
    if (pie_client_ping(client, &err) != PIE_STATUS_OK) {
      free(took);
      return fail("pie_client_ping", err);
    }
    took[i] = now_ns() - t0;
  }
  printf("ping");
  for (long i = 0; i < pings; i++) printf(" %lld", took[i]);
  printf("\n");
  fflush(stdout);
  free(took);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ws://HOST:PORT\n", argv[0]);
    return 2;
  }
  PieError *err = NULL;
  PieClient *client = NULL;
  PieConnectOptions *options = pie_connect_options_new();
  if (!options) return fail("pie_connect_options_new", NULL);
  PieStatus st = pie_client_connect(argv[1], options, &client, &err);
  pie_connect_options_free(options);
  if (st != PIE_STATUS_OK) return fail("pie_client_connect", err);
  if (pie_client_authenticate(client, "bench", NULL, &err) != PIE_STATUS_OK) {
    pie_client_free(client);
    return fail("pie_client_authenticate", err);
  }
  char line[128];
  int status = 0;
  while (status == 0 && fgets(line, sizeof line, stdin)) {
    char command[16];
    long count;
    if (sscanf(line, "%15s %ld", command, &count) != 2 || count < 0) {
      printf("error unknown command: %s", line);
      status = 1;
    } else if (strcmp(command, "inflight") == 0) {
      status = in_flight(client, count);
    } else if (strcmp(command, "ping") == 0) {
      status = one_by_one(client, count);
    } else {
      printf("error unknown command: %s", line);
      status = 1;
    }
  }
  pie_client_free(client);
  return status;
}
