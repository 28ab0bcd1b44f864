/* The Pie 0.5 C API against `pie-sim --protocol 0.5` (run by tests/capi/v05.rs): detection,
 * options, install/check/launch by name, every event kind, chat, files, detached launch ->
 * list -> attach -> terminate, model_status, PIE_STATUS_UNSUPPORTED and argument checks. */
#include "pie_test.h"

static const char *MANIFEST_FMT =
    "[package]\nname = \"%s\"\nversion = \"0.1.0\"\n\n[runtime]\nlanguage = \"python\"\n"
    "entry = \"main\"\ncall = \"kwargs\"\n";

static int progress_calls;
static uint64_t progress_last;

static void on_progress(void *user_data, uint64_t sent, uint64_t total) {
  (void)user_data;
  (void)total;
  progress_calls++;
  progress_last = sent;
}

static void install(PieClient *c, const char *name) {
  char manifest[512];
  snprintf(manifest, sizeof manifest, MANIFEST_FMT, name);
  const char *source = "def main(**kwargs):\n    return kwargs\n";
  char hash[PIE_HASH_BUFFER_SIZE];
  progress_calls = 0;
  EXPECT(PIE_STATUS_OK,
         pie_client_install_program(c, (const uint8_t *)source, strlen(source), manifest, false,
                                    on_progress, NULL, hash, &err));
  CHECK(strlen(hash) == 64);
  CHECK(progress_calls >= 1 && progress_last == strlen(source));
  bool installed = false;
  EXPECT(PIE_STATUS_OK, pie_client_check_program(c, name, "0.1.0", &installed, &err));
  CHECK(installed);
}

/* Concatenated stdout until the terminal event, which is returned (caller frees). */
static PieEvent *drain(PieInstance *inst, char *out, size_t cap) {
  out[0] = '\0';
  for (;;) {
    PieEvent *ev = NULL;
    EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, 10000, &ev, &err));
    if (pie_event_is_terminal(ev)) return ev;
    if (pie_event_kind(ev) == PIE_EVENT_KIND_STDOUT)
      strncat(out, pie_event_text(ev, NULL), cap - strlen(out) - 1);
    pie_event_free(ev);
  }
}

int main(void) {
  const char *url = env_or_die("PIE_TEST_URL");

  /* Options: identity and forced protocol are checked. */
  PieConnectOptions *opts = pie_connect_options_new();
  CHECK(opts != NULL);
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_connect_options_set_identity(opts, "", &err));
  EXPECT(PIE_STATUS_NULL_POINTER, pie_connect_options_set_identity(opts, NULL, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_identity(opts, "acme/carol", &err));
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_connect_options_set_protocol(opts, 7, &err));
  EXPECT(PIE_STATUS_OK, pie_connect_options_set_protocol(opts, PIE_PROTOCOL_AUTO, &err));

  /* Detection: a plain ws://host:port, no user action. */
  PieClient *c = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(url, opts, &c, &err));
  pie_connect_options_free(opts);
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  CHECK(pie_client_protocol(c) == PIE_PROTOCOL_V05);
  CHECK(pie_client_protocol(NULL) == PIE_PROTOCOL_AUTO);
  EXPECT(PIE_STATUS_OK, pie_client_authenticate(c, "carol", NULL, &err));

  /* January-2026 calls without an equivalent: a status of their own and what to use. */
  char hash[PIE_HASH_BUFFER_SIZE];
  bool exists = true;
  EXPECT_MSG(PIE_STATUS_UNSUPPORTED, "check_program",
             pie_client_program_exists(c, "0000000000000000000000000000000000000000000000000000000000000000",
                                       &exists, &err));
  EXPECT(PIE_STATUS_UNSUPPORTED, pie_client_internal_authenticate(c, "token", &err));
  static const uint8_t component[8] = {0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00};
  EXPECT_MSG(PIE_STATUS_UNSUPPORTED, "install_program",
             pie_client_upload_program(c, component, sizeof component, NULL, NULL, hash, &err));
  CHECK(strcmp(pie_status_name(PIE_STATUS_UNSUPPORTED), "PIE_STATUS_UNSUPPORTED") == 0);

  /* Bad input: refused before sending, naming the parameter. */
  PieInstance *inst = NULL;
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "input: ",
             pie_client_launch_process(c, "echo-args", "{not json", false, &inst, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "inferlet",
             pie_client_launch_process(c, "echo-args@1.0", "{}", false, &inst, &err));
  bool installed = true;
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "version",
             pie_client_check_program(c, "echo-args", "1", &installed, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "id", pie_client_attach_instance(c, "nope", &inst, &err));
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "id", pie_client_terminate_instance(c, "nope", &err));
  CHECK(inst == NULL);

  /* The built-ins, model status, a refused manifest (server text verbatim). */
  EXPECT(PIE_STATUS_OK, pie_client_check_program(c, "compat-openai", "0.1.0", &installed, &err));
  CHECK(installed);
  char *status = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_model_status(c, &status, &err));
  CHECK(strstr(status, "kv_pages_total") != NULL);
  pie_string_free(status);
  const char *bad = "[package]\nname = \"x\"\nversion = \"0.1.0\"\n[runtime]\nlanguage = \"cobol\"\n";
  EXPECT_MSG(PIE_STATUS_SERVER, "Invalid manifest: ",
             pie_client_install_program(c, (const uint8_t *)"x", 1, bad, false, NULL, NULL, hash, &err));

  install(c, "echo-args");
  install(c, "chat-echo");
  install(c, "file-echo");
  install(c, "sleeper");

  /* Attached launch: stdout, message, return. */
  EXPECT(PIE_STATUS_OK, pie_client_launch_process(c, "echo-args@0.1.0", "{\"a\": 1}", false, &inst, &err));
  CHECK(strlen(pie_instance_id(inst)) == 36);
  char out[4096];
  PieEvent *end = drain(inst, out, sizeof out);
  CHECK(strcmp(out, "args: {\"a\": 1}\n") == 0);
  CHECK(pie_event_kind(end) == PIE_EVENT_KIND_COMPLETED);
  CHECK(strcmp(pie_event_text(end, NULL), "{\"a\": 1}") == 0);
  pie_event_free(end);
  pie_instance_free(inst);

  /* Chat through signal_process. */
  EXPECT(PIE_STATUS_OK, pie_client_launch_process(c, "chat-echo", "{}", false, &inst, &err));
  expect_text(inst, PIE_EVENT_KIND_MESSAGE, "ready");
  EXPECT(PIE_STATUS_OK, pie_instance_send(inst, "hi", &err));
  expect_text(inst, PIE_EVENT_KIND_MESSAGE, "echo: hi");
  EXPECT(PIE_STATUS_OK, pie_instance_send(inst, "quit", &err));
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "{\"echoed\": 1}");
  pie_instance_free(inst);

  /* A file each way: after the inferlet says it is ready (the lost-early-file race). */
  EXPECT(PIE_STATUS_OK, pie_client_launch_process(c, "file-echo", "{}", false, &inst, &err));
  expect_text(inst, PIE_EVENT_KIND_MESSAGE, "send me a file");
  sleep_ms(300);
  uint8_t payload[3000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7);
  EXPECT(PIE_STATUS_OK, pie_instance_upload_blob(inst, payload, sizeof payload, NULL, NULL, &err));
  PieEvent *blob = recv_kind(inst, PIE_EVENT_KIND_BLOB);
  size_t blen = 0;
  const uint8_t *bytes = pie_event_blob(blob, &blen);
  CHECK(blen == sizeof payload && memcmp(bytes, payload, blen) == 0);
  CHECK(pie_event_blob_name(blob) == NULL); /* send_file(bytes) has no name */
  pie_event_free(blob);
  expect_text(inst, PIE_EVENT_KIND_COMPLETED, "3000");
  pie_instance_free(inst);

  /* Detached -> id found by listing -> attach -> terminate -> ABORTED. */
  PieInstance *det = NULL;
  PieOp *op = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_launch_process_async(c, "sleeper", "{\"seconds\": 30}", true, &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_wait(op, 10000, &err));
  EXPECT(PIE_STATUS_OK, pie_op_take_instance(op, &det, &err));
  pie_op_free(op);
  CHECK(pie_instance_is_detached(det));
  CHECK(strlen(pie_instance_id(det)) == 36);
  PieInstanceList *list = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_list_instances(c, &list, &err));
  bool listed = false;
  for (size_t i = 0; i < pie_instance_list_len(list); i++)
    if (strcmp(pie_instance_list_id(list, i), pie_instance_id(det)) == 0) listed = true;
  CHECK(listed);
  pie_instance_list_free(list);
  PieInstance *att = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_attach_instance(c, pie_instance_id(det), &att, &err));
  EXPECT_MSG(PIE_STATUS_SERVER, "already attached",
             pie_client_attach_instance(c, pie_instance_id(det), &inst, &err));
  EXPECT(PIE_STATUS_OK, pie_client_terminate_instance(c, pie_instance_id(det), &err));
  expect_text(att, PIE_EVENT_KIND_ABORTED, "Signal");
  pie_instance_free(att);
  pie_instance_free(det);

  /* Async forms of check and model_status. */
  EXPECT(PIE_STATUS_OK, pie_client_check_program_async(c, "nope", "1.2.3", &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_wait(op, 10000, &err));
  installed = true;
  EXPECT(PIE_STATUS_OK, pie_op_result_bool(op, &installed, &err));
  CHECK(!installed);
  pie_op_free(op);
  EXPECT(PIE_STATUS_OK, pie_client_model_status_async(c, &op, &err));
  EXPECT(PIE_STATUS_OK, pie_op_wait(op, 10000, &err));
  const char *json = pie_op_result_string(op);
  CHECK(json != NULL && json[0] == '{');
  pie_op_free(op);

  pie_client_free(c);
  return pt_done("test_v05");
}
