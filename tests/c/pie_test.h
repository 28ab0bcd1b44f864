/* Helpers shared by the C test programs (run by tests/c_api.rs against the simulator). */
#ifndef PIE_TEST_H
#define PIE_TEST_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pie.h"

static int pt_checks;
/* The error out-parameter every EXPECT'ed call writes into; EXPECT frees it. */
static PieError *err;

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
      exit(1);                                                                         \
    }                                                                                  \
    pt_checks++;                                                                       \
  } while (0)

/* Runs `call` (which writes into `err`) and checks it returned `want`; a failure must come
 * with an error object of the same status and a non-empty message, a success without one. */
#define EXPECT(want, call) pt_expect((want), (call), #call, __FILE__, __LINE__)

static void pt_expect(PieStatus want, PieStatus got, const char *what, const char *file, int line) {
  if (got != want) {
    fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", file, line, what,
            pie_status_name(got), pie_status_name(want),
            err ? pie_error_message(err) : "no error object");
    exit(1);
  }
  if (want == PIE_STATUS_OK) {
    if (err != NULL) {
      fprintf(stderr, "%s:%d: %s succeeded but wrote an error\n", file, line, what);
      exit(1);
    }
  } else if (err != NULL) {
    if (pie_error_status(err) != want || pie_error_message(err) == NULL ||
        pie_error_message(err)[0] == '\0') {
      fprintf(stderr, "%s:%d: %s: inconsistent error object\n", file, line, what);
      exit(1);
    }
  }
  pie_error_free(err);
  err = NULL;
  pt_checks++;
}

/* Like EXPECT but also checks the error message contains `needle`. */
#define EXPECT_MSG(want, needle, call)                                                 \
  do {                                                                                 \
    PieStatus st_ = (call);                                                            \
    CHECK(err != NULL);                                                                \
    if (strstr(pie_error_message(err), (needle)) == NULL) {                            \
      fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", __FILE__, __LINE__,          \
              pie_error_message(err), (needle));                                       \
      exit(1);                                                                         \
    }                                                                                  \
    pt_expect((want), st_, #call, __FILE__, __LINE__);                                 \
  } while (0)

static inline const char *env_or_die(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') {
    fprintf(stderr, "environment variable %s is not set\n", name);
    exit(2);
  }
  return v;
}

/* Reads $PIE_TEST_PROGRAMS/<name> (written by the harness) into a malloc'ed buffer. */
static inline unsigned char *read_program(const char *name, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", env_or_die("PIE_TEST_PROGRAMS"), name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* A connection that has not authenticated yet (the server accepts nothing else first). */
static inline PieClient *connect_raw(void) {
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_URL"), NULL, &c, &err));
  CHECK(c != NULL);
  return c;
}

/* A connection authenticated as "tester" (the default simulator has authentication off). */
static inline PieClient *connect_default(void) {
  PieClient *c = connect_raw();
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "tester", NULL, &err));
  return c;
}

/* Uploads tests program `name` and writes its hash into `hash`. */
static inline void upload(PieClient *c, const char *name, char hash[PIE_HASH_BUFFER_SIZE]) {
  size_t len = 0;
  unsigned char *prog = read_program(name, &len);
  EXPECT(PIE_STATUS_OK, pie_client_upload_program(c, prog, len, NULL, NULL, hash, &err));
  free(prog);
}

static inline PieInstance *launch(PieClient *c, const char *program, const char *const *argv, size_t argc) {
  char hash[PIE_HASH_BUFFER_SIZE];
  upload(c, program, hash);
  PieInstance *inst = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, hash, argv, argc, false, &inst, &err));
  CHECK(inst != NULL);
  return inst;
}

/* Receives the next event (waiting up to 10 s) and checks its kind. */
static inline PieEvent *recv_kind(PieInstance *inst, PieEventKind kind) {
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, 10000, &ev, &err));
  if (pie_event_kind(ev) != kind) {
    fprintf(stderr, "expected event kind %d, got %d (%s)\n", (int)kind, (int)pie_event_kind(ev),
            pie_event_text(ev, NULL) ? pie_event_text(ev, NULL) : "(blob)");
    exit(1);
  }
  return ev;
}

static inline void expect_text(PieInstance *inst, PieEventKind kind, const char *text) {
  PieEvent *ev = recv_kind(inst, kind);
  size_t len = 0;
  const char *t = pie_event_text(ev, &len);
  CHECK(t != NULL);
  if (strcmp(t, text) != 0 || len != strlen(text)) {
    fprintf(stderr, "expected text '%s', got '%s'\n", text, t);
    exit(1);
  }
  pie_event_free(ev);
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Number of threads of this process. */
static inline int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int pt_done(const char *name) {
  printf("%s: %d checks passed\n", name, pt_checks);
  return 0;
}

#endif
