/* An SDL2 + SDL2_ttf window that streams a completion into the frame loop, the way a game
 * embeds libpie: nothing ever blocks a frame. Each frame (60 per second) it
 *   - handles window input (type a prompt, Enter launches, Esc quits),
 *   - advances the pending _async operations with pie_op_poll (connect, authenticate,
 *     upload, launch),
 *   - checks libpie's event fd with poll(2) and a zero timeout, and if it is readable takes
 *     the queued events with pie_instance_recv(instance, 0, ...) within a time budget,
 *   - draws the prompt, the word-wrapped text and a status line, and presents.
 * The time each frame takes (everything but the wait for the next frame) is recorded; at the
 * end the tokens/s and the frame-time percentiles are printed.
 *
 *   sdl_chat [URL] [options]
 *     --prompt TEXT        prompt for the registry inferlet (default: "Tell me about pie")
 *     --inferlet NAME      registry inferlet (default: text-completion, given
 *                          --prompt TEXT --max-tokens N --delay-ms D)
 *     --max-tokens N       (default 400)       --delay-ms D   (default 5)
 *     --program FILE       upload FILE and launch it instead (no arguments)
 *     --user NAME          user name to authenticate as (default: sdl-chat; no key)
 *     --exit-when-done     quit once the instance has ended (the tests use it)
 *     --screenshot FILE    save the last frame as a binary PPM (P6) image
 *     --render-text FILE   no server: draw FILE's text as if it had streamed, then exit
 *                          (the tests render their expected text through the same code)
 *     --font FILE          a monospace TTF font (default: DejaVu Sans Mono)
 *
 * Build: cc -std=c11 -I include examples-c/sdl_chat.c $(pkg-config --cflags --libs sdl2 SDL2_ttf)
 *           -L target/debug -lpie -Wl,-rpath,$PWD/target/debug -o sdl_chat
 */
#define _POSIX_C_SOURCE 200809L
#include <SDL.h>
#include <SDL_ttf.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pie.h"

#define WINDOW_W 960
#define WINDOW_H 600
#define FONT_PT 15
#define MARGIN 12
#define FRAME_NS 16666667LL       /* 60 frames per second */
#define DRAIN_BUDGET_NS 4000000LL /* at most 4 ms of event handling per frame */
#define MAX_LINES 512             /* wrapped lines kept; only the last screenful is drawn */
#define LINE_BYTES 1024
#define PROMPT_BYTES 256
#define MAX_FRAMES_RECORDED 200000
#define DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"

static const SDL_Color TEXT_COLOR = {230, 230, 220, 255};
static const SDL_Color PROMPT_COLOR = {120, 200, 255, 255};
static const SDL_Color STATUS_COLOR = {160, 160, 160, 255};

static long long clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time of the main thread: a frame's own work, without the time the OS ran others. */
static long long cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

/* ---------------------------------------------------------------------------------------- */
/* Word-wrapped text. Greedy wrapping byte by byte: a completed line never changes, so the    */
/* result is the same however the text is split into tokens (the tests rely on that).        */
/* ---------------------------------------------------------------------------------------- */

struct line {
  char text[LINE_BYTES];
  size_t len;
  int chars;             /* code points (the font is monospace: width = chars * advance) */
  SDL_Surface *rendered; /* cached rendering; NULL when the line changed */
  unsigned long serial;  /* which line this slot holds (new for every line) */
  unsigned long version; /* bumped on every change: the screen redraws rows that changed */
};

struct text_view {
  struct line lines[MAX_LINES]; /* ring buffer; lines[(first + count - 1) % MAX_LINES] is open */
  int first, count;
  int columns;
  unsigned long next_serial;
};

static struct line *line_at(struct text_view *v, int i) {
  return &v->lines[(v->first + i) % MAX_LINES];
}

static struct line *open_line(struct text_view *v) { return line_at(v, v->count - 1); }

static void invalidate(struct line *l) {
  SDL_FreeSurface(l->rendered);
  l->rendered = NULL;
  l->version++;
}

static struct line *new_line(struct text_view *v) {
  if (v->count == MAX_LINES) { /* forget the oldest line */
    struct line *oldest = line_at(v, 0);
    invalidate(oldest);
    v->first = (v->first + 1) % MAX_LINES;
    v->count--;
  }
  v->count++;
  struct line *l = open_line(v);
  invalidate(l);
  l->serial = ++v->next_serial;
  l->len = 0;
  l->chars = 0;
  return l;
}

static void view_clear(struct text_view *v) {
  for (int i = 0; i < MAX_LINES; i++) invalidate(&v->lines[i]);
  v->first = 0;
  v->count = 0;
  new_line(v);
}

static bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

static int count_chars(const char *s, size_t n) {
  int chars = 0;
  for (size_t i = 0; i < n; i++) chars += !is_continuation((unsigned char)s[i]);
  return chars;
}

/* Moves the tail of the open line, from byte `cut` on, to a new line (dropping one space at
 * the cut if `skip_space`). */
static void break_line(struct text_view *v, size_t cut, bool skip_space) {
  struct line *l = open_line(v);
  char tail[LINE_BYTES];
  size_t from = cut + (skip_space ? 1 : 0);
  size_t tail_len = l->len - from;
  memcpy(tail, l->text + from, tail_len);
  l->len = cut;
  l->chars = count_chars(l->text, l->len);
  invalidate(l);
  struct line *next = new_line(v);
  memcpy(next->text, tail, tail_len);
  next->len = tail_len;
  next->chars = count_chars(tail, tail_len);
}

static void append_byte(struct text_view *v, char c) {
  if (c == '\n') {
    new_line(v);
    return;
  }
  if (c == '\r') return;
  struct line *l = open_line(v);
  if (l->len + 1 >= LINE_BYTES) { /* a pathological line without spaces: hard break */
    new_line(v);
    l = open_line(v);
  }
  l->text[l->len++] = c;
  invalidate(l);
  if (is_continuation((unsigned char)c)) return;
  l->chars++;
  if (l->chars <= v->columns) return;
  /* Too wide: break at the last space, else before this character. */
  size_t last = l->len - 1;
  for (size_t i = last; i > 0; i--) {
    if (l->text[i - 1] == ' ' && i - 1 > 0) {
      break_line(v, i - 1, true);
      return;
    }
  }
  break_line(v, last, false);
}

static void append_text(struct text_view *v, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) append_byte(v, s[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Drawing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

struct screen {
  SDL_Window *window;
  TTF_Font *font;
  int advance, line_h;
  SDL_Rect text_region; /* where the streamed text goes (the tests compare these pixels) */
  int rows;
};

#define BACKGROUND 24, 26, 32
#define STATUS_BACKGROUND 40, 42, 50

/* Renders text once into a surface of the window's pixel format, so that drawing it each
 * frame is a plain copy (no per-pixel blending, no format conversion). NULL for "". */
static SDL_Surface *render(struct screen *sc, const char *s, size_t len, SDL_Color fg,
                           SDL_Color bg) {
  char buf[LINE_BYTES + PROMPT_BYTES];
  if (len >= sizeof buf) len = sizeof buf - 1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (len == 0) return NULL;
  SDL_Surface *shaded = TTF_RenderUTF8_Shaded(sc->font, buf, fg, bg);
  if (!shaded) return NULL;
  SDL_Surface *ready = SDL_ConvertSurface(shaded, SDL_GetWindowSurface(sc->window)->format, 0);
  SDL_FreeSurface(shaded);
  return ready;
}

static void blit(SDL_Surface *src, SDL_Surface *dst, int x, int y) {
  if (!src) return;
  SDL_Rect at = {x, y, src->w, src->h};
  SDL_BlitSurface(src, NULL, dst, &at);
}

/* A rendered string that is rendered again only when its text changes. */
struct label {
  char text[LINE_BYTES];
  SDL_Surface *surface;
};

static SDL_Surface *label_get(struct screen *sc, struct label *l, const char *text, SDL_Color fg,
                              SDL_Color bg) {
  if (!l->surface || strcmp(l->text, text) != 0) {
    SDL_FreeSurface(l->surface);
    snprintf(l->text, sizeof l->text, "%s", text);
    l->surface = render(sc, text, strlen(text), fg, bg);
  }
  return l->surface;
}

/* Draws what changed since the last frame and hands only those rectangles to the window
 * system (copying the whole window every frame costs more than everything else together). */
static void draw(struct screen *sc, struct text_view *v, const char *prompt, bool typing,
                 const char *status) {
  static const SDL_Color bg = {BACKGROUND, 255}, status_bg = {STATUS_BACKGROUND, 255};
  static struct label prompt_label, status_label;
  static bool drawn_once;
  static unsigned long drawn_serial[WINDOW_H], drawn_version[WINDOW_H]; /* per text row */
  SDL_Rect dirty[WINDOW_H + 2];
  int ndirty = 0;
  SDL_Surface *dst = SDL_GetWindowSurface(sc->window);
  Uint32 background = SDL_MapRGB(dst->format, BACKGROUND);

  if (!drawn_once) {
    SDL_FillRect(dst, NULL, background);
    SDL_Rect rule = {MARGIN, sc->text_region.y - 6, WINDOW_W - 2 * MARGIN, 1};
    SDL_FillRect(dst, &rule, SDL_MapRGB(dst->format, 70, 74, 84));
    dirty[ndirty++] = (SDL_Rect){0, 0, WINDOW_W, WINDOW_H};
  }

  char prompt_line[PROMPT_BYTES + 8];
  snprintf(prompt_line, sizeof prompt_line, "> %s%s", prompt, typing ? "_" : "");
  if (!drawn_once || strcmp(prompt_label.text, prompt_line) != 0) {
    SDL_Rect row = {0, MARGIN, WINDOW_W, sc->line_h};
    SDL_FillRect(dst, &row, background);
    blit(label_get(sc, &prompt_label, prompt_line, PROMPT_COLOR, bg), dst, MARGIN, MARGIN);
    dirty[ndirty++] = row;
  }

  /* The last `rows` lines; a row is drawn again only if it shows another line or its line
   * changed, and a line is rendered again only when it changed. */
  int shown = v->count < sc->rows ? v->count : sc->rows;
  for (int i = 0; i < sc->rows; i++) {
    struct line *l = i < shown ? line_at(v, v->count - shown + i) : NULL;
    unsigned long serial = l ? l->serial : 0, version = l ? l->version : 0;
    if (drawn_once && drawn_serial[i] == serial && drawn_version[i] == version) continue;
    drawn_serial[i] = serial;
    drawn_version[i] = version;
    SDL_Rect row = {sc->text_region.x, sc->text_region.y + i * sc->line_h, sc->text_region.w,
                    sc->line_h};
    SDL_FillRect(dst, &row, background);
    if (l && !l->rendered && l->len > 0) l->rendered = render(sc, l->text, l->len, TEXT_COLOR, bg);
    if (l) blit(l->rendered, dst, row.x, row.y);
    dirty[ndirty++] = row;
  }

  if (!drawn_once || strcmp(status_label.text, status) != 0) {
    SDL_Rect bar = {0, WINDOW_H - sc->line_h - 8, WINDOW_W, sc->line_h + 8};
    SDL_FillRect(dst, &bar, SDL_MapRGB(dst->format, STATUS_BACKGROUND));
    blit(label_get(sc, &status_label, status, STATUS_COLOR, status_bg), dst, MARGIN, bar.y + 4);
    dirty[ndirty++] = bar;
  }
  drawn_once = true;
  if (ndirty > 0) SDL_UpdateWindowSurfaceRects(sc->window, dirty, ndirty);
}

/* Writes the window's pixels as a binary PPM. */
static int save_ppm(SDL_Window *window, const char *path) {
  SDL_Surface *src = SDL_GetWindowSurface(window);
  SDL_Surface *rgb = SDL_ConvertSurfaceFormat(src, SDL_PIXELFORMAT_RGB24, 0);
  if (!rgb) return -1;
  FILE *f = fopen(path, "wb");
  if (!f) {
    SDL_FreeSurface(rgb);
    return -1;
  }
  fprintf(f, "P6\n%d %d\n255\n", rgb->w, rgb->h);
  for (int y = 0; y < rgb->h; y++) fwrite((char *)rgb->pixels + y * rgb->pitch, 3, rgb->w, f);
  int rc = fclose(f);
  SDL_FreeSurface(rgb);
  return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The libpie side: a small state machine advanced once per frame, never waiting.           */
/* ---------------------------------------------------------------------------------------- */

enum phase { CONNECTING, AUTHENTICATING, UPLOADING, LAUNCHING, STREAMING, IDLE, FAILED };

static const char *phase_name(enum phase p) {
  static const char *names[] = {"connecting", "authenticating", "uploading", "launching",
                                "streaming",  "done",           "failed"};
  return names[p];
}

struct session {
  const char *url, *user, *inferlet, *program_path;
  const char *max_tokens, *delay_ms;
  char prompt[PROMPT_BYTES];
  enum phase phase;
  PieClient *client;
  PieInstance *instance;
  PieOp *op; /* the pending operation of the current phase */
  int event_fd;
  unsigned char *program;
  size_t program_len;
  char error[512];
  /* statistics of the current stream */
  long tokens;
  long long first_token_ns, last_event_ns;
};

static void fail(struct session *s, const char *what, PieError *err) {
  snprintf(s->error, sizeof s->error, "%s: %s: %s", what,
           pie_status_name((int32_t)pie_error_status(err)), pie_error_message(err));
  fprintf(stderr, "sdl_chat: %s\n", s->error);
  pie_error_free(err);
  s->phase = FAILED;
}

/* Takes the finished operation's failure, if any. Returns true if it succeeded. */
static bool op_ok(struct session *s, const char *what) {
  PieError *err = NULL;
  if (pie_op_error(s->op, &err) == PIE_STATUS_OK) return true;
  fail(s, what, err);
  return false;
}

static void start_launch(struct session *s) {
  PieError *err = NULL;
  PieStatus st;
  s->tokens = 0;
  s->first_token_ns = s->last_event_ns = 0;
  if (s->program) {
    st = pie_client_upload_program_async(s->client, s->program, s->program_len, NULL, NULL, &s->op,
                                         &err);
    s->phase = UPLOADING;
  } else {
    const char *args[] = {"--prompt", s->prompt, "--max-tokens", s->max_tokens, "--delay-ms",
                          s->delay_ms};
    st = pie_client_launch_instance_from_registry_async(s->client, s->inferlet, args, 6, false,
                                                        &s->op, &err);
    s->phase = LAUNCHING;
  }
  if (st != PIE_STATUS_OK) fail(s, "launch", err);
}

/* One step of the connection's progress; never blocks. */
static void advance(struct session *s) {
  PieError *err = NULL;
  if (!s->op || pie_op_poll(s->op, NULL) == PIE_STATUS_PENDING) return;
  switch (s->phase) {
  case CONNECTING:
    if (pie_op_take_client(s->op, &s->client, &err) != PIE_STATUS_OK) {
      fail(s, "connect", err);
      break;
    }
    pie_op_free(s->op);
    s->op = NULL;
    if (pie_client_event_fd(s->client, &s->event_fd, &err) != PIE_STATUS_OK) {
      fail(s, "event fd", err);
      break;
    }
    if (pie_client_authenticate_async(s->client, s->user, NULL, &s->op, &err) != PIE_STATUS_OK) {
      fail(s, "authenticate", err);
      break;
    }
    s->phase = AUTHENTICATING;
    return;
  case AUTHENTICATING:
    if (!op_ok(s, "authenticate")) break;
    pie_op_free(s->op);
    s->op = NULL;
    start_launch(s);
    return;
  case UPLOADING: {
    if (!op_ok(s, "upload")) break;
    char hash[PIE_HASH_BUFFER_SIZE];
    snprintf(hash, sizeof hash, "%s", pie_op_result_string(s->op));
    pie_op_free(s->op);
    s->op = NULL;
    if (pie_client_launch_instance_async(s->client, hash, NULL, 0, false, &s->op, &err) !=
        PIE_STATUS_OK) {
      fail(s, "launch", err);
      break;
    }
    s->phase = LAUNCHING;
    return;
  }
  case LAUNCHING:
    if (pie_op_take_instance(s->op, &s->instance, &err) != PIE_STATUS_OK) {
      fail(s, "launch", err);
      break;
    }
    s->phase = STREAMING;
    break;
  default:
    break;
  }
  pie_op_free(s->op);
  s->op = NULL;
}

/* Takes queued events without waiting, for at most DRAIN_BUDGET_NS. */
static void drain(struct session *s, struct text_view *v) {
  if (s->phase != STREAMING || !s->instance) return;
  struct pollfd p = {s->event_fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return; /* nothing queued for this client */
  long long deadline = now_ns() + DRAIN_BUDGET_NS;
  for (int n = 0;; n++) {
    if ((n & 63) == 63 && now_ns() > deadline) return; /* the rest waits for the next frame */
    PieEvent *event = NULL;
    PieError *err = NULL;
    PieStatus st = pie_instance_recv(s->instance, 0, &event, &err);
    if (st == PIE_STATUS_TIMEOUT) {
      pie_error_free(err);
      return;
    }
    if (st != PIE_STATUS_OK) { /* STREAM_ENDED or the connection ended */
      if (st == PIE_STATUS_STREAM_ENDED) {
        pie_error_free(err);
        s->phase = IDLE;
      } else {
        fail(s, "receive", err);
      }
      return;
    }
    size_t len = 0;
    const char *text = pie_event_text(event, &len);
    PieEventKind kind = pie_event_kind(event);
    if (kind == PIE_EVENT_KIND_STDOUT) {
      long long t = now_ns();
      if (s->tokens++ == 0) s->first_token_ns = t;
      s->last_event_ns = t;
      append_text(v, text, len);
    }
    if (pie_event_is_terminal(event) && kind != PIE_EVENT_KIND_COMPLETED) {
      snprintf(s->error, sizeof s->error, "instance ended: %.*s", (int)len, text ? text : "");
      s->phase = FAILED;
    }
    pie_event_free(event);
  }
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0, got;
  unsigned char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      unsigned char *bigger = realloc(buf, cap * 2);
      if (!bigger) free(buf);
      buf = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

static int compare_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static double percentile_ms(long long *sorted, long n, double q) {
  if (n == 0) return 0;
  long i = (long)(q * (double)(n - 1) + 0.5);
  return (double)sorted[i] / 1e6;
}

int main(int argc, char **argv) {
  struct session s = {.url = "ws://127.0.0.1:8080", .user = "sdl-chat",
                      .inferlet = "text-completion", .max_tokens = "400", .delay_ms = "5",
                      .event_fd = -1};
  snprintf(s.prompt, sizeof s.prompt, "Tell me about pie");
  const char *screenshot = NULL, *render_text = NULL, *font_path = DEFAULT_FONT;
  bool exit_when_done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--exit-when-done")) {
      exit_when_done = true;
    } else if (a[0] == '-' && a[1] == '-' && !next) {
      fprintf(stderr, "sdl_chat: %s needs a value\n", a);
      return 2;
    } else if (!strcmp(a, "--prompt")) {
      snprintf(s.prompt, sizeof s.prompt, "%s", argv[++i]);
    } else if (!strcmp(a, "--inferlet")) {
      s.inferlet = argv[++i];
    } else if (!strcmp(a, "--max-tokens")) {
      s.max_tokens = argv[++i];
    } else if (!strcmp(a, "--delay-ms")) {
      s.delay_ms = argv[++i];
    } else if (!strcmp(a, "--program")) {
      s.program_path = argv[++i];
    } else if (!strcmp(a, "--user")) {
      s.user = argv[++i];
    } else if (!strcmp(a, "--screenshot")) {
      screenshot = argv[++i];
    } else if (!strcmp(a, "--render-text")) {
      render_text = argv[++i];
    } else if (!strcmp(a, "--font")) {
      font_path = argv[++i];
    } else if (a[0] != '-') {
      s.url = a;
    } else {
      fprintf(stderr, "sdl_chat: unknown option %s\n", a);
      return 2;
    }
  }

  if (SDL_Init(SDL_INIT_VIDEO) != 0 || TTF_Init() != 0) {
    fprintf(stderr, "sdl_chat: SDL: %s\n", SDL_GetError());
    return 1;
  }
  struct screen sc = {0};
  static struct text_view view; /* large: not on the stack */
  int rc = 1;
  sc.font = TTF_OpenFont(font_path, FONT_PT);
  sc.window = SDL_CreateWindow("libpie + SDL2", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED,
                               WINDOW_W, WINDOW_H, 0);
  if (!sc.font || !sc.window) {
    fprintf(stderr, "sdl_chat: %s\n", SDL_GetError());
    goto out;
  }
  TTF_SizeUTF8(sc.font, "M", &sc.advance, NULL);
  sc.line_h = TTF_FontLineSkip(sc.font);
  sc.text_region.x = MARGIN;
  sc.text_region.y = MARGIN + sc.line_h + 12;
  sc.text_region.w = WINDOW_W - 2 * MARGIN;
  sc.rows = (WINDOW_H - sc.line_h - 8 - 6 - sc.text_region.y) / sc.line_h;
  sc.text_region.h = sc.rows * sc.line_h;
  view.columns = sc.text_region.w / sc.advance;
  view_clear(&view);
  printf("text region %d %d %d %d\n", sc.text_region.x, sc.text_region.y, sc.text_region.w,
         sc.text_region.h);

  if (render_text) { /* the reference image for the tests: same drawing, no server */
    size_t len = 0;
    unsigned char *text = read_file(render_text, &len);
    if (!text) {
      fprintf(stderr, "sdl_chat: cannot read %s\n", render_text);
      goto out;
    }
    append_text(&view, (const char *)text, len);
    free(text);
    draw(&sc, &view, s.prompt, false, "reference");
    rc = screenshot && save_ppm(sc.window, screenshot) != 0 ? 1 : 0;
    goto out;
  }

  if (s.program_path && !(s.program = read_file(s.program_path, &s.program_len))) {
    fprintf(stderr, "sdl_chat: cannot read %s\n", s.program_path);
    goto out;
  }
  PieError *err = NULL;
  if (pie_client_connect_async(s.url, NULL, &s.op, &err) != PIE_STATUS_OK) {
    fail(&s, "connect", err);
    goto out;
  }
  s.phase = CONNECTING;

  static long long frame_ns[MAX_FRAMES_RECORDED]; /* busy time of each frame while streaming */
  static long long frame_cpu_ns[MAX_FRAMES_RECORDED]; /* CPU time of the same frames */
  long frames = 0, streaming_frames = 0, late_frames = 0;
  bool typing = false, quit = false;
  int frames_after_end = -1;
  long long next_frame = now_ns();
  char status[sizeof s.error + 128] = "";
  long long status_updated = 0;
  SDL_StartTextInput();
  while (!quit) {
    long long start = now_ns(), start_cpu = cpu_ns();
    SDL_Event e;
    while (SDL_PollEvent(&e)) {
      if (e.type == SDL_QUIT) quit = true;
      if (e.type == SDL_KEYDOWN && e.key.keysym.sym == SDLK_ESCAPE) quit = true;
      bool can_type = s.phase == IDLE || s.phase == FAILED;
      if (e.type == SDL_TEXTINPUT && can_type) {
        if (!typing) s.prompt[0] = '\0';
        typing = true;
        size_t n = strlen(s.prompt);
        snprintf(s.prompt + n, sizeof s.prompt - n, "%s", e.text.text);
      }
      if (e.type == SDL_KEYDOWN && can_type && typing) {
        size_t n = strlen(s.prompt);
        if (e.key.keysym.sym == SDLK_BACKSPACE && n > 0) {
          while (n > 0 && is_continuation((unsigned char)s.prompt[n - 1])) n--;
          s.prompt[n > 0 ? n - 1 : 0] = '\0';
        }
        if (e.key.keysym.sym == SDLK_RETURN && n > 0 && s.client && !s.program) {
          typing = false;
          pie_instance_free(s.instance); /* the previous answer's instance, already ended */
          s.instance = NULL;
          view_clear(&view);
          start_launch(&s);
        }
      }
    }
    bool was_streaming = s.phase == STREAMING;
    advance(&s);
    drain(&s, &view);

    if (start - status_updated > 250000000LL || s.phase != STREAMING) { /* 4 updates a second */
      double secs = s.first_token_ns ? (double)(s.last_event_ns - s.first_token_ns) / 1e9 : 0;
      snprintf(status, sizeof status, "%s | %ld tokens | %.0f tokens/s | %s", phase_name(s.phase),
               s.tokens, secs > 0 ? (double)s.tokens / secs : 0.0,
               s.phase == FAILED ? s.error : "type a prompt, Enter to send, Esc to quit");
      status_updated = start;
    }
    draw(&sc, &view, s.prompt, typing, status);

    long long busy = now_ns() - start;
    frames++;
    if (was_streaming && streaming_frames < MAX_FRAMES_RECORDED) {
      frame_cpu_ns[streaming_frames] = cpu_ns() - start_cpu;
      frame_ns[streaming_frames++] = busy;
    }
    if (busy > FRAME_NS) late_frames++;

    if (exit_when_done && (s.phase == IDLE || s.phase == FAILED) && frames_after_end < 0)
      frames_after_end = 0;
    if (frames_after_end >= 0 && ++frames_after_end > 2) break; /* a couple of settled frames */

    /* Wait for the next frame without holding the CPU. */
    next_frame += FRAME_NS;
    long long wait = next_frame - now_ns();
    if (wait < 0) {
      next_frame = now_ns(); /* fell behind: do not try to catch up */
    } else {
      poll(NULL, 0, (int)(wait / 1000000));
    }
  }
  SDL_StopTextInput();

  if (screenshot && save_ppm(sc.window, screenshot) != 0) {
    fprintf(stderr, "sdl_chat: cannot write %s\n", screenshot);
    goto out;
  }
  qsort(frame_ns, (size_t)streaming_frames, sizeof frame_ns[0], compare_ll);
  qsort(frame_cpu_ns, (size_t)streaming_frames, sizeof frame_cpu_ns[0], compare_ll);
  double secs = s.first_token_ns ? (double)(s.last_event_ns - s.first_token_ns) / 1e9 : 0;
  printf("tokens %ld in %.3f s: %.0f tokens/s\n", s.tokens, secs,
         secs > 0 ? (double)s.tokens / secs : 0.0);
  printf("frames %ld, %ld while streaming: frame time p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
         "%ld over 16.7 ms\n",
         frames, streaming_frames, percentile_ms(frame_ns, streaming_frames, 0.50),
         percentile_ms(frame_ns, streaming_frames, 0.99),
         percentile_ms(frame_ns, streaming_frames, 1.0), late_frames);
  printf("frame cpu time p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
         percentile_ms(frame_cpu_ns, streaming_frames, 0.50),
         percentile_ms(frame_cpu_ns, streaming_frames, 0.99),
         percentile_ms(frame_cpu_ns, streaming_frames, 1.0));
  if (s.phase == FAILED) {
    fprintf(stderr, "sdl_chat: %s\n", s.error);
    goto out;
  }
  rc = 0;

out:
  pie_op_free(s.op);
  pie_instance_free(s.instance);
  pie_client_free(s.client);
  free(s.program);
  for (int i = 0; i < MAX_LINES; i++) invalidate(&view.lines[i]);
  if (sc.font) TTF_CloseFont(sc.font);
  if (sc.window) SDL_DestroyWindow(sc.window);
  TTF_Quit();
  SDL_Quit();
  return rc;
}
