/* A server that stops answering (the harness switches the simulator to "silence" after
 * READY): blocking calls return TIMEOUT within the request timeout, operations too, a
 * polled recv is unaffected, and close/free still finish. */
#include "pie_test.h"

int main(void) {
  PieConnectOptions *o = pie_connect_options_new();
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_request_timeout_ms(o, 300, &err));
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_URL"), o, &c, &err));
  pie_connect_options_free(o);
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "tester", NULL, &err));
  PieInstance *inst = launch(c, "forever.wasm", NULL, 0);
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "started");

  printf("READY\n");
  fflush(stdout);
  char go[16];
  CHECK(fgets(go, sizeof go, stdin) != NULL && strncmp(go, "GO", 2) == 0);

  double t0 = now_ms();
  EXPECT(PIE_STATUS_TIMEOUT, pie_client_ping(c, &err));
  double took = now_ms() - t0;
  CHECK(took >= 250 && took < 1500);

  PieOp *op = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_list_instances_async(c, &op, &err));
  CHECK(pie_op_wait(op, 5000, NULL) == PIE_STATUS_TIMEOUT);
  pie_op_free(op);

  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_TIMEOUT, pie_instance_recv(inst, 50, &ev, &err));

  t0 = now_ms();
  pie_client_free(c); /* closing a silent server is bounded too */
  CHECK(now_ms() - t0 < 5000);
  pie_instance_free(inst);
  return pt_done("test_timeout");
}
