/* Handles shared by several threads; after the last free no libpie thread remains, and the
 * library starts again afterwards. */

#include "pie_test.h"

#include <pthread.h>
#include <stdatomic.h>

static PieClient *shared_client;
static char shared_hash[PIE_HASH_BUFFER_SIZE];
static atomic_int failures;

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++) {
    PieError *e = NULL;
    if (pie_client_ping(shared_client, &e) != PIE_STATUS_OK) atomic_fetch_add(&failures, 1);
    pie_error_free(e);
  }
  const char *argv[] = {"t"};
  PieInstance *inst = NULL;
  PieError *e = NULL;
  if (pie_client_launch_instance(shared_client, shared_hash, argv, 1, false, &inst, &e) != PIE_STATUS_OK) {
    atomic_fetch_add(&failures, 1);
    pie_error_free(e);
    return NULL;
  }
  for (;;) {
    PieEvent *ev = NULL;
    PieStatus s = pie_instance_recv(inst, 10000, &ev, NULL);
    if (s != PIE_STATUS_OK) {
      if (s != PIE_STATUS_STREAM_ENDED) atomic_fetch_add(&failures, 1);
      break;
    }
    pie_event_free(ev);
  }
  pie_instance_free(inst);
  return NULL;
}

static atomic_int drops;
static void on_event(void *ud, PieStatus s, const PieEvent *ev) {
  (void)ud;
  (void)s;
  (void)ev;
}
static void on_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&drops, 1);
}

/* Strict: libpie joins its threads before the last free returns, so no waiting here. */
static void wait_threads(int want) {
  int n = thread_count();
  if (n != want) {
    fprintf(stderr, "%d threads, expected %d\n", n, want);
    exit(1);
  }
}

static void round_trip(int baseline) {
  shared_client = connect_default();
  CHECK(thread_count() > baseline);
  upload(shared_client, "args.wasm", shared_hash);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  CHECK(atomic_load(&failures) == 0);

  /* A callback thread, and objects freed in an unusual order: client first. */
  PieInstance *inst = launch(shared_client, "kinds.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(inst, on_event, NULL, on_drop, &err));
  PieOp *op = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(shared_client, &op, &err));
  pie_client_free(shared_client);
  CHECK(thread_count() > baseline);
  pie_instance_free(inst);
  pie_op_free(op);
  /* Everything is freed: the runtime and the callback thread are gone on return. */
  wait_threads(baseline);
}

int main(void) {
  int baseline = thread_count();
  CHECK(baseline >= 1);
  round_trip(baseline);
  CHECK(atomic_load(&drops) == 1);
  round_trip(baseline); /* the runtime starts again on demand */
  CHECK(atomic_load(&drops) == 2);
  /* Connect failures leave nothing behind either. */
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_CONNECTION_FAILED, pie_client_connect("ws://127.0.0.1:1", NULL, &c, &err));
  wait_threads(baseline);
  return pt_done("test_threads");
}
