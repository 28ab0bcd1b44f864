/* The server dies while C threads are blocked in libpie (run by tests/reliability_c.rs).
 *
 * Three threads wait in pie_instance_recv(-1) and a fourth instance delivers to a callback. The
 * program prints "ready" once they are all waiting; the harness then kills every server
 * connection. Every blocked thread must return PIE_STATUS_CONNECTION_CLOSED, the callback must
 * get its final call with that status and its drop exactly once, later calls must fail with the
 * same status, and everything must free cleanly (the harness runs this under valgrind too). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pie.h"

static int checks;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
    checks++;                                                                        \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Time bounds are multiplied by PIE_TIME_SCALE (default 1; valgrind and sanitizer runs set it). */
static double time_scale(void) {
  const char *v = getenv("PIE_TIME_SCALE");
  int scale = v ? atoi(v) : 1;
  return scale > 1 ? scale : 1;
}

struct waiter {
  PieInstance *inst;
  pthread_t thread;
  PieStatus status;
  double returned_at;
};

static void *wait_forever(void *arg) {
  struct waiter *w = arg;
  PieEvent *ev = NULL;
  PieError *e = NULL;
  w->status = pie_instance_recv(w->inst, -1, &ev, &e);
  w->returned_at = now();
  pie_event_free(ev);
  pie_error_free(e);
  return NULL;
}

static atomic_int cb_events, cb_final_status = -1, cb_finals, cb_drops;

static void on_event(void *ud, PieStatus status, const PieEvent *ev) {
  (void)ud;
  if (ev == NULL) {
    atomic_store(&cb_final_status, (int)status);
    atomic_fetch_add(&cb_finals, 1);
  } else {
    atomic_fetch_add(&cb_events, 1);
  }
}

static void on_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&cb_drops, 1);
}

static PieInstance *launch(PieClient *c, const char *hash) {
  PieInstance *inst = NULL;
  PieError *e = NULL;
  CHECK(pie_client_launch_instance(c, hash, NULL, 0, false, &inst, &e) == PIE_STATUS_OK);
  CHECK(e == NULL && inst != NULL);
  return inst;
}

int main(void) {
  const char *url = getenv("PIE_TEST_URL");
  const char *hash = getenv("PIE_TEST_HASH");
  CHECK(url != NULL && hash != NULL);
  PieError *e = NULL;
  PieConnectOptions *o = pie_connect_options_new();
  CHECK(pie_connect_options_set_request_timeout_ms(o, 30000, &e) == PIE_STATUS_OK);
  PieClient *c = NULL;
  CHECK(pie_client_connect(url, o, &c, &e) == PIE_STATUS_OK);
  pie_connect_options_free(o);
  CHECK(pie_client_authenticate(c, "alice", NULL, &e) == PIE_STATUS_OK);

  struct waiter w[3];
  for (int i = 0; i < 3; i++) {
    w[i].inst = launch(c, hash);
    PieEvent *ev = NULL;
    CHECK(pie_instance_recv(w[i].inst, 5000, &ev, &e) == PIE_STATUS_OK);
    CHECK(pie_event_kind(ev) == PIE_EVENT_KIND_STDOUT);
    pie_event_free(ev);
    CHECK(pthread_create(&w[i].thread, NULL, wait_forever, &w[i]) == 0);
  }
  PieInstance *cb_inst = launch(c, hash);
  CHECK(pie_instance_set_callback(cb_inst, on_event, NULL, on_drop, &e) == PIE_STATUS_OK);
  while (atomic_load(&cb_events) < 1) usleep(1000);

  usleep(100 * 1000); /* let the waiters block */
  printf("ready\n");
  fflush(stdout);
  double ready = now();

  for (int i = 0; i < 3; i++) {
    CHECK(pthread_join(w[i].thread, NULL) == 0);
    CHECK(w[i].status == PIE_STATUS_CONNECTION_CLOSED);
    CHECK(w[i].returned_at - ready < 1.0 * time_scale());
  }
  while (atomic_load(&cb_drops) == 0 && now() - ready < 2.0 * time_scale()) usleep(1000);
  CHECK(atomic_load(&cb_finals) == 1);
  CHECK(atomic_load(&cb_final_status) == PIE_STATUS_CONNECTION_CLOSED);
  CHECK(atomic_load(&cb_drops) == 1);

  /* Later calls fail at once with the same status. */
  PieEvent *ev = NULL;
  CHECK(pie_instance_recv(w[0].inst, 0, &ev, &e) == PIE_STATUS_CONNECTION_CLOSED);
  CHECK(e != NULL && pie_error_status(e) == PIE_STATUS_CONNECTION_CLOSED);
  pie_error_free(e);
  e = NULL;
  CHECK(pie_client_ping(c, NULL) == PIE_STATUS_CONNECTION_CLOSED);
  PieInstance *late = NULL;
  CHECK(pie_client_launch_instance(c, hash, NULL, 0, false, &late, NULL) ==
        PIE_STATUS_CONNECTION_CLOSED);
  CHECK(late == NULL);

  pie_instance_free(cb_inst);
  CHECK(atomic_load(&cb_drops) == 1);
  for (int i = 0; i < 3; i++) pie_instance_free(w[i].inst);
  pie_client_free(c);
  printf("reliability_kill: %d checks passed\n", checks);
  return 0;
}
