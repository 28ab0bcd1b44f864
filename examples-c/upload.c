/* Uploads a custom program and runs it.
 *
 *   upload URL PROGRAM_FILE [ARG...]
 *
 * January-2026 server: PROGRAM_FILE is a WebAssembly component, e.g. one made by the simulator:
 *   pie-sim make-program 'stdout hello $1\n' 'complete done' > hello.wasm
 * The program is hashed locally (pie_hash_blob), uploaded only if the server does not have it
 * yet (with a progress callback), then launched by hash with the remaining arguments.
 *
 * Pie 0.5 server: PROGRAM_FILE is the artifact (e.g. tests/inferlets05/file_echo.py) and its
 * manifest is beside it with the extension .toml; it is installed (with a progress callback)
 * and launched by its manifest's name with ARG as JSON input (default {}).
 *
 * Then its output is printed until it ends; when the program asks "send me a file", it is sent
 * PROGRAM_FILE itself, and files it sends back are reported. Exits 0 if the program completed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie05_helpers.h"
#include "pie.h"

static int report(const char *what, PieError *err) {
  fprintf(stderr, "upload: %s failed: %s: %s\n", what,
          pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  pie_error_free(err);
  return 1;
}

/* Called on a libpie runtime thread: keep it quick, no blocking libpie calls here. */
static void on_progress(void *user_data, uint64_t sent, uint64_t total) {
  const char *name = user_data;
  printf("uploading %s: %llu/%llu bytes\n", name, (unsigned long long)sent,
         (unsigned long long)total);
  fflush(stdout);
}

/* Pie 0.5: the package name in a manifest's `name = "..."` line, into out[size]. */
static bool manifest_name(const char *manifest, char *out, size_t size) {
  const char *p = strstr(manifest, "\nname = \"");
  if (!p) return false;
  p += strlen("\nname = \"");
  size_t n = strcspn(p, "\"\n");
  if (p[n] != '"' || n >= size) return false;
  memcpy(out, p, n);
  out[n] = '\0';
  return true;
}

/* The one place the two servers differ: how a program gets onto the server and is launched.
 * Returns 0, or 1 after saying what failed. */
static int put_and_launch(PieClient *client, const char *path, const uint8_t *program,
                          size_t len, const char *hash, const char *const *args, size_t nargs,
                          PieInstance **instance) {
  PieError *err = NULL;
  char stored[PIE_HASH_BUFFER_SIZE];
  if (pie_client_protocol(client) == PIE_PROTOCOL_V05) {
    char manifest_path[1024], name[128];
    size_t manifest_len = 0;
    snprintf(manifest_path, sizeof manifest_path, "%.*s.toml",
             (int)(strrchr(path, '.') ? (size_t)(strrchr(path, '.') - path) : strlen(path)), path);
    char *manifest = read_whole_file(manifest_path, &manifest_len);
    bool named = manifest && manifest_name(manifest, name, sizeof name);
    PieStatus s = PIE_STATUS_INVALID_ARGUMENT;
    if (!named)
      fprintf(stderr, "upload: no manifest with a name at %s\n", manifest_path);
    else
      s = pie_client_install_program(client, program, len, manifest, true, on_progress,
                                     (void *)path, stored, &err);
    free(manifest);
    if (!named) return 1;
    if (s != PIE_STATUS_OK) return report("install", err);
    printf("installed %s\n", name);
    if (pie_client_launch_process(client, name, nargs ? args[0] : "{}", false, instance, &err) !=
        PIE_STATUS_OK)
      return report("launch", err);
    return 0;
  }
  bool exists = false;
  if (pie_client_program_exists(client, hash, &exists, &err) != PIE_STATUS_OK)
    return report("program_exists", err);
  if (exists) {
    printf("the server already has it\n");
  } else {
    if (pie_client_upload_program(client, program, len, on_progress, (void *)path, stored,
                                  &err) != PIE_STATUS_OK)
      return report("upload", err);
    if (strcmp(stored, hash) != 0) {
      fprintf(stderr, "upload: the server stored %s, expected %s\n", stored, hash);
      return 1;
    }
    printf("uploaded\n");
  }
  if (pie_client_launch_instance(client, hash, args, nargs, false, instance, &err) !=
      PIE_STATUS_OK)
    return report("launch", err);
  return 0;
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
  uint8_t *program = (uint8_t *)read_whole_file(path, &len);
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

  if (put_and_launch(client, path, program, len, hash, (const char *const *)argv + 3,
                     (size_t)(argc - 3), &instance) != 0)
    goto out;

  for (;;) {
    PieEvent *event = NULL;
    if (pie_instance_recv(instance, 60000, &event, &err) != PIE_STATUS_OK) {
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
        if (strcmp(text, "send me a file") == 0) {
          if (pie_instance_upload_blob(instance, program, len, NULL, NULL, &err) !=
              PIE_STATUS_OK) {
            pie_event_free(event);
            rc = report("sending the file", err);
            goto out;
          }
          printf("sent %s as a file\n", path);
        }
        break;
      case PIE_EVENT_KIND_BLOB: {
        size_t blob_len = 0;
        const uint8_t *blob = pie_event_blob(event, &blob_len);
        const char *name = pie_event_blob_name(event);
        printf("blob%s%s: %zu bytes%s\n", name ? " " : "", name ? name : "", blob_len,
               blob_len == len && memcmp(blob, program, len) == 0 ? ", the file sent" : "");
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
