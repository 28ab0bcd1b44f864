/* Text generation on a real pie-server 0.5.2 through libpie's C API, as a C host would do it:
 * connect with a plain ws://host:port URL (libpie detects the 0.5 server), authenticate,
 * launch the built-in compat-openai inferlet with JSON input through
 * pie_client_launch_instance_from_registry (one argument that is a JSON object becomes the
 * launch input on 0.5), and print each streamed chunk as it arrives.
 *
 *   generate URL [MAX_TOKENS]
 * Output (stdout): one line "chunk <message text>" per Message event, then
 * "completed <value>". Exit 0 only when the instance completed; every wait is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie.h"

/* A token takes seconds on lavapipe; with_server.sh restarts an engine stalled for 150 s. */
#define EVENT_TIMEOUT_MS 300000

static int fail(const char *what, PieError *err) {
  fprintf(stderr, "generate: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: generate URL [MAX_TOKENS]\n");
    return 2;
  }
  int max_tokens = argc > 2 ? atoi(argv[2]) : 3;
  char input[256];
  snprintf(input, sizeof input, "{\"prompt\": \"Hello\", \"max_tokens\": %d, \"stream\": true}",
           max_tokens);

  PieClient *client = NULL;
  PieInstance *instance = NULL;
  PieError *err = NULL;
  int rc = 1;

  if (pie_client_connect(argv[1], NULL, &client, &err) != PIE_STATUS_OK) {
    rc = fail("connect", err);
    goto out;
  }
  if (pie_client_authenticate(client, "libpie-generate", NULL, &err) != PIE_STATUS_OK) {
    rc = fail("authenticate", err);
    goto out;
  }
  const char *args[] = {input};
  if (pie_client_launch_instance_from_registry(client, "compat-openai@0.1.0", args, 1, false,
                                               &instance, &err) != PIE_STATUS_OK) {
    rc = fail("launch", err);
    goto out;
  }
  fprintf(stderr, "generate: process %s\n", pie_instance_id(instance));

  for (;;) {
    PieEvent *event = NULL;
    if (pie_instance_recv(instance, EVENT_TIMEOUT_MS, &event, &err) != PIE_STATUS_OK) {
      rc = fail("recv", err);
      goto out;
    }
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    PieEventKind kind = pie_event_kind(event);
    if (kind == PIE_EVENT_KIND_MESSAGE) {
      printf("chunk %.*s\n", (int)len, text ? text : "");
      fflush(stdout); /* each chunk as it arrives */
    } else if (kind == PIE_EVENT_KIND_COMPLETED) {
      printf("completed %.*s\n", (int)len, text ? text : "");
      rc = 0;
    } else if (pie_event_is_terminal(event)) {
      fprintf(stderr, "generate: ended with event kind %d: %.*s\n", (int)kind, (int)len,
              text ? text : "");
    }
    int terminal = pie_event_is_terminal(event);
    pie_event_free(event);
    if (terminal) break;
  }

out:
  pie_instance_free(instance);
  pie_client_free(client);
  return rc;
}
