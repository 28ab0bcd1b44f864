/* Every client-level function in its blocking form, the version macros, hashing, errors,
 * options, keys and authentication. */
#include "pie_test.h"

static unsigned long long progress_calls, progress_last, progress_total;
static PieClient *progress_client;
static PieStatus progress_nested = PIE_STATUS_OK;
static void on_progress(void *user_data, uint64_t sent, uint64_t total) {
  CHECK(user_data == &progress_calls);
  /* Blocking calls from a runtime thread are refused, not deadlocked. */
  if (progress_calls == 0) progress_nested = pie_client_ping(progress_client, NULL);
  progress_calls++;
  CHECK(sent >= progress_last && sent <= total);
  progress_last = sent;
  progress_total = total;
}

static void test_version_and_hash(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", PIE_VERSION_MAJOR, PIE_VERSION_MINOR, PIE_VERSION_PATCH);
  CHECK(strcmp(pie_version(), want) == 0);
  CHECK(PIE_VERSION_NUMBER == PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH);
  CHECK(strcmp(pie_status_name(PIE_STATUS_TIMEOUT), "PIE_STATUS_TIMEOUT") == 0);
  CHECK(strcmp(pie_status_name(12345), "PIE_STATUS_UNKNOWN") == 0);
  CHECK(PIE_STATUS_OK == 0);

  char hash[PIE_HASH_BUFFER_SIZE];
  /* blake3 of the empty input (PROTOCOL.md 12.1). */
  CHECK(pie_hash_blob(NULL, 0, hash, sizeof hash, NULL) == PIE_STATUS_OK);
  CHECK(strcmp(hash, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262") == 0);
  char small[64];
  memset(small, 'x', sizeof small);
  CHECK(pie_hash_blob((const uint8_t *)"abc", 3, small, sizeof small, NULL) == PIE_STATUS_BUFFER_TOO_SMALL);
  CHECK(small[0] == 'x'); /* nothing written on failure */
  CHECK(pie_hash_blob((const uint8_t *)"abc", 3, NULL, 65, NULL) == PIE_STATUS_NULL_POINTER);
  CHECK(pie_hash_blob(NULL, 3, hash, sizeof hash, NULL) == PIE_STATUS_NULL_POINTER);
}

static void test_options_and_connect_failures(void) {
  PieConnectOptions *o = pie_connect_options_new();
  CHECK(o != NULL);
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_connect_timeout_ms(o, 2000, &err));
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_connect_options_set_connect_timeout_ms(o, 0, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_request_timeout_ms(o, 5000, &err));
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_connect_options_set_request_timeout_ms(o, 0, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_max_launches_in_flight(o, 4, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_instance_queue_limit_bytes(o, 1 << 20, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_instance_queue_limit_bytes(o, 0, &err)); /* unlimited */
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_tcp_quickack(o, false, &err));
  const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  EXPECT(PIE_STATUS_OK, pie_connect_options_add_root_cert_pem(o, (const uint8_t *)pem, strlen(pem), &err));
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_connect_options_add_root_cert_pem(o, (const uint8_t *)pem, 0, &err));

  PieClient *c = NULL;
  /* Not a WebSocket URL. */
  PieStatus s = pie_client_connect("http://127.0.0.1:1", NULL, &c, &err);
  CHECK(s == PIE_STATUS_INVALID_ARGUMENT || s == PIE_STATUS_CONNECTION_FAILED);
  CHECK(err != NULL && pie_error_status(err) == s);
  pie_error_free(err);
  err = NULL;
  CHECK(c == NULL); /* out-parameter untouched on failure */
  /* Nothing listens on port 1. */
  EXPECT(PIE_STATUS_CONNECTION_FAILED, pie_client_connect("ws://127.0.0.1:1", o, &c, &err));
  CHECK(c == NULL);
  /* Options are copied: free them, then connect with a fresh default set. */
  pie_connect_options_free(o);
  o = pie_connect_options_new();
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_URL"), o, &c, &err));
  pie_connect_options_free(o);
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "opt", NULL, &err));
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  pie_client_free(c);
}

static void test_requests(void) {
  PieClient *c = connect_raw();
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "alice", NULL, &err));
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));

  /* Upload with progress, then the store knows it. */
  size_t len = 0;
  unsigned char *prog = read_program("args.wasm", &len);
  char expect_hash[PIE_HASH_BUFFER_SIZE], hash[PIE_HASH_BUFFER_SIZE];
  CHECK(pie_hash_blob(prog, len, expect_hash, sizeof expect_hash, NULL) == PIE_STATUS_OK);
  bool exists = true;
  EXPECT(PIE_STATUS_OK, pie_client_program_exists(c, expect_hash, &exists, &err));
  CHECK(!exists);
  EXPECT(PIE_STATUS_OK, pie_client_upload_program(c, prog, len, NULL, NULL, hash, &err));
  CHECK(strcmp(hash, expect_hash) == 0);
  /* Progress: a 1 MiB program is 4+ chunks; a successful upload ends at (total, total) before
   * the call returns, and nothing is reported after it. */
  size_t big_len = 0;
  unsigned char *big = read_program("big.wasm", &big_len);
  char big_hash[PIE_HASH_BUFFER_SIZE];
  progress_client = c;
  EXPECT(PIE_STATUS_OK, pie_client_upload_program(c, big, big_len, on_progress, &progress_calls, big_hash, &err));
  CHECK(progress_nested == PIE_STATUS_BUSY);
  unsigned long long calls_at_return = progress_calls;
  CHECK(calls_at_return >= 2 && progress_total == big_len && progress_last == big_len);
  free(big);
  sleep_ms(50);
  CHECK(progress_calls == calls_at_return);
  EXPECT(PIE_STATUS_OK, pie_client_program_exists(c, hash, &exists, &err));
  CHECK(exists);
  char *answer = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_query(c, "program_exists", hash, &answer, &err));
  CHECK(answer != NULL && strcmp(answer, "true") == 0);
  pie_string_free(answer);
  /* Not a component: refused before sending (the real server would drop the connection). */
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_client_upload_program(c, (const uint8_t *)"nope", 4, NULL, NULL, hash, &err));

  /* Launch with arguments; the script prints them and completes with their count. */
  const char *argv[] = {"one", "two words", "three"};
  PieInstance *inst = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, expect_hash, argv, 3, false, &inst, &err));
  const char *id = pie_instance_id(inst);
  CHECK(id != NULL && strlen(id) == 36);
  CHECK(!pie_instance_is_detached(inst));
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "one two words three");
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "3");
  pie_instance_free(inst);

  /* Unknown program. */
  EXPECT(PIE_STATUS_SERVER, pie_client_launch_instance(
      c, "0000000000000000000000000000000000000000000000000000000000000000", NULL, 0, false, &inst, &err));

  /* Detached launch, list, attach, terminate. */
  free(prog);
  char fhash[PIE_HASH_BUFFER_SIZE];
  upload(c, "forever.wasm", fhash);
  const char *fargv[] = {"x"};
  PieInstance *det = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance(c, fhash, fargv, 1, true, &det, &err));
  CHECK(pie_instance_is_detached(det));
  PieEvent *ev = NULL;
  EXPECT(PIE_STATUS_DETACHED, pie_instance_recv(det, 0, &ev, &err));
  EXPECT(PIE_STATUS_DETACHED, pie_instance_send(det, "hi", &err));
  char det_id[64];
  snprintf(det_id, sizeof det_id, "%s", pie_instance_id(det));

  PieInstanceList *list = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_list_instances(c, &list, &err));
  size_t n = pie_instance_list_len(list), found = (size_t)-1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(pie_instance_list_id(list, i), det_id) == 0) found = i;
  CHECK(found != (size_t)-1);
  size_t argc = 0;
  EXPECT(PIE_STATUS_OK, pie_instance_list_argument_count(list, found, &argc, &err));
  CHECK(argc == 1 && strcmp(pie_instance_list_argument(list, found, 0), "x") == 0);
  CHECK(pie_instance_list_argument(list, found, 1) == NULL);
  PieInstanceStatus st = PIE_INSTANCE_STATUS_FINISHED;
  EXPECT(PIE_STATUS_OK, pie_instance_list_status(list, found, &st, &err));
  CHECK(st == PIE_INSTANCE_STATUS_DETACHED);
  CHECK(pie_instance_list_username(list, found) != NULL);
  uint64_t secs = 99;
  EXPECT(PIE_STATUS_OK, pie_instance_list_elapsed_secs(list, found, &secs, &err));
  CHECK(secs < 60);
  uint32_t pages = 99;
  EXPECT(PIE_STATUS_OK, pie_instance_list_kv_pages_used(list, found, &pages, &err));
  CHECK(pages == 0);
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_instance_list_status(list, n, &st, &err));
  CHECK(pie_instance_list_id(list, n) == NULL);
  pie_instance_list_free(list);

  PieInstance *att = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_attach_instance(c, det_id, &att, &err));
  CHECK(strcmp(pie_instance_id(att), det_id) == 0);
  CHECK(!pie_instance_is_detached(att));
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance(c, det_id, &err));
  /* Attaching replays what the instance printed while detached ("started"), then the abort. */
  for (;;) {
    EXPECT(PIE_STATUS_OK, pie_instance_recv(att, 10000, &ev, &err));
    PieEventKind k = pie_event_kind(ev);
    bool terminal = pie_event_is_terminal(ev);
    if (terminal) {
      CHECK(k == PIE_EVENT_KIND_ABORTED);
      CHECK(strcmp(pie_event_text(ev, NULL), "Signal termination") == 0);
    } else {
      CHECK(k == PIE_EVENT_KIND_STDOUT);
    }
    pie_event_free(ev);
    if (terminal) break;
  }
  EXPECT(PIE_STATUS_STREAM_ENDED, pie_instance_recv(att, 0, &ev, &err));
  EXPECT(PIE_STATUS_SERVER, pie_client_terminate_instance(c, "not-a-uuid", &err));
  EXPECT(PIE_STATUS_SERVER, pie_client_attach_instance(c, "00000000-0000-0000-0000-000000000000", &att, &err));
  pie_instance_free(att);
  pie_instance_free(det);

  /* Registry launch of a built-in behaviour. */
  const char *eargv[] = {"--interval-ms", "20"};
  EXPECT(PIE_STATUS_OK, pie_client_launch_instance_from_registry(c, "std/forever@1.0.0", eargv, 2, false, &inst, &err));
  EXPECT(PIE_STATUS_OK, pie_instance_send(inst, "ignored", &err));
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "tick 1\n");
  EXPECT(PIE_STATUS_OK, pie_instance_terminate(inst, &err));
  for (;;) {
    EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, 10000, &ev, &err));
    bool terminal = pie_event_is_terminal(ev);
    CHECK(pie_event_kind(ev) == (terminal ? PIE_EVENT_KIND_ABORTED : PIE_EVENT_KIND_STDOUT));
    pie_event_free(ev);
    if (terminal) break;
  }
  pie_instance_free(inst);
  EXPECT(PIE_STATUS_SERVER, pie_client_launch_instance_from_registry(c, "nobody/nothing@9", NULL, 0, false, &inst, &err));

  /* A blob to the instance (blocking form), echoed back as a BLOB event. */
  inst = launch(c, "blob.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_upload_blob(inst, (const uint8_t *)"\0\1\2bytes", 8, NULL, NULL, &err));
  ev = recv_kind(inst, PIE_EVENT_KIND_BLOB);
  size_t blen = 0;
  const uint8_t *b = pie_event_blob(ev, &blen);
  CHECK(blen == 8 && memcmp(b, "\0\1\2bytes", 8) == 0);
  pie_event_free(ev);
  EXPECT(PIE_STATUS_OK, pie_instance_send(inst, "bye", &err));
  expect_text(inst, PIE_EVENT_KIND_STDOUT, "bye");
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "got");
  pie_instance_free(inst);

  /* A measurement for the report (not asserted): blocking ping round trips. */
  double t0 = now_ms();
  for (int i = 0; i < 200; i++) EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  printf("blocking ping: %.1f us per round trip (200 pings)\n", (now_ms() - t0) * 1000.0 / 200);

  /* Close: idempotent; later calls fail with CLIENT_CLOSED. */
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_ping(c, &err));
  EXPECT(PIE_STATUS_CLIENT_CLOSED, pie_client_list_instances(c, &list, &err));
  pie_client_free(c);
}

static void test_internal_auth(void) {
  PieClient *c = connect_raw();
  EXPECT(PIE_STATUS_OK, pie_client_internal_authenticate(c, env_or_die("PIE_TEST_TOKEN"), &err));
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  pie_client_free(c);
  c = connect_raw();
  EXPECT(PIE_STATUS_AUTH, pie_client_internal_authenticate(c, "wrong-token", &err));
  pie_client_free(c);
}

static void test_keys_and_auth(void) {
  const char *path = env_or_die("PIE_TEST_KEY");
  PieKey *key = NULL;
  EXPECT(PIE_STATUS_OK, pie_key_load_file(path, NULL, &key, &err));
  EXPECT(PIE_STATUS_IO, pie_key_load_file("/nonexistent/key", NULL, &key, &err));
  PieKey *bad = NULL;
  EXPECT(PIE_STATUS_KEY, pie_key_load_memory((const uint8_t *)"garbage", 7, NULL, &bad, &err));
  CHECK(bad == NULL);

  /* The same key from memory. */
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  PieKey *key2 = NULL;
  EXPECT(PIE_STATUS_OK, pie_key_load_memory((const uint8_t *)buf, n, NULL, &key2, &err));

  /* The same key, encrypted with the passphrase "secret". */
  const char *enc = env_or_die("PIE_TEST_KEY_ENCRYPTED");
  PieKey *key3 = NULL;
  EXPECT(PIE_STATUS_KEY, pie_key_load_file(enc, NULL, &key3, &err));
  EXPECT(PIE_STATUS_KEY, pie_key_load_file(enc, "wrong", &key3, &err));
  CHECK(key3 == NULL);
  EXPECT(PIE_STATUS_OK, pie_key_load_file(enc, "secret", &key3, &err));

  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_AUTH_URL"), NULL, &c, &err));
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, env_or_die("PIE_TEST_USER"), key3, &err));
  pie_key_free(key3);
  pie_client_free(c);
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_AUTH_URL"), NULL, &c, &err));
  EXPECT(PIE_STATUS_AUTH, pie_client_authenticate(c, "mallory", key, &err));
  pie_client_free(c);
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_AUTH_URL"), NULL, &c, &err));
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, env_or_die("PIE_TEST_USER"), key2, &err));
  /* The key may be freed while the client lives on. */
  pie_key_free(key2);
  pie_key_free(key);
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  pie_client_free(c);
}

int main(void) {
  test_version_and_hash();
  test_options_and_connect_failures();
  test_requests();
  test_internal_auth();
  test_keys_and_auth();
  return pt_done("test_client");
}
