/* Callback delivery: order, thread, final call, drop-once, calling back into libpie from a
 * callback, freeing an instance or a client inside its own callback, freeing while a callback
 * runs, replacing a callback, connection callbacks. */

#include "pie_test.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
  PieInstance *inst;
  PieClient *client;
  PieInstance *other; /* a poll-mode instance the callback may receive from */
  PieEventKind kinds[64];
  char texts[64][64];
  atomic_int n;
  atomic_int final_calls;
  atomic_int final_status;
  atomic_int drops;
  atomic_int calls_after_drop;
  atomic_int in_call;
  atomic_int mode;
  pthread_t thread;
  atomic_int thread_set;
  atomic_int same_thread;
} Rec;

static pthread_t main_thread;

static void rec_init(Rec *r) {
  memset(r, 0, sizeof *r);
  atomic_store(&r->same_thread, 1);
  atomic_store(&r->final_status, -1);
}

static void on_drop(void *ud) {
  Rec *r = ud;
  atomic_fetch_add(&r->drops, 1);
}

/* mode 0: record; 1: call back into libpie; 2: free own instance on first event;
 * 3: free own client on first event; 4: slow (to free while running). */
static void on_event(void *ud, PieStatus status, const PieEvent *ev) {
  Rec *r = ud;
  atomic_fetch_add(&r->in_call, 1);
  if (atomic_load(&r->drops) > 0) atomic_fetch_add(&r->calls_after_drop, 1);
  if (pthread_equal(pthread_self(), main_thread)) atomic_store(&r->same_thread, 0);
  if (!atomic_exchange(&r->thread_set, 1)) r->thread = pthread_self();
  else if (!pthread_equal(r->thread, pthread_self())) atomic_store(&r->same_thread, 0);

  if (ev == NULL) {
    CHECK(status != PIE_STATUS_OK);
    atomic_store(&r->final_status, (int)status);
    atomic_fetch_add(&r->final_calls, 1);
    atomic_fetch_sub(&r->in_call, 1);
    return;
  }
  CHECK(status == PIE_STATUS_OK);
  int i = atomic_load(&r->n);
  if (i < 64) {
    r->kinds[i] = pie_event_kind(ev);
    const char *t = pie_event_text(ev, NULL);
    snprintf(r->texts[i], sizeof r->texts[i], "%s", t ? t : "");
  }
  atomic_store(&r->n, i + 1);
  PieError *e = NULL;
  switch (atomic_load(&r->mode)) {
    case 1:
      if (strcmp(r->texts[i], "ready") == 0) {
        /* Blocking calls from the callback thread: must not deadlock. */
        CHECK(pie_instance_send(r->inst, "from-callback", &e) == PIE_STATUS_OK);
        CHECK(pie_client_ping(r->client, &e) == PIE_STATUS_OK);
        PieInstanceList *l = NULL;
        CHECK(pie_client_list_instances(r->client, &l, &e) == PIE_STATUS_OK);
        CHECK(pie_instance_list_len(l) >= 1);
        pie_instance_list_free(l);
        PieEvent *got = NULL;
        CHECK(pie_instance_recv(r->other, 5000, &got, &e) == PIE_STATUS_OK);
        pie_event_free(got);
        /* recv on a callback-mode instance is refused, not deadlocked. */
        CHECK(pie_instance_recv(r->inst, 0, &got, &e) == PIE_STATUS_BUSY);
        pie_error_free(e);
        e = NULL;
      }
      if (strcmp(r->texts[i], "from-callback") == 0)
        CHECK(pie_instance_terminate(r->inst, &e) == PIE_STATUS_OK);
      break;
    case 2:
      pie_instance_free(r->inst); /* deferred: no further call, then drop */
      r->inst = NULL;
      atomic_store(&r->mode, 0);
      break;
    case 3:
      pie_client_free(r->client); /* deferred release; the stream ends with CLIENT_CLOSED */
      r->client = NULL;
      atomic_store(&r->mode, 0);
      break;
    case 4:
      sleep_ms(50);
      break;
  }
  CHECK(e == NULL);
  atomic_fetch_sub(&r->in_call, 1);
}

static void wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 1000 && atomic_load(v) < want; i++) sleep_ms(10);
  CHECK(atomic_load(v) >= want);
}

static void test_order_and_final_call(PieClient *c) {
  Rec r;
  rec_init(&r);
  r.inst = launch(c, "kinds.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(r.inst, on_event, &r, on_drop, &err));
  wait_for(&r.drops, 1);
  CHECK(atomic_load(&r.n) == 5);
  CHECK(r.kinds[0] == PIE_EVENT_KIND_MESSAGE && strcmp(r.texts[0], "hello") == 0);
  CHECK(r.kinds[1] == PIE_EVENT_KIND_STDOUT && r.kinds[2] == PIE_EVENT_KIND_STDERR);
  CHECK(r.kinds[3] == PIE_EVENT_KIND_BLOB && r.kinds[4] == PIE_EVENT_KIND_COMPLETED);
  CHECK(atomic_load(&r.final_calls) == 1);
  CHECK(atomic_load(&r.final_status) == PIE_STATUS_STREAM_ENDED);
  CHECK(atomic_load(&r.same_thread) == 1);
  CHECK(atomic_load(&r.calls_after_drop) == 0);
  /* After the final call the instance is back in poll mode and reports the end. */
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_STREAM_ENDED, pie_instance_recv(r.inst, 0, &ev, &err));
  pie_instance_free(r.inst);
  CHECK(atomic_load(&r.drops) == 1);
}

static void test_reentrant_calls(PieClient *c) {
  Rec r;
  rec_init(&r);
  r.client = c;
  r.other = launch(c, "forever.wasm", NULL, 0); /* prints "started" for the callback to recv */
  atomic_store(&r.mode, 1);
  r.inst = launch(c, "echo.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(r.inst, on_event, &r, on_drop, &err));
  wait_for(&r.drops, 1);
  /* ready, the echoed message, then ABORTED from the terminate made in the callback. */
  CHECK(atomic_load(&r.n) == 3);
  CHECK(strcmp(r.texts[1], "from-callback") == 0);
  CHECK(r.kinds[2] == PIE_EVENT_KIND_ABORTED);
  CHECK(atomic_load(&r.final_status) == PIE_STATUS_STREAM_ENDED);
  pie_instance_free(r.inst);
  EXPECT(PIE_STATUS_OK, pie_instance_terminate(r.other, &err));
  pie_instance_free(r.other);
}

static void test_free_instance_inside_callback(PieClient *c) {
  Rec r;
  rec_init(&r);
  atomic_store(&r.mode, 2);
  r.inst = launch(c, "ticker.wasm", NULL, 0);
  char id[64];
  snprintf(id, sizeof id, "%s", pie_instance_id(r.inst));
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(r.inst, on_event, &r, on_drop, &err));
  wait_for(&r.drops, 1);
  sleep_ms(100); /* the ticker keeps printing: nothing may reach the freed registration */
  CHECK(atomic_load(&r.n) == 1);
  CHECK(atomic_load(&r.final_calls) == 0);
  CHECK(atomic_load(&r.drops) == 1 && atomic_load(&r.calls_after_drop) == 0);
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance(c, id, &err));
}

static void test_free_client_inside_callback(void) {
  Rec r;
  rec_init(&r);
  r.client = connect_default();
  atomic_store(&r.mode, 3);
  r.inst = launch(r.client, "forever.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(r.inst, on_event, &r, on_drop, &err));
  wait_for(&r.drops, 1);
  CHECK(atomic_load(&r.final_status) == PIE_STATUS_CLIENT_CLOSED);
  CHECK(atomic_load(&r.final_calls) == 1);
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_recv(r.inst, 0, &ev, &err));
  pie_instance_free(r.inst); /* the last handle: the client is released here */
}

static void test_free_while_callback_runs(PieClient *c) {
  Rec r;
  rec_init(&r);
  atomic_store(&r.mode, 4);
  r.inst = launch(c, "ticker.wasm", NULL, 0);
  char id[64];
  snprintf(id, sizeof id, "%s", pie_instance_id(r.inst));
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(r.inst, on_event, &r, on_drop, &err));
  wait_for(&r.n, 2);
  pie_instance_free(r.inst);
  /* free waited for the running call and for drop. */
  CHECK(atomic_load(&r.in_call) == 0);
  CHECK(atomic_load(&r.drops) == 1);
  int n = atomic_load(&r.n);
  sleep_ms(100);
  CHECK(atomic_load(&r.n) == n);
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance(c, id, &err));
}

static void test_replace_callback(PieClient *c) {
  Rec a, b;
  rec_init(&a);
  rec_init(&b);
  PieInstance *inst = launch(c, "forever.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(inst, on_event, &a, on_drop, &err));
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(inst, on_event, &b, on_drop, &err));
  wait_for(&a.drops, 1);
  EXPECT(PIE_STATUS_OK, pie_instance_terminate(inst, &err));
  wait_for(&b.drops, 1);
  CHECK(atomic_load(&a.n) + atomic_load(&b.n) == 2); /* "started" and ABORTED, once each */
  CHECK(atomic_load(&a.final_calls) == 0 && atomic_load(&b.final_calls) == 1);
  CHECK(atomic_load(&a.calls_after_drop) == 0);
  pie_instance_free(inst);
  CHECK(atomic_load(&a.drops) == 1 && atomic_load(&b.drops) == 1);
  /* No callback on a detached instance; NULL callback refused. */
  char hash[PIE_HASH_BUFFER_SIZE];
  upload(c, "forever.wasm", hash);
  PieInstance *det = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, hash, NULL, 0, true, &det, &err));
  EXPECT(PIE_STATUS_DETACHED, pie_instance_set_callback(det, on_event, &a, on_drop, &err));
  EXPECT(PIE_STATUS_NULL_POINTER, pie_instance_set_callback(det, NULL, &a, on_drop, &err));
  char id[64];
  snprintf(id, sizeof id, "%s", pie_instance_id(det));
  pie_instance_free(det);
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance(c, id, &err));
}

typedef struct {
  atomic_int calls, drops, status;
  char message[256];
} ConnRec;

static void on_conn(void *ud, PieStatus status, const char *message) {
  ConnRec *r = ud;
  CHECK(message != NULL);
  snprintf(r->message, sizeof r->message, "%s", message);
  atomic_store(&r->status, (int)status);
  atomic_fetch_add(&r->calls, 1);
}
static void on_conn_drop(void *ud) {
  ConnRec *r = ud;
  CHECK(atomic_load(&r->calls) <= 1);
  atomic_fetch_add(&r->drops, 1);
}

static void test_connection_callback(void) {
  ConnRec a, b, late;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&late, 0, sizeof late);
  PieClient *c = connect_default();
  EXPECT(PIE_STATUS_OK, pie_client_set_connection_callback(c, on_conn, &a, on_conn_drop, &err));
  EXPECT(PIE_STATUS_OK, pie_client_set_connection_callback(c, on_conn, &b, on_conn_drop, &err));
  wait_for(&a.drops, 1);
  CHECK(atomic_load(&a.calls) == 0);
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  wait_for(&b.drops, 1);
  CHECK(atomic_load(&b.calls) == 1 && atomic_load(&b.status) == PIE_STATUS_CLIENT_CLOSED);
  /* Registered after the end: called at once. */
  EXPECT(PIE_STATUS_OK, pie_client_set_connection_callback(c, on_conn, &late, NULL, &err));
  wait_for(&late.calls, 1);
  CHECK(atomic_load(&late.status) == PIE_STATUS_CLIENT_CLOSED);
  pie_client_free(c);
  CHECK(atomic_load(&a.drops) == 1 && atomic_load(&b.drops) == 1);

  /* Never fired, released by free: drop still runs exactly once. */
  ConnRec d;
  memset(&d, 0, sizeof d);
  c = connect_default();
  EXPECT(PIE_STATUS_OK, pie_client_set_connection_callback(c, on_conn, &d, on_conn_drop, &err));
  pie_client_free(c);
  CHECK(atomic_load(&d.drops) == 1 && atomic_load(&d.calls) == 1);
  CHECK(atomic_load(&d.status) == PIE_STATUS_CLIENT_CLOSED);
}

int main(void) {
  main_thread = pthread_self();
  PieClient *c = connect_default();
  test_order_and_final_call(c);
  test_reentrant_calls(c);
  test_free_instance_inside_callback(c);
  test_free_while_callback_runs(c);
  test_replace_callback(c);
  pie_client_free(c);
  test_free_client_inside_callback();
  test_connection_callback();
  return pt_done("test_callbacks");
}
