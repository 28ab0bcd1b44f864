/* Chat with an inferlet: send each message (argv[2..], or a few defaults), print the reply, then
 * say goodbye and wait for the instance to complete. On the January-2026 server the inferlet is
 * `chat` from the registry (goodbye: "bye"); on a Pie 0.5 server it is the repository's
 * tests/inferlets05/chat_echo.py, installed first (goodbye: "quit").
 *
 *   chat [URL] [MESSAGE...]
 */
#include <stdio.h>
#include <stdlib.h>

#include "pie05_helpers.h"
#include "pie.h"

static int report(const char *what, PieError *err) {
  fprintf(stderr, "chat: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

/* Waits (up to 60 s: a Pie 0.5 server compiles a python inferlet at its first launch) for the
 * next event and checks its kind. Returns the event or NULL. */
static PieEvent *expect_event(PieInstance *instance, PieEventKind want, int *rc) {
  PieEvent *event = NULL;
  PieError *err = NULL;
  if (pie_instance_recv(instance, 60000, &event, &err) != PIE_STATUS_OK) {
    *rc = report("recv", err);
    return NULL;
  }
  if (pie_event_kind(event) != want) {
    const char *text = pie_event_text(event, NULL);
    fprintf(stderr, "chat: unexpected event kind %d: %s\n", (int)pie_event_kind(event),
            text ? text : "");
    pie_event_free(event);
    *rc = 1;
    return NULL;
  }
  return event;
}

/* The one place the two servers differ: which inferlet to chat with and how to say goodbye.
 * Returns the goodbye word, or NULL after reporting the failure in *rc. */
static const char *start_chat(PieClient *client, PieInstance **chat, int *rc) {
  PieError *err = NULL;
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    if (install_inferlet05(client, "chat_echo") != 0) return NULL;
    if (pie_client_launch_process(client, "chat-echo", "{}", false, chat, &err) != PIE_STATUS_OK) {
      *rc = report("launch", err);
      return NULL;
    }
    /* chat-echo says its greeting ("ready") first. */
    PieEvent *greeting = expect_event(*chat, PIE_EVENT_KIND_MESSAGE, rc);
    if (!greeting) return NULL;
    pie_event_free(greeting);
    return "quit";
  }
  if (pie_client_launch_instance_from_registry(client, "chat", NULL, 0, false, chat, &err) !=
      PIE_STATUS_OK) {
    *rc = report("launch", err);
    return NULL;
  }
  return "bye";
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  static const char *defaults[] = {"hello", "how are you?", "tell me about pie"};
  const char *const *messages = argc > 2 ? (const char *const *)argv + 2 : defaults;
  int count = argc > 2 ? argc - 2 : 3;

  PieClient *client = NULL;
  PieInstance *chat = NULL;
  PieError *err = NULL;
  int rc = 1;

  if (pie_client_connect(url, NULL, &client, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  if (pie_client_authenticate(client, "chat-example", NULL, &err) != PIE_STATUS_OK) {
    rc = report("authenticate", err);
    goto out;
  }
  const char *goodbye = start_chat(client, &chat, &rc);
  if (!goodbye) goto out;

  for (int i = 0; i < count; i++) {
    printf("> %s\n", messages[i]);
    if (pie_instance_send(chat, messages[i], &err) != PIE_STATUS_OK) {
      rc = report("send", err);
      goto out;
    }
    PieEvent *reply = expect_event(chat, PIE_EVENT_KIND_MESSAGE, &rc);
    if (!reply) goto out;
    printf("< %s\n", pie_event_text(reply, NULL));
    pie_event_free(reply);
  }

  if (pie_instance_send(chat, goodbye, &err) != PIE_STATUS_OK) {
    rc = report("send", err);
    goto out;
  }
  PieEvent *done = expect_event(chat, PIE_EVENT_KIND_COMPLETED, &rc);
  if (!done) goto out;
  printf("chat completed: %s\n", pie_event_text(done, NULL));
  pie_event_free(done);
  rc = 0;

out:
  pie_instance_free(chat);
  pie_client_free(client);
  return rc;
}
