/* The wake-up descriptor with poll(2): readable while a polling instance has something,
 * unreadable once drained, untouched by callback-mode instances, readable at a stream's end. */

#include "pie_test.h"

#include <poll.h>
#include <stdatomic.h>

static int readable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, timeout_ms);
  CHECK(n >= 0);
  return n == 1 && (p.revents & POLLIN);
}

/* Drains one instance as the header tells hosts to; returns events received. */
static int drain(PieInstance *inst, PieStatus *last) {
  int n = 0;
  for (;;) {
    PieEvent *ev = NULL;
    PieStatus s = pie_instance_recv(inst, 0, &ev, NULL);
    if (s != PIE_STATUS_OK) {
      *last = s;
      return n;
    }
    pie_event_free(ev);
    n++;
  }
}

static atomic_int cb_events, cb_drops;
static void on_event(void *ud, PieStatus st, const PieEvent *ev) {
  (void)ud;
  (void)st;
  if (ev) atomic_fetch_add(&cb_events, 1);
}
static void on_drop(void *ud) {
  (void)ud;
  atomic_fetch_add(&cb_drops, 1);
}

int main(void) {
  PieClient *c = connect_default();
  int fd = -1, fd2 = -2;
  EXPECT(PIE_STATUS_OK, pie_client_event_fd(c, &fd, &err));
  EXPECT(PIE_STATUS_OK, pie_client_event_fd(c, &fd2, &err));
  CHECK(fd >= 0 && fd == fd2);
  CHECK(!readable(fd, 0));

  /* One instance: wake, drain, quiet. */
  PieInstance *a = launch(c, "kinds.wasm", NULL, 0);
  int got = 0;
  PieStatus last = PIE_STATUS_OK;
  for (int i = 0; i < 100 && last != PIE_STATUS_STREAM_ENDED; i++) {
    CHECK(readable(fd, 5000));
    got += drain(a, &last);
  }
  CHECK(got == 5 && last == PIE_STATUS_STREAM_ENDED);
  CHECK(!readable(fd, 0));
  pie_instance_free(a);

  /* A callback-mode instance never wakes the fd. */
  PieInstance *cb = launch(c, "ticker.wasm", NULL, 0);
  EXPECT(PIE_STATUS_OK, pie_instance_set_callback(cb, on_event, NULL, on_drop, &err));
  for (int i = 0; i < 500 && atomic_load(&cb_events) < 3; i++) sleep_ms(10);
  CHECK(atomic_load(&cb_events) >= 3);
  CHECK(!readable(fd, 50));

  /* Two polling instances; a host loop multiplexes them through the one fd. */
  PieInstance *x = launch(c, "forever.wasm", NULL, 0);
  PieInstance *y = launch(c, "forever.wasm", NULL, 0);
  int started = 0;
  for (int i = 0; i < 100 && started < 2; i++) {
    CHECK(readable(fd, 5000));
    started += drain(x, &last);
    CHECK(last == PIE_STATUS_TIMEOUT);
    started += drain(y, &last);
    CHECK(last == PIE_STATUS_TIMEOUT);
  }
  CHECK(started == 2);
  CHECK(!readable(fd, 0));

  /* Terminating one: its ABORTED wakes the fd. */
  EXPECT(PIE_STATUS_OK, pie_instance_terminate(x, &err));
  CHECK(readable(fd, 5000));
  CHECK(drain(x, &last) == 1 && last == PIE_STATUS_STREAM_ENDED);
  CHECK(drain(y, &last) == 0 && last == PIE_STATUS_TIMEOUT);
  CHECK(!readable(fd, 0));

  /* Closing ends y's stream: readable until y reports CLIENT_CLOSED. */
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  CHECK(readable(fd, 5000));
  CHECK(drain(y, &last) == 0 && last == PIE_STATUS_CLIENT_CLOSED);
  /* x had already reported its end: the close does not wake the fd for it again. */
  CHECK(!readable(fd, 0));
  for (int i = 0; i < 500 && atomic_load(&cb_drops) < 1; i++) sleep_ms(10);
  CHECK(atomic_load(&cb_drops) == 1);
  pie_instance_free(x);
  pie_instance_free(y);
  pie_instance_free(cb);
  pie_client_free(c);
  return pt_done("test_fd");
}
