/* Uploads a custom program and runs it.
 *
 *   upload URL PROGRAM_FILE [ARG...]
 *
 * PROGRAM_FILE is a WebAssembly component, e.g. one made by the simulator:
 *   pie-sim make-program 'stdout hello $1\n' 'complete done' > hello.wasm
 * The program is hashed locally (pie_hash_blob), uploaded only if the server does not have it
 * yet (with a progress callback), then launched by hash with the remaining arguments; its
 * output is printed until it ends. Exits 0 if the program completed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie.h"

static int report(const char *what, PieError *err) {
  fprintf(stderr, "upload: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

/* Reads a whole file into a malloc'ed buffer. */
static uint8_t *read_file(const char *path, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *data = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      uint8_t *bigger = realloc(data, cap);
      if (!bigger) {
        free(data);
        fclose(f);
        return NULL;
      }
      data = bigger;
    }
    size_t n = fread(data + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    free(data);
    return NULL;
  }
  *out_len = len;
  return data;
}

/* Called on a libpie runtime thread: keep it quick, no blocking libpie calls here. */
static void on_progress(void *user_data, uint64_t sent, uint64_t total) {
  const char *name = user_data;
  printf("uploading %s: %llu/%llu bytes\n", name, (unsigned long long)sent,
         (unsigned long long)total);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: upload URL PROGRAM_FILE [ARG...]\n");
    return 2;
  }
  const char *url = argv[1];
  const char *path = argv[2];

  PieClient *client = NULL;
  PieInstance *instance = NULL;
  PieError *err = NULL;
  int rc = 1;
  size_t len = 0;
  uint8_t *program = read_file(path, &len);
  if (!program) {
    perror(path);
    return 1;
  }

  char hash[PIE_HASH_BUFFER_SIZE];
  if (pie_hash_blob(program, len, hash, sizeof hash, NULL) != PIE_STATUS_OK) {
    fprintf(stderr, "upload: cannot hash the program\n");
    goto out;
  }
  printf("program %s: %zu bytes, hash %s\n", path, len, hash);

  if (pie_client_connect(url, NULL, &client, &err) != PIE_STATUS_OK) {
    rc = report("connect", err);
    goto out;
  }
  if (pie_client_authenticate(client, "upload-example", NULL, &err) != PIE_STATUS_OK) {
    rc = report("authenticate", err);
    goto out;
  }

  bool exists = false;
  if (pie_client_program_exists(client, hash, &exists, &err) != PIE_STATUS_OK) {
    rc = report("program_exists", err);
    goto out;
  }
  if (exists) {
    printf("the server already has it\n");
  } else {
    char uploaded[PIE_HASH_BUFFER_SIZE];
    if (pie_client_upload_program(client, program, len, on_progress, (void *)path, uploaded,
                                  &err) != PIE_STATUS_OK) {
      rc = report("upload", err);
      goto out;
    }
    if (strcmp(uploaded, hash) != 0) {
      fprintf(stderr, "upload: the server stored %s, expected %s\n", uploaded, hash);
      goto out;
    }
    printf("uploaded\n");
  }

  const char *const *args = (const char *const *)argv + 3;
  if (pie_client_launch_instance(client, hash, args, (size_t)(argc - 3), false, &instance,
                                 &err) != PIE_STATUS_OK) {
    rc = report("launch", err);
    goto out;
  }

  for (;;) {
    PieEvent *event = NULL;
    if (pie_instance_recv(instance, 30000, &event, &err) != PIE_STATUS_OK) {
      rc = report("recv", err);
      goto out;
    }
    size_t text_len = 0;
    const char *text = pie_event_text(event, &text_len);
    switch (pie_event_kind(event)) {
      case PIE_EVENT_KIND_STDOUT:
        fwrite(text, 1, text_len, stdout);
        break;
      case PIE_EVENT_KIND_STDERR:
        fwrite(text, 1, text_len, stderr);
        break;
      case PIE_EVENT_KIND_MESSAGE:
        printf("message: %s\n", text);
        break;
      case PIE_EVENT_KIND_BLOB: {
        size_t blob_len = 0;
        pie_event_blob(event, &blob_len);
        printf("blob: %zu bytes\n", blob_len);
        break;
      }
      case PIE_EVENT_KIND_COMPLETED:
        printf("completed: %s\n", text);
        rc = 0;
        break;
      default:
        if (pie_event_is_terminal(event)) fprintf(stderr, "upload: instance ended: %s\n", text);
        break;
    }
    bool last = pie_event_is_terminal(event);
    pie_event_free(event);
    if (last) break;
  }

out:
  pie_instance_free(instance);
  pie_client_free(client);
  free(program);
  return rc;
}
