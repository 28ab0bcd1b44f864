/* The process-wide log callback: records for connection, auth, upload, launch and the end of a
 * connection arrive with their level and target; the level filter holds; replacing and
 * removing the callback runs each drop(user_data) exactly once; bad levels are refused without
 * taking anything. */
#include <pthread.h>

#include "pie_test.h"

#define MAX_RECORDS 512

typedef struct {
  pthread_mutex_t lock;
  int count;
  PieLogLevel level[MAX_RECORDS];
  char target[MAX_RECORDS][32];
  char message[MAX_RECORDS][256];
  int most_verbose; /* highest level value seen */
  int drops;
} Recorder;

static void on_log(void *user_data, PieLogLevel level, const char *target, const char *message) {
  Recorder *r = user_data;
  pthread_mutex_lock(&r->lock);
  if (r->count < MAX_RECORDS) {
    r->level[r->count] = level;
    snprintf(r->target[r->count], sizeof r->target[0], "%s", target);
    snprintf(r->message[r->count], sizeof r->message[0], "%s", message);
    r->count++;
  }
  if ((int)level > r->most_verbose) r->most_verbose = (int)level;
  pthread_mutex_unlock(&r->lock);
}

static void on_drop(void *user_data) {
  Recorder *r = user_data;
  pthread_mutex_lock(&r->lock);
  r->drops++;
  pthread_mutex_unlock(&r->lock);
}

static void recorder_init(Recorder *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->lock, NULL);
}

/* Whether a record of `level` with this target and a message containing `needle` arrived. */
static bool has(Recorder *r, PieLogLevel level, const char *target, const char *needle) {
  bool found = false;
  pthread_mutex_lock(&r->lock);
  for (int i = 0; i < r->count && !found; i++)
    found = r->level[i] == level && strcmp(r->target[i], target) == 0 &&
            strstr(r->message[i], needle) != NULL;
  pthread_mutex_unlock(&r->lock);
  if (!found) {
    fprintf(stderr, "no record (%d, %s, *%s*) among %d:\n", (int)level, target, needle, r->count);
    for (int i = 0; i < r->count; i++)
      fprintf(stderr, "  %d %s %s\n", (int)r->level[i], r->target[i], r->message[i]);
  }
  return found;
}

static int drops(Recorder *r) {
  pthread_mutex_lock(&r->lock);
  int d = r->drops;
  pthread_mutex_unlock(&r->lock);
  return d;
}

static int count(Recorder *r) {
  pthread_mutex_lock(&r->lock);
  int n = r->count;
  pthread_mutex_unlock(&r->lock);
  return n;
}

static int most_verbose(Recorder *r) {
  pthread_mutex_lock(&r->lock);
  int v = r->most_verbose;
  pthread_mutex_unlock(&r->lock);
  return v;
}

int main(void) {
  static Recorder first, second;
  recorder_init(&first);
  recorder_init(&second);

  /* Levels out of range are refused; nothing is taken (drop is not called). */
  EXPECT_MSG(PIE_STATUS_INVALID_ARGUMENT, "level", pie_set_log_callback(6, on_log, &first, on_drop, &err));
  EXPECT(PIE_STATUS_INVALID_ARGUMENT, pie_set_log_callback(-1, on_log, &first, on_drop, NULL));
  CHECK(drops(&first) == 0);

  /* Debug: the whole story of a session. */
  EXPECT(PIE_STATUS_OK, pie_set_log_callback(PIE_LOG_LEVEL_DEBUG, on_log, &first, on_drop, &err));
  PieClient *c = connect_default();
  CHECK(has(&first, PIE_LOG_LEVEL_INFO, "pie::connection", "connected to"));
  CHECK(has(&first, PIE_LOG_LEVEL_INFO, "pie::auth", "'tester'"));
  PieInstance *inst = launch(c, "kinds.wasm", NULL, 0);
  CHECK(has(&first, PIE_LOG_LEVEL_INFO, "pie::upload", "uploaded program"));
  CHECK(has(&first, PIE_LOG_LEVEL_INFO, "pie::launch", pie_instance_id(inst)));
  for (;;) {
    PieEvent *ev = NULL;
    EXPECT(PIE_STATUS_OK, pie_instance_recv(inst, 10000, &ev, &err));
    bool done = pie_event_is_terminal(ev);
    pie_event_free(ev);
    if (done) break;
  }
  CHECK(has(&first, PIE_LOG_LEVEL_DEBUG, "pie::launch", "terminal event"));
  pie_instance_free(inst);
  /* Why a connection ended: logged before pie_client_close returns. */
  EXPECT(PIE_STATUS_OK, pie_client_close(c, &err));
  CHECK(has(&first, PIE_LOG_LEVEL_INFO, "pie::connection", "connection ended: the client was closed"));
  pie_client_free(c);

  /* A refused identification (the authenticating server without a key). */
  PieClient *a = NULL;
  EXPECT(PIE_STATUS_OK, pie_client_connect(env_or_die("PIE_TEST_AUTH_URL"), NULL, &a, &err));
  EXPECT(PIE_STATUS_AUTH, pie_client_authenticate(a, env_or_die("PIE_TEST_USER"), NULL, &err));
  CHECK(has(&first, PIE_LOG_LEVEL_WARN, "pie::auth", "no key was given"));
  pie_client_free(a);

  /* Replacing the callback drops the first one's user_data once; the level filter holds. */
  CHECK(drops(&first) == 0);
  EXPECT(PIE_STATUS_OK, pie_set_log_callback(PIE_LOG_LEVEL_WARN, on_log, &second, on_drop, &err));
  CHECK(drops(&first) == 1);
  c = connect_default();
  EXPECT(PIE_STATUS_OK, pie_client_ping(c, &err));
  pie_client_free(c);
  PieClient *none = NULL;
  EXPECT(PIE_STATUS_CONNECTION_FAILED, pie_client_connect("ws://127.0.0.1:1", NULL, &none, &err));
  CHECK(has(&second, PIE_LOG_LEVEL_WARN, "pie::connection", "cannot connect to ws://127.0.0.1:1"));
  CHECK(most_verbose(&second) <= (int)PIE_LOG_LEVEL_WARN);

  /* Removing it (NULL callback) drops the second user_data once; nothing arrives after. */
  EXPECT(PIE_STATUS_OK, pie_set_log_callback(PIE_LOG_LEVEL_TRACE, NULL, NULL, NULL, &err));
  CHECK(drops(&second) == 1);
  int before = count(&second);
  EXPECT(PIE_STATUS_CONNECTION_FAILED, pie_client_connect("ws://127.0.0.1:1", NULL, &none, &err));
  CHECK(count(&second) == before);
  CHECK(drops(&first) == 1 && drops(&second) == 1);
  return pt_done("test_log");
}
