/* Every _async form, driven by pie_op_poll, pie_op_wait and pie_op_set_callback, plus
 * cancellation and freeing pending operations. */

#include "pie_test.h"

#include <stdatomic.h>

/* Waits for `op` and checks its final status. */
static void finish(PieOp *op, PieStatus want) {
  CHECK(op != NULL);
  PieStatus s = pie_op_wait(op, 10000, NULL);
  if (s != want) {
    PieError *e = NULL;
    pie_op_error(op, &e);
    fprintf(stderr, "op finished with %s, expected %s: %s\n", pie_status_name(s), pie_status_name(want),
            e ? pie_error_message(e) : "");
    exit(1);
  }
  CHECK(pie_op_poll(op, NULL) == want);
  PieError *e = NULL;
  CHECK(pie_op_error(op, &e) == want);
  CHECK((e == NULL) == (want == PIE_STATUS_OK));
  if (e) CHECK(pie_error_status(e) == want);
  pie_error_free(e);
}

typedef struct {
  atomic_int calls, drops, status, took;
  int free_in_callback;
} OpRec;

static void on_op(void *ud, PieOp *op, PieStatus status) {
  OpRec *r = ud;
  CHECK(pie_op_poll(op, NULL) == status);
  atomic_store(&r->status, (int)status);
  if (status == PIE_STATUS_OK) {
    /* Results can be taken inside the callback. */
    PieInstanceList *l = NULL;
    PieError *e = NULL;
    if (pie_op_take_instance_list(op, &l, &e) == PIE_STATUS_OK) {
      atomic_store(&r->took, 1);
      pie_instance_list_free(l);
    }
    pie_error_free(e);
  }
  if (r->free_in_callback) pie_op_free(op);
  atomic_fetch_add(&r->calls, 1);
}
static void on_op_drop(void *ud) {
  OpRec *r = ud;
  CHECK(atomic_load(&r->calls) <= 1);
  atomic_fetch_add(&r->drops, 1);
}
/* A connect completion: take the client inside the callback, use it (blocking calls on the
 * callback thread), free it there (deferred). */
static atomic_int connect_cb_ok, connect_cb_drops;
static void on_connected(void *ud, PieOp *op, PieStatus status) {
  (void)ud;
  PieClient *c = NULL;
  PieError *e = NULL;
  if (status == PIE_STATUS_OK && pie_op_take_client(op, &c, &e) == PIE_STATUS_OK &&
      pie_client_authenticate(c, "cb", NULL, &e) == PIE_STATUS_OK &&
      pie_client_ping(c, &e) == PIE_STATUS_OK)
    atomic_store(&connect_cb_ok, 1);
  pie_error_free(e);
  pie_client_free(c);
}
static void on_connected_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&connect_cb_drops, 1);
}

static void wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 1000 && atomic_load(v) < want; i++) sleep_ms(10);
  CHECK(atomic_load(v) >= want);
}

int main(void) {
  const char *url = env_or_die("PIE_TEST_URL");
  PieOp *op = NULL;

  /* connect: polled until done */
  EXPECT(PIE_STATUS_OK, pie_client_connect_async(url, NULL, &op, &err));
  int polls = 0;
  while (pie_op_poll(op, NULL) == PIE_STATUS_PENDING && polls++ < 1000) sleep_ms(5);
  finish(op, PIE_STATUS_OK);
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_op_take_client(op, &c, &err));
  CHECK(c != NULL);
  PieClient *again = NULL;
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_op_take_client(op, &again, &err));
  CHECK(again == NULL);
  pie_op_free(op);
  /* A failed connect reports through the op. */
  EXPECT(PIE_STATUS_OK, pie_client_connect_async("ws://127.0.0.1:1", NULL, &op, &err));
  finish(op, PIE_STATUS_CONNECTION_FAILED);
  EXPECT(PIE_STATUS_CONNECTION_FAILED, pie_op_take_client(op, &again, &err));
  pie_op_free(op);
  /* Completion by callback, on the thread that becomes the new client's callback thread. */
  EXPECT(PIE_STATUS_OK, pie_client_connect_async(url, NULL, &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_set_callback(op, on_connected, NULL, on_connected_drop, &err));
  wait_for(&connect_cb_drops, 1);
  CHECK(atomic_load(&connect_cb_ok) == 1);
  pie_op_free(op);
  /* A connect op freed without taking its client releases it. */
  EXPECT(PIE_STATUS_OK, pie_client_connect_async(url, NULL, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);

  EXPECT(PIE_STATUS_OK, pie_client_authenticate_async(c, "bob", NULL, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(c, &op, &err));
  finish(op, PIE_STATUS_OK);
  CHECK(pie_op_result_string(op) == NULL);
  bool b = false;
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_op_result_bool(op, &b, &err));
  pie_op_free(op);

  /* upload, program_exists, query */
  size_t len = 0;
  unsigned char *prog = read_program("blob.wasm", &len);
  char hash[PIE_HASH_BUFFER_SIZE];
  CHECK(pie_hash_blob(prog, len, hash, sizeof hash, NULL) == PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_client_upload_program_async(c, prog, len, NULL, NULL, &op, &err));
  free(prog); /* inputs are copied */
  finish(op, PIE_STATUS_OK);
  CHECK(strcmp(pie_op_result_string(op), hash) == 0);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_program_exists_async(c, hash, &op, &err));
  finish(op, PIE_STATUS_OK);
  b = false;
  EXPECT(PIE_STATUS_OK, pie_op_result_bool(op, &b, &err));
  CHECK(b);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_query_async(c, "program_exists", hash, &op, &err));
  finish(op, PIE_STATUS_OK);
  CHECK(strcmp(pie_op_result_string(op), "true") == 0);
  pie_op_free(op);

  /* launch, blob upload, recv, send */
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance_async(c, hash, NULL, 0, false, &op, &err));
  finish(op, PIE_STATUS_OK);
  PieInstance *inst = NULL;
  EXPECT(PIE_STATUS_OK, pie_op_take_instance(op, &inst, &err));
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_upload_blob_async(inst, (const uint8_t *)"payload", 7, NULL, NULL, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, 10000, &op, &err));
  finish(op, PIE_STATUS_OK);
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_OK, pie_op_take_event(op, &ev, &err));
  size_t blen = 0;
  const uint8_t *bytes = pie_event_blob(ev, &blen);
  CHECK(pie_event_kind(ev) == PIE_EVENT_KIND_BLOB && blen == 7 && memcmp(bytes, "payload", 7) == 0);
  pie_event_free(ev);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_send_async(inst, "bye", &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, -1, &op, &err));
  finish(op, PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_op_take_event(op, &ev, &err));
  CHECK(pie_event_kind(ev) == PIE_EVENT_KIND_STDOUT && strcmp(pie_event_text(ev, NULL), "bye") == 0);
  pie_event_free(ev);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, -1, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, 0, &op, &err));
  finish(op, PIE_STATUS_STREAM_ENDED);
  EXPECT(PIE_STATUS_STREAM_ENDED, pie_op_take_event(op, &ev, &err));
  pie_op_free(op);
  pie_instance_free(inst);

  /* registry launch, detached; list; terminate by id */
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance_from_registry_async(c, "forever@1", NULL, 0, true, &op, &err));
  finish(op, PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_op_take_instance(op, &inst, &err));
  pie_op_free(op);
  CHECK(pie_instance_is_detached(inst));
  char id[64];
  snprintf(id, sizeof id, "%s", pie_instance_id(inst));
  pie_instance_free(inst);
  EXPECT(PIE_STATUS_OK, pie_client_list_instances_async(c, &op, &err));
  finish(op, PIE_STATUS_OK);
  PieInstanceList *list = NULL;
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_op_take_instance(op, &inst, &err));
  EXPECT(PIE_STATUS_OK, pie_op_take_instance_list(op, &list, &err));
  CHECK(pie_instance_list_len(list) >= 1);
  pie_instance_list_free(list);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance_async(c, id, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance_async(c, "not-a-uuid", &op, &err));
  finish(op, PIE_STATUS_SERVER);
  pie_op_free(op);

  /* attach to a detached scripted instance: its "started" line is replayed */
  char fhash[PIE_HASH_BUFFER_SIZE];
  upload(c, "forever.wasm", fhash);
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, fhash, NULL, 0, true, &inst, &err));
  snprintf(id, sizeof id, "%s", pie_instance_id(inst));
  pie_instance_free(inst);
  EXPECT(PIE_STATUS_OK, pie_client_attach_instance_async(c, id, &op, &err));
  finish(op, PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_op_take_instance(op, &inst, &err));
  pie_op_free(op);
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "started");

  /* recv with a timeout, then cancel a recv that waits forever */
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, 20, &op, &err));
  finish(op, PIE_STATUS_TIMEOUT);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, -1, &op, &err));
  CHECK(pie_op_wait(op, 30, NULL) == PIE_STATUS_PENDING);
  CHECK(pie_op_cancel(op, NULL) == PIE_STATUS_OK);
  CHECK(pie_op_poll(op, NULL) == PIE_STATUS_CANCELLED);
  CHECK(pie_op_cancel(op, NULL) == PIE_STATUS_OK); /* no effect once finished */
  pie_op_free(op);
  /* freeing a pending op cancels it and still calls its callback */
  OpRec pr;
  memset(&pr, 0, sizeof pr);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, -1, &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_set_callback(op, on_op, &pr, on_op_drop, &err));
  pie_op_free(op);
  wait_for(&pr.drops, 1);
  CHECK(atomic_load(&pr.calls) == 1 && atomic_load(&pr.status) == PIE_STATUS_CANCELLED);

  EXPECT(PIE_STATUS_OK, pie_instance_terminate_async(inst, &op, &err));
  finish(op, PIE_STATUS_OK);
  pie_op_free(op);
  expect_text(inst, PIE_EVENT_KIND_ABORTED, "Signal termination");
  pie_instance_free(inst);

  /* callbacks: result taken inside, op freed inside; already finished => called at once */
  OpRec r1, r2;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  r1.free_in_callback = 1;
  EXPECT(PIE_STATUS_OK, pie_client_list_instances_async(c, &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_set_callback(op, on_op, &r1, on_op_drop, &err));
  op = NULL; /* the callback frees it */
  wait_for(&r1.drops, 1);
  CHECK(atomic_load(&r1.calls) == 1 && atomic_load(&r1.took) == 1);
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(c, &op, &err));
  finish(op, PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_op_set_callback(op, on_op, &r2, on_op_drop, &err));
  wait_for(&r2.drops, 1);
  CHECK(atomic_load(&r2.calls) == 1 && atomic_load(&r2.status) == PIE_STATUS_OK);
  EXPECT(PIE_STATUS_NULL_POINTER, pie_op_set_callback(op, NULL, &r2, NULL, &err));
  pie_op_free(op);

  /* internal auth with a wrong token fails through the op (after the server's delay); a
   * fresh connection, since an authenticated one answers "Already authenticated" */
  PieClient *fresh = connect_raw();
  EXPECT(PIE_STATUS_OK, pie_client_internal_authenticate_async(fresh, "wrong", &op, &err));
  finish(op, PIE_STATUS_AUTH);
  pie_op_free(op);
  pie_client_free(fresh);

  /* pending calls end with CLIENT_CLOSED when the client closes */
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance_from_registry_async(c, "forever@1", NULL, 0, false, &op, &err));
  finish(op, PIE_STATUS_OK);
  EXPECT(PIE_STATUS_OK, pie_op_take_instance(op, &inst, &err));
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, -1, &op, &err));
  PieOp *op2 = NULL;
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(inst, 0, &op2, &err));
  pie_op_wait(op2, -1, NULL);
  pie_op_free(op2);
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  PieStatus s = pie_op_wait(op, 10000, NULL);
  CHECK(s == PIE_STATUS_CLIENT_CLOSED || s == PIE_STATUS_OK);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(c, &op, &err));
  finish(op, PIE_STATUS_CLIENT_CLOSED);
  /* free order does not matter: op outlives the client, instance outlives both */
  pie_client_free(c);
  pie_op_free(op);
  pie_instance_free(inst);
  return pt_done("test_async");
}
