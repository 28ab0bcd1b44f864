/* Event delivery by callback: events of an echo inferlet (January-2026 server: `echo` from the
 * registry; Pie 0.5: the repository's tests/inferlets05/echo_args.py) arrive on the client's
 * callback thread, followed by a final call (event == NULL) saying why the stream ended and by the
 * drop callback; a connection callback reports the end of the connection. The main thread only
 * waits on a condition variable.
 *
 *   callbacks [URL] [WORD...]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "pie05_helpers.h"
#include "pie.h"

static int report(const char *what, PieError *err) {
  fprintf(stderr, "callbacks: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

/* State shared between the main thread and the callback thread. */
struct state {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int events;
  bool completed;
  bool stream_over; /* the final call (event == NULL) happened */
  bool dropped;     /* drop(user_data) ran: no further call will come */
  PieStatus end_status;
  bool connection_ended;
};

static void on_event(void *user_data, PieStatus status, const PieEvent *event) {
  struct state *st = user_data;
  pthread_mutex_lock(&st->lock);
  if (event) {
    /* `event` is borrowed: copy what you need, never free it. */
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    switch (pie_event_kind(event)) {
      case PIE_EVENT_KIND_STDOUT: printf("stdout: %.*s", (int)len, text); break;
      case PIE_EVENT_KIND_STDERR: printf("stderr: %.*s", (int)len, text); break;
      case PIE_EVENT_KIND_MESSAGE: printf("message: %s\n", text); break;
      case PIE_EVENT_KIND_COMPLETED:
        printf("completed: %s\n", text);
        st->completed = true;
        break;
      default: printf("event kind %d: %s\n", (int)pie_event_kind(event), text ? text : ""); break;
    }
    st->events++;
  } else {
    printf("stream ended: %s\n", pie_status_name((int32_t)status));
    st->stream_over = true;
    st->end_status = status;
  }
  fflush(stdout);
  pthread_cond_broadcast(&st->changed);
  pthread_mutex_unlock(&st->lock);
}

static void on_drop(void *user_data) {
  struct state *st = user_data;
  pthread_mutex_lock(&st->lock);
  st->dropped = true;
  pthread_cond_broadcast(&st->changed);
  pthread_mutex_unlock(&st->lock);
}

static void on_connection_end(void *user_data, PieStatus status, const char *message) {
  struct state *st = user_data;
  pthread_mutex_lock(&st->lock);
  printf("connection ended: %s (%s)\n", pie_status_name((int32_t)status), message);
  fflush(stdout);
  st->connection_ended = true;
  pthread_cond_broadcast(&st->changed);
  pthread_mutex_unlock(&st->lock);
}

/* The one place the two servers differ: how the echo inferlet is launched with the words. */
static PieStatus launch_echo(PieClient *client, const char *const *words, size_t nwords,
                             PieInstance **instance, PieError **err) {
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    char input[2048] = "{\"words\": [", quoted[256];
    for (size_t i = 0; i < nwords; i++) {
      json_string(words[i], quoted, sizeof quoted);
      snprintf(input + strlen(input), sizeof input - strlen(input), "%s%s", i ? ", " : "", quoted);
    }
    snprintf(input + strlen(input), sizeof input - strlen(input), "]}");
    if (install_inferlet05(client, "echo_args") != 0) return PIE_STATUS_INVALID_ARGUMENT;
    return pie_client_launch_process(client, "echo-args", input, false, instance, err);
  }
  return pie_client_launch_instance_from_registry(client, "echo", words, nwords, false, instance,
                                                  err);
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  static const char *defaults[] = {"apple", "cherry"};
  const char *const *words = argc > 2 ? (const char *const *)argv + 2 : defaults;
  size_t nwords = argc > 2 ? (size_t)(argc - 2) : 2;

  static struct state st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false,
                            false, false, PIE_STATUS_OK, false};
  PieClient *client = NULL;
  PieInstance *instance = NULL;
  PieError *err = NULL;
  int rc = 1;

  if (pie_client_connect(url, NULL, &client, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  /* No drop callback needed: `st` is static. */
  if (pie_client_set_connection_callback(client, on_connection_end, &st, NULL, &err) !=
      PIE_STATUS_OK) {
    rc = report("set_connection_callback", err);
    goto out;
  }
  if (pie_client_authenticate(client, "callbacks-example", NULL, &err) != PIE_STATUS_OK) {
    rc = report("authenticate", err);
    goto out;
  }
  if (launch_echo(client, words, nwords, &instance, &err) != PIE_STATUS_OK) {
    if (err) rc = report("launch", err); /* else install_inferlet05 said what failed */
    goto out;
  }
  /* Events already queued before this call are delivered too: nothing is lost. */
  if (pie_instance_set_callback(instance, on_event, &st, on_drop, &err) != PIE_STATUS_OK) {
    rc = report("set_callback", err);
    goto out;
  }

  pthread_mutex_lock(&st.lock);
  while (!st.dropped) pthread_cond_wait(&st.changed, &st.lock);
  bool ok = st.completed && st.stream_over && st.end_status == PIE_STATUS_STREAM_ENDED;
  printf("%d events\n", st.events);
  pthread_mutex_unlock(&st.lock);

  /* Closing ends the connection: the connection callback is called with CLIENT_CLOSED. */
  if (pie_client_close(client, &err) != PIE_STATUS_OK) {
    rc = report("close", err);
    goto out;
  }
  pthread_mutex_lock(&st.lock);
  while (!st.connection_ended) pthread_cond_wait(&st.changed, &st.lock);
  pthread_mutex_unlock(&st.lock);
  rc = ok ? 0 : 1;

out:
  pie_instance_free(instance);
  /* Waits until the callbacks already queued for this client have run. */
  pie_client_free(client);
  return rc;
}
