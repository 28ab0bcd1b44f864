/* Detached instances: one client launches an instance detached and goes away; a second client
 * finds it with list_instances, attaches and receives what the server gives it, then the
 * terminal event. On the January-2026 server: `text-completion`, attached once it has finished
 * (the server replays the output it kept). On a Pie 0.5 server: the repository's
 * tests/inferlets05/sleeper.py, attached while it runs (0.5 keeps no output of detached
 * processes and forgets finished ones), which then completes.
 *
 *   detached [URL]
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pie05_helpers.h"
#include "pie.h"

static int report(const char *what, PieError *err) {
  fprintf(stderr, "detached: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

static const char *status_name(PieInstanceStatus s) {
  switch (s) {
    case PIE_INSTANCE_STATUS_ATTACHED: return "attached";
    case PIE_INSTANCE_STATUS_DETACHED: return "detached";
    case PIE_INSTANCE_STATUS_FINISHED: return "finished";
  }
  return "?";
}

static PieClient *connect_as(const char *url, const char *user, int *rc) {
  PieClient *client = NULL;
  PieError *err = NULL;
  if (pie_client_connect(url, NULL, &client, &err) != PIE_STATUS_OK) {
    *rc = report("connect", err);
    return NULL;
  }
  if (pie_client_authenticate(client, user, NULL, &err) != PIE_STATUS_OK) {
    *rc = report("authenticate", err);
    pie_client_free(client);
    return NULL;
  }
  return client;
}

/* The one place the two servers differ: what is launched detached, and in which listed state
 * the second client attaches to it. */
static PieStatus launch_detached(PieClient *client, PieInstance **launched,
                                 PieInstanceStatus *attach_when, PieError **err) {
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    *attach_when = PIE_INSTANCE_STATUS_DETACHED;
    if (install_inferlet05(client, "sleeper") != 0) return PIE_STATUS_INVALID_ARGUMENT;
    return pie_client_launch_process(client, "sleeper", "{\"seconds\": 3.0}", true, launched,
                                     err);
  }
  *attach_when = PIE_INSTANCE_STATUS_FINISHED;
  const char *args[] = {"--prompt", "a detached story"};
  return pie_client_launch_instance_from_registry(client, "text-completion", args, 2, true,
                                                  launched, err);
}

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : "ws://127.0.0.1:8080";
  PieClient *first = NULL, *second = NULL;
  PieInstance *launched = NULL, *attached = NULL;
  PieInstanceList *list = NULL;
  PieError *err = NULL;
  int rc = 1;
  char id[64];

  /* 1. Launch detached: the instance runs without sending anything to this connection. */
  if (!(first = connect_as(url, "detached-example", &rc))) goto out;
  PieInstanceStatus attach_when;
  PieStatus launch = launch_detached(first, &launched, &attach_when, &err);
  if (launch != PIE_STATUS_OK) {
    if (err) rc = report("launch", err); /* else install_inferlet05 said what failed */
    goto out;
  }
  snprintf(id, sizeof id, "%s", pie_instance_id(launched));
  printf("launched %s detached=%d\n", id, (int)pie_instance_is_detached(launched));
  /* A detached handle cannot receive: the library says so instead of blocking. */
  PieEvent *none = NULL;
  PieStatus s = pie_instance_recv(launched, 0, &none, NULL);
  printf("recv on the detached handle: %s\n", pie_status_name((int32_t)s));
  pie_instance_free(launched);
  launched = NULL;
  pie_client_free(first);
  first = NULL;

  /* 2. A second client lists the instances until ours can be attached (bounded wait). */
  if (!(second = connect_as(url, "detached-example", &rc))) goto out;
  PieInstanceStatus status = PIE_INSTANCE_STATUS_ATTACHED;
  for (int attempt = 0; attempt < 500 && status != attach_when; attempt++) {
    pie_instance_list_free(list);
    list = NULL;
    if (pie_client_list_instances(second, &list, &err) != PIE_STATUS_OK) {
      rc = report("list_instances", err);
      goto out;
    }
    bool found = false;
    for (size_t i = 0; i < pie_instance_list_len(list); i++) {
      if (strcmp(pie_instance_list_id(list, i), id) != 0) continue;
      found = true;
      if (pie_instance_list_status(list, i, &status, &err) != PIE_STATUS_OK) {
        rc = report("list status", err);
        goto out;
      }
      size_t nargs = 0;
      pie_instance_list_argument_count(list, i, &nargs, NULL);
      if (attempt == 0 || status == attach_when)
        printf("listed %s: %s, %zu arguments, launched by %s\n", id, status_name(status), nargs,
               pie_instance_list_username(list, i));
    }
    if (!found) {
      fprintf(stderr, "detached: instance %s is not listed\n", id);
      goto out;
    }
    if (status != attach_when) {
      struct timespec pause = {0, 10 * 1000 * 1000};
      nanosleep(&pause, NULL);
    }
  }
  if (status != attach_when) {
    fprintf(stderr, "detached: the instance was not ready in time\n");
    goto out;
  }

  /* 3. Attach: the output the server gives (January: replayed), then the terminal event. */
  if (pie_client_attach_instance(second, id, &attached, &err) != PIE_STATUS_OK) {
    rc = report("attach", err);
    goto out;
  }
  printf("replayed output: ");
  for (;;) {
    PieEvent *event = NULL;
    if (pie_instance_recv(attached, 60000, &event, &err) != PIE_STATUS_OK) {
      rc = report("recv", err);
      goto out;
    }
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    if (pie_event_kind(event) == PIE_EVENT_KIND_STDOUT) fwrite(text, 1, len, stdout);
    if (pie_event_kind(event) == PIE_EVENT_KIND_COMPLETED) {
      printf("completed: %s\n", text);
      rc = 0;
    }
    bool last = pie_event_is_terminal(event);
    pie_event_free(event);
    if (last) break;
  }

out:
  pie_instance_list_free(list);
  pie_instance_free(launched);
  pie_instance_free(attached);
  pie_client_free(first);
  pie_client_free(second);
  return rc;
}
