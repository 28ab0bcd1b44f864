/* Every event kind, and polled receiving: timeout 0, a positive timeout, -1, end of stream,
 * closed client. */
#include "pie_test.h"

static void test_all_kinds(PieClient *c) {
  PieInstance *inst = launch(c, "kinds.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_MESSAGE, "hello");
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "out-text");
  expect_text(inst, PIE_EVENT_KIND_STDERR, "err-text");
  PieEvent *ev = recv_kind(inst, PIE_EVENT_KIND_BLOB);
  size_t len = 0;
  const uint8_t *blob = pie_event_blob(ev, &len);
  CHECK(blob != NULL && len == 10 && memcmp(blob, "blob-bytes", 10) == 0);
  CHECK(pie_event_text(ev, &len) == NULL && len == 0);
  CHECK(!pie_event_is_terminal(ev) && pie_event_dropped(ev) == 0);
  pie_event_free(ev);
  ev = recv_kind(inst, PIE_EVENT_KIND_COMPLETED);
  CHECK(pie_event_is_terminal(ev));
  CHECK(pie_event_blob(ev, &len) == NULL && len == 0);
  CHECK(strcmp(pie_event_text(ev, NULL), "done") == 0);
  pie_event_free(ev);
  EXPECT(PIE_STATUS_STREAM_ENDED, pie_instance_recv(inst, 0, &ev, &err));
  EXPECT(PIE_STATUS_STREAM_ENDED, pie_instance_recv(inst, -1, &ev, &err));
  pie_instance_free(inst);

  inst = launch(c, "fail.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_EXCEPTION, "Runtime error: boom");
  pie_instance_free(inst);
  inst = launch(c, "oom.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_SERVER_ERROR, "Terminated by OOM killer for an older instance");
  pie_instance_free(inst);
  inst = launch(c, "oor.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_OUT_OF_RESOURCES, "out of resources");
  pie_instance_free(inst);
  inst = launch(c, "unknown.wasm", NULL, 0);
  ev = recv_kind(inst, PIE_EVENT_KIND_UNKNOWN);
  CHECK(pie_event_is_terminal(ev));
  CHECK(strcmp(pie_event_text(ev, NULL), "mystery") == 0);
  pie_event_free(ev);
  pie_instance_free(inst);
  inst = launch(c, "forever.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "started");
  EXPECT(PIE_STATUS_OK, pie_instance_terminate(inst, &err));
  expect_text(inst, PIE_EVENT_KIND_ABORTED, "Signal termination");
  pie_instance_free(inst);
}

static void test_overflow(void) {
  PieConnectOptions *o = pie_connect_options_new();
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_instance_queue_limit_bytes(o, 100, &err));
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_URL"), o, &c, &err));
  pie_connect_options_free(o);
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "tester", NULL, &err));
  PieInstance *inst = launch(c, "flood.wasm", NULL, 0);
  /* Let the whole flood arrive while nobody receives. */
  sleep_ms(500);
  uint64_t dropped = 0, stdout_events = 0;
  bool completed = false;
  while (!completed) {
    PieEvent *ev = NULL;
    EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, 10000, &ev, &err));
    switch (pie_event_kind(ev)) {
      case PIE_EVENT_KIND_STDOUT: stdout_events++; break;
      case PIE_EVENT_KIND_OVERFLOW:
        CHECK(pie_event_dropped(ev) > 0 && !pie_event_is_terminal(ev));
        CHECK(pie_event_text(ev, NULL) != NULL);
        dropped += pie_event_dropped(ev);
        break;
      case PIE_EVENT_KIND_COMPLETED: completed = true; break;
      default: CHECK(!"unexpected event kind");
    }
    pie_event_free(ev);
  }
  /* 200 lines were sent: each one is either delivered or counted as dropped. */
  CHECK(dropped > 0);
  CHECK(stdout_events + dropped == 200);
  pie_instance_free(inst);
  pie_client_free(c);
}

static void test_polling(PieClient *c) {
  PieInstance *inst = launch(c, "slow.wasm", NULL, 0);
  PieEvent *ev = NULL;
  /* 0 = do not wait. */
  double t0 = now_ms();
  EXPECT(PIE_STATUS_TIMEOUT, pie_instance_recv(inst, 0, &ev, &err));
  CHECK(now_ms() - t0 < 100 * pt_scale());
  CHECK(ev == NULL);
  /* A positive timeout waits about that long. */
  t0 = now_ms();
  EXPECT(PIE_STATUS_TIMEOUT, pie_instance_recv(inst, 50, &ev, &err));
  double waited = now_ms() - t0;
  CHECK(waited >= 45 && waited < 250 * pt_scale());
  /* -1 waits for the event (the script sleeps 300 ms first). */
  EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, -1, &ev, &err));
  CHECK(pie_event_kind(ev) == PIE_EVENT_KIND_STDOUT);
  pie_event_free(ev);
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "slow");
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_instance_recv(inst, -2, &ev, &err));
  pie_instance_free(inst);

  /* Queued events survive close; then the stream reports CLIENT_CLOSED. */
  inst = launch(c, "forever.wasm", NULL, 0);
  sleep_ms(200);
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "started");
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_recv(inst, 0, &ev, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_recv(inst, -1, &ev, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_send(inst, "late", &err));
  /* The instance outlives its client handle. */
  pie_client_free(c);
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_recv(inst, 10, &ev, &err));
  pie_instance_free(inst);
}

int main(void) {
  PieClient *c = connect_default();
  test_all_kinds(c);
  test_overflow();
  test_polling(c);
  return pt_done("test_events");
}
