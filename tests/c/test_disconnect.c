/* The server drops the connection (the harness kills it after "READY"): pending calls, polled
 * streams, callback streams and the connection callback all report CONNECTION_CLOSED. */

#include "pie_test.h"

#include <stdatomic.h>

static atomic_int conn_calls, conn_status, conn_drops;
static void on_conn(void *ud, PieStatus status, const char *message) {
  (void)ud;
  CHECK(message != NULL && message[0] != '\0');
  atomic_store(&conn_status, (int)status);
  atomic_fetch_add(&conn_calls, 1);
}
static void on_conn_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&conn_drops, 1);
}

static atomic_int events, final_status = -1, drops;
static void on_event(void *ud, PieStatus status, const PieEvent *ev) {
  (void)ud;
  if (ev) atomic_fetch_add(&events, 1);
  else atomic_store(&final_status, (int)status);
}
static void on_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&drops, 1);
}

static void wait_for(atomic_int *v, int want) {
  for (int i = 0; i < 1000 && atomic_load(v) < want; i++) sleep_ms(10);
  CHECK(atomic_load(v) >= want);
}

int main(void) {
  PieClient *c = connect_default();
  EXPECT(PIE_STATUS_OK, pie_client_set_connection_callback(c, on_conn, NULL, on_conn_drop, &err));
  PieInstance *polled = launch(c, "forever.wasm", NULL, 0);
  expect_text(polled, PIE_EVENT_KIND_STDOUT, "started");
  PieInstance *called = launch(c, "forever.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(called, on_event, NULL, on_drop, &err));
  wait_for(&events, 1);
  PieOp *pending = NULL;
  EXPECT(PIE_STATUS_OK, pie_instance_recv_async(polled, -1, &pending, &err));
  int fd = -1;
  EXPECT(PIE_STATUS_OK, pie_client_event_fd(c, &fd, &err));

  printf("READY\n");
  fflush(stdout);

  wait_for(&conn_drops, 1);
  CHECK(atomic_load(&conn_calls) == 1 && atomic_load(&conn_status) == PIE_STATUS_CONNECTION_CLOSED);
  CHECK(pie_op_wait(pending, 10000, NULL) == PIE_STATUS_CONNECTION_CLOSED);
  pie_op_free(pending);
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_CONNECTION_CLOSED, pie_instance_recv(polled, 0, &ev, &err));
  wait_for(&drops, 1);
  CHECK(atomic_load(&final_status) == PIE_STATUS_CONNECTION_CLOSED);
  EXPECT(PIE_STATUS_CONNECTION_CLOSED, pie_client_ping(c, &err));
  EXPECT(PIE_STATUS_CONNECTION_CLOSED, pie_instance_send(polled, "x", &err));
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err)); /* closing a dead connection is fine */
  pie_instance_free(called);
  pie_client_free(c);
  pie_instance_free(polled);
  CHECK(atomic_load(&conn_calls) == 1 && atomic_load(&drops) == 1);
  return pt_done("test_disconnect");
}
