/* libpie quick start: the C counterpart of the Pie client's Quick Start.
 *
 * Connects to a Pie server (argv[1], default ws://127.0.0.1:8080), authenticates, starts a text
 * completion and prints it as it streams, until the instance completes. Works against both
 * servers: on the January-2026 server it launches the `text-completion` inferlet from the
 * registry (its output comes as stdout events); on a Pie 0.5 server (pie-server 0.5.x) it
 * launches the built-in `compat-openai` (its output comes as `message` events, one OpenAI
 * text_completion chunk each). Exits non-zero with the error message on any failure.
 *
 *   PIE_USER  user name (default "quickstart")
 *   PIE_KEY   path of the user's SSH private key (omit when the server has auth disabled)
 *   PIE_MAX_TOKENS  tokens to generate on a Pie 0.5 server (default 16)
 *   argv[2]   the prompt (optional)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie05_helpers.h"
#include "pie.h"

/* Prints what failed and why, frees the error, and returns the exit status to use. */
static int report(const char *what, PieError *err) {
  fprintf(stderr, "quickstart: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

/* The one place the two servers differ: how a completion is started. */
static PieStatus launch_completion(PieClient *client, const char *prompt, PieInstance **instance,
                                   PieError **err) {
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    char input[1200];
    openai_input(prompt, input, sizeof input);
    return pie_client_launch_process(client, "compat-openai", input, false, instance, err);
  }
  const char *args[] = {"--prompt", prompt};
  return pie_client_launch_instance_from_registry(client, "text-completion", args, 2, false,
                                                  instance, err);
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  const char *prompt = argc > 2 ? argv[2] : "What is the best pie?";
  const char *user = getenv("PIE_USER") ? getenv("PIE_USER") : "quickstart";
  const char *key_path = getenv("PIE_KEY");

  PieClient *client = NULL;
  PieKey *key = NULL;
  PieInstance *instance = NULL;
  PieError *err = NULL; /* must be NULL before each call: written only on failure */
  int rc = 1;

  if (pie_client_connect(url, NULL, &client, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  if (key_path && pie_key_load_file(key_path, NULL, &key, &err) != PIE_STATUS_OK) {
    rc = report("loading the key", err);
    goto out;
  }
  /* With key == NULL this works against servers that have authentication disabled. */
  if (pie_client_authenticate(client, user, key, &err) != PIE_STATUS_OK) {
    rc = report("authenticate", err);
    goto out;
  }

  if (launch_completion(client, prompt, &instance, &err) != PIE_STATUS_OK) {
    rc = report("launch", err);
    goto out;
  }
  fprintf(stderr, "launched instance %s\n", pie_instance_id(instance));

  int chunks = 0;
  for (;;) {
    PieEvent *event = NULL;
    if (pie_instance_recv(instance, -1, &event, &err) != PIE_STATUS_OK) {
      rc = report("recv", err);
      goto out;
    }
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    PieEventKind kind = pie_event_kind(event);
    if (kind == PIE_EVENT_KIND_STDOUT) {
      fwrite(text, 1, len, stdout);
      fflush(stdout); /* show tokens as they arrive */
    } else if (kind == PIE_EVENT_KIND_MESSAGE) {
      char chunk[1024]; /* one compat-openai chunk: print its text */
      fwrite(chunk, 1, openai_chunk_text(text, chunk, sizeof chunk), stdout);
      fflush(stdout);
      chunks++;
    } else if (kind == PIE_EVENT_KIND_COMPLETED) {
      if (chunks > 0) puts(""); /* compat-openai's text has no final newline */
      fflush(stdout);
      fprintf(stderr, "completed: %s\n", text);
      pie_event_free(event);
      rc = 0;
      break;
    } else if (pie_event_is_terminal(event)) {
      fprintf(stderr, "quickstart: the instance ended (event kind %d): %s\n", (int)kind,
              text ? text : "");
      pie_event_free(event);
      break;
    }
    pie_event_free(event);
  }

out:
  /* Any order works: objects keep what they depend on alive; freeing NULL is a no-op. */
  pie_instance_free(instance);
  pie_key_free(key);
  pie_client_free(client);
  return rc;
}
