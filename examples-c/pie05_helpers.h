/* Shared by the C examples for Pie 0.5: JSON text for launch inputs, compat-openai's input and the
 * text of its chunks, and installing one of the repository's test inferlets (tests/inferlets05/NAME.toml +
 * NAME.py).
 *
 * The directory is $PIE_INFERLETS05, default "tests/inferlets05" (run the examples from the
 * repository root, or set the variable). Installing an installed name@version again replaces it.
 */
#ifndef LIBPIE_EXAMPLE_PIE05_HELPERS_H
#define LIBPIE_EXAMPLE_PIE05_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pie.h"

/* Writes `s` as a JSON string literal (quotes and escapes) into out[size]. */
static inline void json_string(const char *s, char *out, size_t size) {
  size_t n = 0;
  out[n++] = '"';
  for (; *s && n + 8 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = '"';
  out[n] = '\0';
}

/* The JSON input of a streamed compat-openai completion of `prompt`, into out[size]. The number
 * of tokens is $PIE_MAX_TOKENS, default 16 (a CPU-only pie-server makes a token in seconds). */
static inline void openai_input(const char *prompt, char *out, size_t size) {
  char quoted[1024];
  const char *max_tokens = getenv("PIE_MAX_TOKENS");
  json_string(prompt, quoted, sizeof quoted);
  snprintf(out, size, "{\"prompt\": %s, \"max_tokens\": %d, \"stream\": true}", quoted,
           max_tokens ? atoi(max_tokens) : 16);
}

/* Copies the "text" of a compat-openai chunk ({"data": {..., "choices": [{"text": "..."}]}}) into
 * out[size] as UTF-8 and returns its length; 0 for a chunk without text (the final
 * {"data": "[DONE]"}). Decodes the escapes of JSON strings except surrogate pairs (written as
 * '?'), enough for an example. */
static inline size_t openai_chunk_text(const char *chunk, char *out, size_t size) {
  const char *p = chunk ? strstr(chunk, "\"text\"") : NULL;
  size_t n = 0;
  out[0] = '\0';
  if (!p) return 0;
  for (p += 6; *p == ' ' || *p == ':'; p++) {
  }
  if (*p != '"') return 0;
  for (p++; *p && *p != '"' && n + 4 < size; p++) {
    unsigned code = (unsigned char)*p;
    if (code == '\\' && p[1]) {
      p++;
      code = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : (unsigned char)*p;
      if (*p == 'u' && sscanf(p + 1, "%4x", &code) == 1) p += 4;
    }
    if (code < 0x80) {
      out[n++] = (char)code;
    } else if (code < 0x800) {
      out[n++] = (char)(0xC0 | code >> 6);
      out[n++] = (char)(0x80 | (code & 0x3F));
    } else if (code >= 0xD800 && code < 0xE000) {
      out[n++] = '?';
    } else {
      out[n++] = (char)(0xE0 | code >> 12);
      out[n++] = (char)(0x80 | ((code >> 6) & 0x3F));
      out[n++] = (char)(0x80 | (code & 0x3F));
    }
  }
  out[n] = '\0';
  return n;
}

/* The whole file as a NUL-terminated buffer (free it), its length in *len; NULL on failure. */
static inline char *read_whole_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *data = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1))) {
      *len = fread(data, 1, (size_t)size, f);
      data[*len] = '\0';
    }
  }
  fclose(f);
  return data;
}

/* Installs tests/inferlets05/FILE.py with its manifest FILE.toml. Returns 0, or 1 after saying
 * on stderr what failed. */
static inline int install_inferlet05(PieClient *client, const char *file) {
  const char *dir = getenv("PIE_INFERLETS05") ? getenv("PIE_INFERLETS05") : "tests/inferlets05";
  char source_path[1024], manifest_path[1024], hash[PIE_HASH_BUFFER_SIZE];
  snprintf(source_path, sizeof source_path, "%s/%s.py", dir, file);
  snprintf(manifest_path, sizeof manifest_path, "%s/%s.toml", dir, file);
  size_t source_len = 0, manifest_len = 0;
  char *source = read_whole_file(source_path, &source_len);
  char *manifest = read_whole_file(manifest_path, &manifest_len);
  PieError *err = NULL;
  int rc = 1;
  if (!source || !manifest) {
    fprintf(stderr, "cannot read %s and %s (set PIE_INFERLETS05 to their directory)\n",
            source_path, manifest_path);
  } else if (pie_client_install_program(client, (const uint8_t *)source, source_len, manifest,
                                        true, NULL, NULL, hash, &err) != PIE_STATUS_OK) {
    fprintf(stderr, "installing %s failed: %s: %s\n", file,
            pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
    pie_error_free(err);
  } else {
    rc = 0;
  }
  free(source);
  free(manifest);
  return rc;
}

#endif
