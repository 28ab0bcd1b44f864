/* Misuse must give a status, never a crash: NULL for every class of pointer parameter,
 * invalid UTF-8, wrong argument counts, use after close, double close, freeing NULL, wrong
 * result types, and a NULL out_err. */
#include "pie_test.h"

static const char bad_utf8[] = {'a', (char)0xff, (char)0xfe, 0};

int main(void) {
  /* Freeing NULL is a no-op for every type. */
  pie_client_free(NULL);
  pie_instance_free(NULL);
  pie_event_free(NULL);
  pie_error_free(NULL);
  pie_key_free(NULL);
  pie_instance_list_free(NULL);
  pie_op_free(NULL);
  pie_connect_options_free(NULL);
  pie_string_free(NULL);

  /* Accessors on NULL objects. */
  CHECK(pie_error_status(NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(pie_error_message(NULL) == NULL);
  CHECK(pie_instance_id(NULL) == NULL);
  CHECK(!pie_instance_is_detached(NULL));
  CHECK(pie_event_kind(NULL) == PIE_EVENT_KIND_UNKNOWN);
  size_t len = 7;
  CHECK(pie_event_text(NULL, &len) == NULL && len == 0);
  len = 7;
  CHECK(pie_event_blob(NULL, &len) == NULL && len == 0);
  CHECK(!pie_event_is_terminal(NULL));
  CHECK(pie_event_dropped(NULL) == 0);
  CHECK(pie_instance_list_len(NULL) == 0);
  CHECK(pie_instance_list_id(NULL, 0) == NULL);
  CHECK(pie_instance_list_username(NULL, 0) == NULL);
  CHECK(pie_instance_list_argument(NULL, 0, 0) == NULL);
  size_t count = 9;
  EXPECT(PIE_STATUS_NULL_POINTER, pie_instance_list_argument_count(NULL, 0, &count, &err));
  CHECK(count == 9);
  CHECK(pie_op_poll(NULL, NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(pie_op_wait(NULL, 0, NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(pie_op_cancel(NULL, NULL) == PIE_STATUS_NULL_POINTER);
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "op", pie_op_poll(NULL, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "op", pie_op_wait(NULL, 0, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "op", pie_op_cancel(NULL, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out", pie_hash_blob(NULL, 0, NULL, 65, &err));
  CHECK(pie_op_error(NULL, NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(pie_op_result_string(NULL) == NULL);

  /* NULL required arguments: the message names the parameter. */
  PieClient *c = NULL;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "url", pie_client_connect(NULL, NULL, &c, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_client", pie_client_connect(env_or_die("PIE_TEST_URL"), NULL, NULL, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "url", pie_client_connect(bad_utf8, NULL, &c, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "client", pie_client_ping(NULL, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "options", pie_connect_options_set_tcp_quickack(NULL, true, &err));
  /* A NULL out_err is fine: only the status reports. */
  CHECK(pie_client_ping(NULL, NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(c == NULL);

  c = connect_default();
  char *res = (char *)"untouched";
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "subject", pie_client_query(c, NULL, "x", &res, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_result", pie_client_query(c, "a", "b", NULL, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "record", pie_client_query(c, "a", bad_utf8, &res, &err));
  CHECK(strcmp(res, "untouched") == 0);
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "username", pie_client_authenticate(c, NULL, NULL, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "token", pie_client_internal_authenticate(c, bad_utf8, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_exists", pie_client_program_exists(c, "h", NULL, &err));
  char hash[PIE_HASH_BUFFER_SIZE];
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "data", pie_client_upload_program(c, NULL, 10, NULL, NULL, hash, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_hash", pie_client_upload_program(c, (const uint8_t *)"x", 1, NULL, NULL, NULL, &err));
  PieOp *op = NULL;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_op", pie_client_ping_async(c, NULL, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "hash", pie_client_program_exists_async(c, bad_utf8, &op, &err));
  CHECK(op == NULL);
  int fd = -5;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_fd", pie_client_event_fd(c, NULL, &err));
  CHECK(fd == -5);
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "callback", pie_client_set_connection_callback(c, NULL, NULL, NULL, &err));
  PieKey *key = NULL;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "path", pie_key_load_file(NULL, NULL, &key, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "passphrase", pie_key_load_memory((const uint8_t *)"k", 1, bad_utf8, &key, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_key", pie_key_load_memory((const uint8_t *)"k", 1, NULL, NULL, &err));

  /* Argument vectors: NULL with a count, a NULL element, a bad element. */
  upload(c, "args.wasm", hash);
  PieInstance *inst = NULL;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "argv", pie_client_launch_instance(c, hash, NULL, 2, false, &inst, &err));
  const char *with_null[] = {"a", NULL};
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "argv[1]", pie_client_launch_instance(c, hash, with_null, 2, false, &inst, &err));
  const char *with_bad[] = {bad_utf8};
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "argv[0]", pie_client_launch_instance_async(c, hash, with_bad, 1, false, &op, &err));
  CHECK(inst == NULL && op == NULL);
  /* argc smaller than the array: only argc elements are used. */
  const char *three[] = {"x", "y", "z"};
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, hash, three, 2, false, &inst, &err));
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "x y");
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "2");

  PieEvent *ev = NULL;
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out_event", pie_instance_recv(inst, 0, NULL, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "instance", pie_instance_recv(NULL, 0, &ev, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "message", pie_instance_send(inst, NULL, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_UTF8, "message", pie_instance_send(inst, bad_utf8, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "data", pie_instance_upload_blob(inst, NULL, 3, NULL, NULL, &err));

  /* Wrong result types from an op. */
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(c, &op, &err));
  CHECK(pie_op_wait(op, 10000, NULL) == PIE_STATUS_OK);
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_op_take_event(op, &ev, &err));
  PieClient *other = NULL;
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_op_take_client(op, &other, &err));
  EXPECT_MSG(PIE_STATUS_NULL_POINTER, "out", pie_op_take_client(op, NULL, &err));
  /* One timeout rule: -1 waits forever, other negative values are refused. */
  CHECK(pie_op_wait(op, -1, NULL) == PIE_STATUS_OK);
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "timeout_ms", pie_op_wait(op, -7, &err));
  pie_op_free(op);

  /* Use after close, double close. */
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_ping(c, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_query(c, "a", "b", &res, &err));
  size_t plen = 0;
  unsigned char *prog = read_program("kinds.wasm", &plen);
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_upload_program(c, prog, plen, NULL, NULL, hash, &err));
  free(prog);
  PieInstance *none = NULL;
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_launch_instance(c, hash, NULL, 0, false, &none, &err));
  CHECK(none == NULL);
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_instance_terminate(inst, &err));
  EXPECT(PIE_STATUS_OK, pie_client_ping_async(c, &op, &err));
  CHECK(pie_op_wait(op, 10000, NULL) == PIE_STATUS_CLIENT_CLOSED);
  pie_op_free(op);
  pie_instance_free(inst);
  pie_client_free(c);
  return pt_done("test_misuse");
}
