/* A game-loop style host: nothing blocks. Every "frame" waits at most 16 ms in poll(2) on
 * libpie's event fd, advances the pending _async operations with pie_op_poll, and drains the
 * instances with pie_instance_recv(instance, 0, ...). Two completions run side by side: on the
 * January-2026 server `text-completion` from the registry (stdout events), on a Pie 0.5 server
 * the built-in `compat-openai` (one `message` event per chunk).
 *
 *   event_loop [URL]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie05_helpers.h"
#include "pie.h"

#define STREAMS 2
#define MAX_FRAMES 18000 /* about 5 min at 60 frames per second (a CPU-only server is slow) */

static int report_op(const char *what, PieOp *op) {
  PieError *err = NULL;
  pie_op_error(op, &err);
  fprintf(stderr, "event_loop: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

static int report(const char *what, PieError *err) {
  fprintf(stderr, "event_loop: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

struct stream {
  const char *prompt;
  PieOp *launch;        /* pending launch, then NULL */
  PieInstance *instance;
  char text[4096];      /* what the instance wrote so far */
  size_t len;
  bool done;
};

/* Takes every queued event of one instance without waiting. Returns -1 on failure. */
static int drain(struct stream *s) {
  for (;;) {
    PieEvent *event = NULL;
    PieError *err = NULL;
    PieStatus status = pie_instance_recv(s->instance, 0, &event, &err);
    if (status == PIE_STATUS_TIMEOUT || status == PIE_STATUS_STREAM_ENDED) {
      pie_error_free(err); /* "nothing left for now" / "over" are reported as errors too */
      return 0;
    }
    if (status != PIE_STATUS_OK) {
      report("recv", err);
      return -1;
    }
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    PieEventKind kind = pie_event_kind(event);
    if (kind == PIE_EVENT_KIND_STDOUT && s->len + len < sizeof s->text) {
      memcpy(s->text + s->len, text, len);
      s->len += len;
    }
    if (kind == PIE_EVENT_KIND_MESSAGE) /* a compat-openai chunk */
      s->len += openai_chunk_text(text, s->text + s->len, sizeof s->text - s->len);
    if (pie_event_is_terminal(event)) {
      s->done = true;
      if (s->len > 0 && s->text[s->len - 1] != '\n' && s->len + 1 < sizeof s->text)
        s->text[s->len++] = '\n'; /* compat-openai's text has no final newline */
      if (kind != PIE_EVENT_KIND_COMPLETED) {
        fprintf(stderr, "event_loop: instance ended: %s\n", text);
        pie_event_free(event);
        return -1;
      }
    }
    pie_event_free(event);
  }
}

/* The one place the two servers differ: how a completion is started. */
static PieStatus launch_completion(PieClient *client, const char *prompt, PieOp **launch,
                                   PieError **err) {
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    char input[1200];
    openai_input(prompt, input, sizeof input);
    return pie_client_launch_process_async(client, "compat-openai", input, false, launch, err);
  }
  const char *args[] = {"--prompt", prompt, "--delay-ms", "5"};
  return pie_client_launch_instance_from_registry_async(client, "text-completion", args, 4,
                                                         false, launch, err);
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  struct stream streams[STREAMS] = {{.prompt = "first prompt"}, {.prompt = "second prompt"}};
  PieClient *client = NULL;
  PieOp *op = NULL;
  PieError *err = NULL;
  int rc = 1;
  int frames = 0;

  /* Connecting and authenticating, without blocking the loop either. */
  if (pie_client_connect_async(url, NULL, &op, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  while (pie_op_poll(op, NULL) == PIE_STATUS_PENDING && frames < MAX_FRAMES) {
    poll(NULL, 0, 16); /* render a frame here */
    frames++;
  }
  if (pie_op_take_client(op, &client, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  pie_op_free(op);
  op = NULL;
  if (pie_client_authenticate_async(client, "event-loop-example", NULL, &op, &err) !=
      PIE_STATUS_OK) {
    rc = report("authenticate", err);
    goto out;
  }
  while (pie_op_poll(op, NULL) == PIE_STATUS_PENDING && frames < MAX_FRAMES) {
    poll(NULL, 0, 16);
    frames++;
  }
  if (pie_op_poll(op, NULL) != PIE_STATUS_OK) {
    rc = report_op("authenticate", op);
    goto out;
  }
  pie_op_free(op);
  op = NULL;

  int fd = -1;
  if (pie_client_event_fd(client, &fd, &err) != PIE_STATUS_OK) {
    rc = report("event_fd", err);
    goto out;
  }
  for (int i = 0; i < STREAMS; i++) {
    if (launch_completion(client, streams[i].prompt, &streams[i].launch, &err) != PIE_STATUS_OK) {
      rc = report("launch", err);
      goto out;
    }
  }

  int finished = 0;
  int woken = 0;
  for (; finished < STREAMS && frames < MAX_FRAMES; frames++) {
    struct pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, 16);
    if (ready > 0) woken++;
    finished = 0;
    for (int i = 0; i < STREAMS; i++) {
      struct stream *s = &streams[i];
      if (s->launch && pie_op_poll(s->launch, NULL) != PIE_STATUS_PENDING) {
        if (pie_op_take_instance(s->launch, &s->instance, &err) != PIE_STATUS_OK) {
          rc = report("launch", err);
          goto out;
        }
        pie_op_free(s->launch);
        s->launch = NULL;
      }
      if (s->instance && !s->done && drain(s) < 0) goto out;
      finished += s->done;
    }
  }
  if (finished < STREAMS) {
    fprintf(stderr, "event_loop: gave up after %d frames\n", frames);
    goto out;
  }
  for (int i = 0; i < STREAMS; i++)
    printf("[%s] %.*s", streams[i].prompt, (int)streams[i].len, streams[i].text);
  printf("done in %d frames (%d woken by the event fd)\n", frames, woken);
  rc = 0;

out:
  for (int i = 0; i < STREAMS; i++) {
    pie_op_free(streams[i].launch); /* cancels a launch still pending */
    pie_instance_free(streams[i].instance);
  }
  pie_op_free(op);
  pie_client_free(client);
  return rc;
}
