/* libpie quick start: the C counterpart of the Pie client's Quick Start.
 *
 * Connects to a Pie server (argv[1], default ws://127.0.0.1:8080), authenticates, launches the
 * `text-completion` inferlet from the registry and prints its output as it streams, until the
 * instance completes. Exits non-zero with the error message on any failure.
 *
 *   PIE_USER  user name (default "quickstart")
 *   PIE_KEY   path of the user's SSH private key (omit when the server has auth disabled)
 *   argv[2]   the prompt (optional)
 */
#include <stdio.h>
#include <stdlib.h>

#include "pie.h"

/* Prints what failed and why, frees the error, and returns the exit status to use. */
static int report(const char *what, PieError *err) {
  fprintf(stderr, "quickstart: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
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

  const char *args[] = {"--prompt", prompt};
  if (pie_client_launch_instance_from_registry(client, "text-completion", args, 2, false,
                                               &instance, &err) != PIE_STATUS_OK) {
    rc = report("launch", err);
    goto out;
  }
  fprintf(stderr, "launched instance %s\n", pie_instance_id(instance));

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
    } else if (kind == PIE_EVENT_KIND_COMPLETED) {
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
