/*
 * libpie - C client library for the Pie programmable LLM serving system.
 *
 * OVERVIEW
 *   Connect with pie_client_connect, then authenticate first (the server accepts nothing
 *   else before: pie_client_authenticate, with a NULL key when the server has authentication
 *   disabled, or pie_client_internal_authenticate). Upload a program
 *   (pie_client_upload_program) or use a registry inferlet, launch instances and receive
 *   their events. Every network call exists in a blocking form (bounded by the client's
 *   request timeout) and an `_async` form returning a PieOp (pie_op_poll, pie_op_wait,
 *   pie_op_set_callback, pie_op_cancel, pie_op_take_*).
 *
 * ERRORS
 *   Fallible functions return a PieStatus (PIE_STATUS_OK = 0; the numbers are stable). Every
 *   fallible function takes `PieError **out_err` as its last parameter; it may be NULL. When it
 *   is not and the call fails, *out_err receives an error object (status + readable message)
 *   that the caller frees with pie_error_free. *out_err is not touched on success, so
 *   initialise it to NULL. Other out-parameters are written only on success. There is no
 *   thread-local "last error". A NULL required pointer always gives PIE_STATUS_NULL_POINTER (the
 *   message names the parameter); strings must be NUL-terminated UTF-8 (PIE_STATUS_INVALID_UTF8
 *   otherwise). A Rust panic never crosses into the host: it always gives PIE_STATUS_PANIC.
 *   Accessors that return a pointer, bool or number instead of a status return NULL, false or 0
 *   for a NULL argument (as each one says).
 *
 * TIMEOUTS
 *   One rule for every `timeout_ms` parameter (int32_t): -1 waits forever, 0 does not wait, a
 *   positive value waits at most that many milliseconds; any other negative value gives
 *   PIE_STATUS_INVALID_ARGUMENT naming the parameter. (Connection options hold limits instead,
 *   `limit_ms` > 0, applied to every request of the client.)
 *
 * OWNERSHIP
 *   Every object libpie hands out has exactly one free function (pie_client_free,
 *   pie_instance_free, pie_event_free, pie_op_free, ...); freeing NULL is a no-op. Objects
 *   keep what they depend on alive, so they can be freed in any order (an instance may
 *   outlive its client handle; calls on it then fail with PIE_STATUS_CLIENT_CLOSED).
 *   Strings returned as `char *` are freed with pie_string_free; `const char *` results are
 *   borrowed, valid as long as the object they came from (each function says). Inputs are
 *   copied before the call returns: libpie keeps no pointer the caller passed in (except the
 *   `user_data` of callbacks, which it passes back untouched).
 *   STALE HANDLES: this holds for every handle (PieClient, PieInstance, PieOp, PieEvent,
 *   PieInstanceList, PieKey, PieConnectOptions, PieError) and every returned string: free it
 *   exactly once, and never pass it to any function after its free function was called (or
 *   while another thread is freeing it). libpie cannot detect a stale or doubly freed pointer;
 *   like free() in C, that is undefined behaviour, not an error status.
 *
 * THREADS
 *   Every handle may be used from any thread, concurrently (PieConnectOptions excepted: do
 *   not modify one from two threads at once). libpie runs a hidden runtime on one network
 *   thread ("pie-runtime"), started by the first connect and stopped when the last client,
 *   instance and operation have been freed: after that call returns, no libpie thread is left. Each
 *   client that uses callbacks also has one callback thread ("pie-callbacks").
 *   A blocking call runs on the calling thread until its answer arrives (no operation object
 *   is created). Blocking calls are refused with PIE_STATUS_BUSY on threads that run a tokio runtime
 *   (libpie's own, e.g. inside an upload progress callback, or the host's): use the
 *   `_async` forms there. Host callbacks must return normally (no longjmp or C++ exception
 *   through libpie).
 *
 * EVENT DELIVERY (chosen per instance)
 *   1. Polling: pie_instance_recv(instance, timeout_ms, &event, &err) (see TIMEOUTS). OK gives
 *      an event; TIMEOUT means none yet; STREAM_ENDED,
 *      CONNECTION_CLOSED or CLIENT_CLOSED mean the stream is over.
 *   2. Callbacks: pie_instance_set_callback. Events arrive in order on the client's callback
 *      thread (never a network thread), borrowed for the duration of the call, followed by
 *      one final call with event == NULL and the status that ended the stream; then
 *      drop(user_data) runs once. Callbacks may call any libpie function, including
 *      pie_instance_free / pie_client_free on their own objects (deferred until the callback
 *      returns; never a deadlock). Operations (pie_op_set_callback) and the end of the
 *      connection (pie_client_set_connection_callback) use the same thread.
 *   3. A file descriptor: pie_client_event_fd gives an fd that is readable while any
 *      polling instance of the client has an event queued or its stream ended. Watch it
 *      with poll/epoll/select/libuv or a game loop, and when readable call
 *      pie_instance_recv(instance, 0, ...) on the instances until each returns something
 *      other than PIE_STATUS_OK.
 *   Every callback registration (connection, operation, instance events) takes the callback
 *   (a PieConnectionCallback, PieOpCallback or PieEventCallback), a `user_data` pointer passed
 *   back untouched, and an optional PieDropCallback: drop(user_data) runs exactly once, on the
 *   client's callback thread, after the last call of the callback (also when the callback is
 *   replaced, or its object is freed before it was called).
 *   Events are never dropped silently: a queue that reaches its limit delivers a
 *   PIE_EVENT_KIND_OVERFLOW event saying how many were discarded.
 *
 * SHUTDOWN
 *   pie_client_close is idempotent: pending calls finish with PIE_STATUS_CLIENT_CLOSED, every
 *   event stream ends (polling: CLIENT_CLOSED after the queued events; callbacks: a final
 *   call with PIE_STATUS_CLIENT_CLOSED), the connection callback is called. pie_client_free
 *   closes if needed and waits for the callbacks already queued for the client to run.
 */

#ifndef PIE_H
#define PIE_H

/* Generated by cbindgen from src/ffi/ (Rust). Do not edit: change the Rust doc comments and run
   PIE_BLESS_HEADER=1 cargo test --test ship header_current. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 Major version of the header (semantic versioning; before 1.0 an incompatible change bumps
 the minor version).
 */
#define PIE_VERSION_MAJOR 0

/*
 Minor version of the header.
 */
#define PIE_VERSION_MINOR 2

/*
 Patch version of the header.
 */
#define PIE_VERSION_PATCH 0

/*
 PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH, for `#if` checks.
 */
#define PIE_VERSION_NUMBER 200

/*
 A connection to a Pie server (opaque). Created by pie_client_connect (or
 pie_op_take_client), owned by the caller, freed with pie_client_free. Every function taking a
 client may be called from any thread, concurrently.
 */
typedef struct PieClient PieClient;

/*
 Connection settings (opaque). Created with pie_connect_options_new, owned by the caller,
 freed with pie_connect_options_free. pie_client_connect copies it, so it may be freed or
 reused right after. Not synchronised: do not modify one options object from two threads at
 once.
 */
typedef struct PieConnectOptions PieConnectOptions;

/*
 A readable error: a status code and a message. Created by libpie, owned by the caller,
 freed with pie_error_free. Immutable, so usable from any thread.
 */
typedef struct PieError PieError;

/*
 One event of an instance (opaque). From pie_instance_recv / pie_op_take_event it is owned by
 the caller (pie_event_free); in an event callback it is borrowed, valid only during the call.
 Immutable: readable from any thread.
 */
typedef struct PieEvent PieEvent;

/*
 A running program instance (opaque). Created by a launch or attach, owned by the caller,
 freed with pie_instance_free. Every function taking an instance may be called from any
 thread; it keeps its client's connection state alive.
 */
typedef struct PieInstance PieInstance;

/*
 The result of pie_client_list_instances (opaque): owned by the caller,
 pie_instance_list_free. Immutable: readable from any thread. Strings returned by its accessors
 are borrowed, valid until the list is freed.
 */
typedef struct PieInstanceList PieInstanceList;

/*
 A private key (opaque): Ed25519, RSA or ECDSA P-256/P-384, from OpenSSH, PKCS#8, PKCS#1 or
 SEC1 files, optionally encrypted. Owned by the caller, freed with pie_key_free (the key
 material is wiped). Immutable: usable from any thread, by any number of clients.
 */
typedef struct PieKey PieKey;

/*
 A network call in progress or finished (opaque). Handed out by every `*_async` function;
 owned by the caller and freed with pie_op_free. Usable from any thread.
 */
typedef struct PieOp PieOp;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/*
 The library version, e.g. "0.2.0": a static NUL-terminated string, never NULL, never freed.
 It is the version of the shared library actually loaded, which may differ from the header's
 PIE_VERSION_* macros the host was compiled with.
 */
const char *pie_version(void);

/*
 Result of every fallible libpie call. The numbers are stable and are never reused or
 renumbered; new codes are only ever appended.
 */
typedef enum PieStatus {
  /*
   Success.
   */
  PIE_STATUS_OK = 0,
  /*
   An argument is invalid (a malformed URL, a hash that is not 64 hex digits, an index out of
   range, a result of the wrong type requested from a PieOp, ...).
   */
  PIE_STATUS_INVALID_ARGUMENT = 1,
  /*
   The connection could not be established (DNS, TCP, TLS or WebSocket handshake).
   */
  PIE_STATUS_CONNECTION_FAILED = 2,
  /*
   The connection ended (the server closed it or the network failed).
   */
  PIE_STATUS_CONNECTION_CLOSED = 3,
  /*
   The client was closed by the host (pie_client_close or pie_client_free).
   */
  PIE_STATUS_CLIENT_CLOSED = 4,
  /*
   No reply within the configured timeout, or nothing arrived within a recv timeout.
   */
  PIE_STATUS_TIMEOUT = 5,
  /*
   The server refused the request; the error message is the server's text, verbatim.
   */
  PIE_STATUS_SERVER = 6,
  /*
   Authentication was refused or could not be carried out.
   */
  PIE_STATUS_AUTH = 7,
  /*
   A private key could not be loaded or used.
   */
  PIE_STATUS_KEY = 8,
  /*
   The server sent something the protocol does not allow.
   */
  PIE_STATUS_PROTOCOL = 9,
  /*
   The instance was launched detached: attach it (pie_client_attach_instance) first.
   */
  PIE_STATUS_DETACHED = 10,
  /*
   The instance's event stream has ended: its terminal event was already delivered.
   */
  PIE_STATUS_STREAM_ENDED = 11,
  /*
   Local input/output failure (reading a key file, creating the event fd, ...).
   */
  PIE_STATUS_IO = 12,
  /*
   An internal error of libpie (a bug if it ever shows up).
   */
  PIE_STATUS_INTERNAL = 13,
  /*
   A required pointer argument was NULL; the error message names the parameter.
   */
  PIE_STATUS_NULL_POINTER = 14,
  /*
   A string argument was not valid UTF-8; the error message names the parameter.
   */
  PIE_STATUS_INVALID_UTF8 = 15,
  /*
   libpie panicked while serving the call (a bug); the state of the objects involved is
   still consistent and they can be freed.
   */
  PIE_STATUS_PANIC = 16,
  /*
   The operation has not finished yet (pie_op_poll, pie_op_wait, pie_op_take_*).
   */
  PIE_STATUS_PENDING = 17,
  /*
   The object is in a mode that does not allow the call (e.g. pie_instance_recv on an
   instance whose events go to a callback; a blocking call made from inside a progress
   callback).
   */
  PIE_STATUS_BUSY = 18,
  /*
   The caller's output buffer is too small.
   */
  PIE_STATUS_BUFFER_TOO_SMALL = 19,
  /*
   The operation was cancelled (pie_op_cancel, or pie_op_free of a pending operation).
   */
  PIE_STATUS_CANCELLED = 20,
  /*
   The server does not offer this call: a January-2026 call on a Pie 0.5 server (launch or
   existence check by hash, upload without a manifest, internal token, key authentication)
   or a Pie 0.5 call on a January-2026 server. The error message says what to use instead.
   */
  PIE_STATUS_UNSUPPORTED = 21,
} PieStatus;

/*
 The name of a status code as a static string ("PIE_STATUS_TIMEOUT"); never NULL. Values
 that are not a PieStatus give "PIE_STATUS_UNKNOWN". Takes an int so that any value is safe.
 */
const char *pie_status_name(int32_t status);

/*
 The status code this error carries (PIE_STATUS_NULL_POINTER if `err` is NULL).
 */
enum PieStatus pie_error_status(const struct PieError *err);

/*
 The error's human-readable message, NUL-terminated UTF-8. Borrowed: valid until
 pie_error_free(err). Returns NULL if `err` is NULL.
 */
const char *pie_error_message(const struct PieError *err);

/*
 Frees an error returned through an `out_err` parameter. NULL is a no-op.
 */
void pie_error_free(struct PieError *err);

/*
 Severity of a log record (pie_set_log_callback). A callback set for one level receives
 that level and every more severe one.
 */
typedef enum PieLogLevel {
  /*
   No records (pie_set_log_callback with this level removes the callback).
   */
  PIE_LOG_LEVEL_OFF = 0,
  /*
   Failures: a connection ended by an error, a request refused by the server.
   */
  PIE_LOG_LEVEL_ERROR = 1,
  /*
   Unexpected things libpie handled: a skipped undecodable frame, a dropped blob, a
   request that timed out.
   */
  PIE_LOG_LEVEL_WARN = 2,
  /*
   Milestones: connected, authenticated, program uploaded, instance launched, closed.
   */
  PIE_LOG_LEVEL_INFO = 3,
  /*
   Decisions in detail: launch results per request, events for unknown instances, stray
   replies, ignored frames.
   */
  PIE_LOG_LEVEL_DEBUG = 4,
  /*
   Everything libpie can report.
   */
  PIE_LOG_LEVEL_TRACE = 5,
} PieLogLevel;

/*
 A log record: `(user_data, level, target, message)`; see pie_set_log_callback.
 */
typedef void (*PieLogCallback)(void *user_data,
                               enum PieLogLevel level,
                               const char *target,
                               const char *message);

/*
 Releases a callback's `user_data`: called once, on the client's callback thread, after the
 last call of its callback (also when the callback is replaced, or never called because its
 object was freed first). May be NULL.
 */
typedef void (*PieDropCallback)(void *user_data);

/*
 Sends libpie's diagnostics to `callback(user_data, level, target, message)`, for the whole
 process (every client), replacing any callback set before. Records of `level` and more
 severe are delivered; nothing is even formatted for levels filtered out, and with no
 callback set logging costs one relaxed atomic load per decision point.

 `target` names the part of libpie that logs: "pie::connection" (connect, close, why a
 connection ended), "pie::auth", "pie::upload", "pie::launch" (launch results, instance
 streams ending) or "pie::protocol" (why a frame was skipped or ignored, stray replies,
 dropped blobs, timeouts). `target` and `message` are NUL-terminated UTF-8, borrowed for the
 duration of the call only. The wording of messages is not a stable interface.

 The callback runs on the thread that made the decision: a host thread inside a libpie call
 or one of libpie's network threads. It is never called while libpie holds a lock, so it
 may call libpie (even pie_set_log_callback), but it must be quick and must not block: a
 network thread waits for it. Calls may come from several threads at once.

 `drop(user_data)` (optional) runs exactly once, after the last call of `callback`, when the
 callback is replaced or removed: on the thread that replaced it, or on the thread that was
 still inside a call at that moment, once that call returns.

 A NULL `callback` or `level` PIE_LOG_LEVEL_OFF removes the current callback (then
 `user_data` and `drop` are ignored and nothing is taken). `level` is one of the
 PIE_LOG_LEVEL_* values. Errors: PIE_STATUS_INVALID_ARGUMENT (a level out of range; nothing
 is changed and `drop` is not called).
 */
enum PieStatus pie_set_log_callback(int32_t level,
                                    PieLogCallback callback,
                                    void *user_data,
                                    PieDropCallback drop,
                                    struct PieError **out_err);

/*
 Frees a string that libpie handed to the caller (pie_client_query's result). NULL is a no-op.
 */
void pie_string_free(char *s);

/*
 Bytes needed for a program/blob hash: 64 lowercase hex digits and the terminating NUL.
 */
#define PIE_HASH_BUFFER_SIZE 65

/*
 Computes the hash libpie and the server use for programs and blobs (blake3, 64 lowercase hex
 digits) of `len` bytes at `data` (NULL allowed when `len` is 0), and writes it with a NUL into
 `out` (`out_len` bytes, at least PIE_HASH_BUFFER_SIZE). Any thread; no runtime needed.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_BUFFER_TOO_SMALL (nothing is written).
 */
enum PieStatus pie_hash_blob(const uint8_t *data,
                             size_t len,
                             char *out,
                             size_t out_len,
                             struct PieError **out_err);

/*
 Loads a private key from the file at `path` (UTF-8; a leading `~/` means the home
 directory), decrypting it with `passphrase` (NULL if not encrypted). The key goes to
 `*out_key` (pie_key_free). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8,
 PIE_STATUS_IO (cannot read the file), PIE_STATUS_KEY (unsupported, malformed, wrong or
 missing passphrase).
 */
enum PieStatus pie_key_load_file(const char *path,
                                 const char *passphrase,
                                 struct PieKey **out_key,
                                 struct PieError **out_err);

/*
 Loads a private key from `len` bytes of key file contents at `data` (copied), as
 pie_key_load_file. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8 (passphrase),
 PIE_STATUS_KEY.
 */
enum PieStatus pie_key_load_memory(const uint8_t *data,
                                   size_t len,
                                   const char *passphrase,
                                   struct PieKey **out_key,
                                   struct PieError **out_err);

/*
 Frees a key (operations already started with it keep their own reference). NULL is a no-op.
 */
void pie_key_free(struct PieKey *key);

/*
 Creates connection options holding the defaults: connect timeout 10 s, request timeout 30 s,
 1 launch in flight, 64 MiB instance queue limit, TCP quickack on, webpki trusted roots.
 Owned by the caller: free with pie_connect_options_free. Returns NULL only if out of memory.
 */
struct PieConnectOptions *pie_connect_options_new(void);

/*
 Frees connection options. NULL is a no-op.
 */
void pie_connect_options_free(struct PieConnectOptions *options);

/*
 Sets the time allowed to establish the connection (TCP, TLS and WebSocket handshake), in
 milliseconds (`limit_ms` > 0). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
 */
enum PieStatus pie_connect_options_set_connect_timeout_ms(struct PieConnectOptions *options,
                                                          uint32_t limit_ms,
                                                          struct PieError **out_err);

/*
 Sets the time allowed for each request's reply, in milliseconds (`limit_ms` > 0). Blocking calls are
 bounded by it (uploads and registry launches: the wait for their final reply).
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
 */
enum PieStatus pie_connect_options_set_request_timeout_ms(struct PieConnectOptions *options,
                                                          uint32_t limit_ms,
                                                          struct PieError **out_err);

/*
 Sets how many launches may wait for their reply at once (default 1, which avoids a known
 server deadlock; 0 = unlimited). Further launches queue inside libpie.
 Errors: PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_connect_options_set_max_launches_in_flight(struct PieConnectOptions *options,
                                                              uint32_t max,
                                                              struct PieError **out_err);

/*
 Sets the per-instance bound on queued event payload bytes (default 64 MiB; 0 = unlimited).
 When it is reached, non-terminal events are discarded and a PIE_EVENT_KIND_OVERFLOW event
 tells how many. Errors: PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_connect_options_set_instance_queue_limit_bytes(struct PieConnectOptions *options,
                                                                  uint64_t limit_bytes,
                                                                  struct PieError **out_err);

/*
 Sets the event batching window in microseconds (default 1000; 0 turns batching off). Only
 during a flood of output (four frames in a row each less than 200 µs after the previous
 one; replies to requests made one after another are not a flood) and while no request
 waits for its reply, the connection's reader waits up to this
 long between socket reads and queues what arrived meanwhile at once: one wake-up of libpie
 and of the host per batch instead of per event, which cuts the client's CPU time per event
 several-fold (docs/PIE05-SERVER.md). Each event of such a flood may arrive up to this much
 later; a first event and a token stream at model speed are never held back, and a request
 sent during a nap ends it, so replies are not delayed. Errors: PIE_STATUS_NULL_POINTER,
 PIE_STATUS_INVALID_ARGUMENT (more than 1,000,000 µs).
 */
enum PieStatus pie_connect_options_set_event_batch_window_us(struct PieConnectOptions *options,
                                                             uint32_t window_us,
                                                             struct PieError **out_err);

/*
 Turns TCP quickack (Linux; ignored elsewhere) on or off (default on: replies to small
 requests are not held back by delayed ACKs). Errors: PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_connect_options_set_tcp_quickack(struct PieConnectOptions *options,
                                                    bool enabled,
                                                    struct PieError **out_err);

/*
 Adds PEM certificate(s) trusted as roots for wss:// URLs, in addition to the built-in webpki
 roots. `pem` (`pem_len` bytes) is copied. The PEM is parsed when connecting: an invalid one
 makes pie_client_connect fail with PIE_STATUS_INVALID_ARGUMENT or
 PIE_STATUS_CONNECTION_FAILED. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT
 (empty).
 */
enum PieStatus pie_connect_options_add_root_cert_pem(struct PieConnectOptions *options,
                                                     const uint8_t *pem,
                                                     size_t pem_len,
                                                     struct PieError **out_err);

/*
 The protocol of a connection. Stable numbers.
 */
typedef enum PieProtocol {
  /*
   As a connect option: detect the server's protocol (the default). From
   pie_client_protocol: not detected yet (on a January-2026 server it is known after
   pie_client_authenticate; a Pie 0.5 server answers the probe sent at connect at once).
   */
  PIE_PROTOCOL_AUTO = 0,
  /*
   The January-2026 Pie server.
   */
  PIE_PROTOCOL_JAN2026 = 1,
  /*
   Pie 0.5 (pie-server 0.5.x, what `pip install pie-server` gives).
   */
  PIE_PROTOCOL_V05 = 2,
} PieProtocol;

/*
 Speak `protocol` instead of detecting it (PIE_PROTOCOL_AUTO, the default, detects: the
 connection uses the path /v1/ws when the URL has none, sends the identity header, and sends
 a probe that only a Pie 0.5 server answers; the January-2026 server ignores all three).
 PIE_PROTOCOL_JAN2026 uses the URL exactly as given and sends no header and no probe.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (not a PieProtocol value).
 */
enum PieStatus pie_connect_options_set_protocol(struct PieConnectOptions *options,
                                                int32_t protocol,
                                                struct PieError **out_err);

/*
 Sets the identity sent as the `x-pie-identity` upgrade header (copied; default "libpie").
 A Pie 0.5 server requires it and takes it as the caller's whole identity (it has no users or
 keys), e.g. "tenant/alice". Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8,
 PIE_STATUS_INVALID_ARGUMENT (empty, or characters an HTTP header cannot carry).
 */
enum PieStatus pie_connect_options_set_identity(struct PieConnectOptions *options,
                                                const char *identity,
                                                struct PieError **out_err);

/*
 Connects to a Pie server at `url` (`ws://host:port` or `wss://host:port`) and returns the
 client in `*out_client` (owned by the caller: pie_client_free). `options` may be NULL for the
 defaults; it is copied. Blocks for at most the connect timeout.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (bad URL),
 PIE_STATUS_CONNECTION_FAILED, PIE_STATUS_TIMEOUT.
 */
enum PieStatus pie_client_connect(const char *url,
                                  const struct PieConnectOptions *options,
                                  struct PieClient **out_client,
                                  struct PieError **out_err);

/*
 Starts connecting; `*out_op` receives the operation (pie_op_take_client gives the client).
 Errors (immediate): PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8; connection failures
 are reported by the operation.
 */
enum PieStatus pie_client_connect_async(const char *url,
                                        const struct PieConnectOptions *options,
                                        struct PieOp **out_op,
                                        struct PieError **out_err);

/*
 Moves the connected client out of a finished pie_client_connect_async operation. The caller
 owns it (pie_client_free). Errors: PIE_STATUS_PENDING (still running), the operation's failure
 status, PIE_STATUS_INVALID_ARGUMENT (not a connect operation, or already taken),
 PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_op_take_client(const struct PieOp *op,
                                  struct PieClient **out_client,
                                  struct PieError **out_err);

/*
 Closes the connection: sends a WebSocket close and waits (about 1 s at most) for the
 server's. Idempotent. Pending calls finish with PIE_STATUS_CLIENT_CLOSED; every instance's
 event stream ends (pie_instance_recv returns PIE_STATUS_CLIENT_CLOSED after queued events;
 event callbacks get their final call with PIE_STATUS_CLIENT_CLOSED); the connection callback
 is called with PIE_STATUS_CLIENT_CLOSED. The handle stays valid (calls on it fail with
 PIE_STATUS_CLIENT_CLOSED) until pie_client_free. May be called from a callback.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_BUSY (from a progress callback).
 */
enum PieStatus pie_client_close(const struct PieClient *client, struct PieError **out_err);

/*
 Frees a client: closes it if needed, then waits until the callbacks already queued for it
 (including final end-of-stream and connection calls) have run. Instances and operations of the
 client stay valid (their calls fail with PIE_STATUS_CLIENT_CLOSED) and must still be freed;
 the connection state is released when the last of them is. When the last libpie object in
 the process is freed, libpie's threads are gone when this returns. Called from inside a
 callback, the wait is skipped and the release happens after the callback returns (no
 deadlock). NULL is a no-op; the handle must not be used afterwards.
 */
void pie_client_free(struct PieClient *client);

/*
 End of the connection: `(user_data, status, message)`; see
 pie_client_set_connection_callback.
 */
typedef void (*PieConnectionCallback)(void *user_data, enum PieStatus status, const char *message);

/*
 Registers `callback(user_data, status, message)`, called once on the client's callback
 thread when the connection ends (status PIE_STATUS_CONNECTION_CLOSED, or
 PIE_STATUS_CLIENT_CLOSED after pie_client_close/free; `message` is borrowed for the call). If
 the connection has already ended it is called at once. Then `drop(user_data)` (may be NULL)
 runs once; it also runs when the registration is replaced or the client is released without
 the callback having been called. Errors: PIE_STATUS_NULL_POINTER (`client`, `callback`),
 PIE_STATUS_IO.
 */
enum PieStatus pie_client_set_connection_callback(const struct PieClient *client,
                                                  PieConnectionCallback callback,
                                                  void *user_data,
                                                  PieDropCallback drop,
                                                  struct PieError **out_err);

/*
 Returns in `*out_fd` a file descriptor that is readable while any poll-mode instance of this
 client (one without an event callback) has an event queued or its stream ended. Add it to
 poll/epoll/select/libuv/a game loop; when it is readable, call pie_instance_recv(instance, 0,
 ...) on the client's instances until each returns something other than PIE_STATUS_OK (TIMEOUT
 when drained): the fd becomes unreadable once nothing is left. Never read from it or close it
 yourself; it is closed when the client is released. Same fd on every call.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_IO.
 */
enum PieStatus pie_client_event_fd(const struct PieClient *client,
                                   int32_t *out_fd,
                                   struct PieError **out_err);

/*
 Authenticates as `username` with `key` (NULL when the server has authentication disabled).
 The key is only used during the call. Errors: PIE_STATUS_NULL_POINTER (`client`, `username`),
 PIE_STATUS_INVALID_UTF8, PIE_STATUS_AUTH (refused; the message is the server's), PIE_STATUS_KEY,
 PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_authenticate(const struct PieClient *client,
                                       const char *username,
                                       const struct PieKey *key,
                                       struct PieError **out_err);

/*
 Asynchronous pie_client_authenticate: `*out_op` receives the operation (no result value).
 */
enum PieStatus pie_client_authenticate_async(const struct PieClient *client,
                                             const char *username,
                                             const struct PieKey *key,
                                             struct PieOp **out_op,
                                             struct PieError **out_err);

/*
 Authenticates with the server's internal token (for tools running next to the engine).
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_AUTH (wrong token; the
 server answers after a delay of up to 3 s), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
 PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_internal_authenticate(const struct PieClient *client,
                                                const char *token,
                                                struct PieError **out_err);

/*
 Asynchronous pie_client_internal_authenticate (no result value).
 */
enum PieStatus pie_client_internal_authenticate_async(const struct PieClient *client,
                                                      const char *token,
                                                      struct PieOp **out_op,
                                                      struct PieError **out_err);

/*
 Round trip to the server. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
 PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_ping(const struct PieClient *client, struct PieError **out_err);

/*
 Asynchronous pie_client_ping (no result value).
 */
enum PieStatus pie_client_ping_async(const struct PieClient *client,
                                     struct PieOp **out_op,
                                     struct PieError **out_err);

/*
 Sends a query (`subject`, `record`) and returns the server's answer in `*out_result`: a
 NUL-terminated UTF-8 string owned by the caller (pie_string_free). Unknown subjects get no
 reply from the real server and end in PIE_STATUS_TIMEOUT. Errors: PIE_STATUS_NULL_POINTER,
 PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER, PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
 PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_query(const struct PieClient *client,
                                const char *subject,
                                const char *record,
                                char **out_result,
                                struct PieError **out_err);

/*
 Asynchronous pie_client_query; the answer is pie_op_result_string(op).
 */
enum PieStatus pie_client_query_async(const struct PieClient *client,
                                      const char *subject,
                                      const char *record,
                                      struct PieOp **out_op,
                                      struct PieError **out_err);

/*
 Whether the server has a program with this hash (64 lowercase hex digits) in its store; the
 answer goes to `*out_exists`. Errors as pie_client_query.
 */
enum PieStatus pie_client_program_exists(const struct PieClient *client,
                                         const char *hash,
                                         bool *out_exists,
                                         struct PieError **out_err);

/*
 Asynchronous pie_client_program_exists; the answer is pie_op_result_bool(op, ...).
 */
enum PieStatus pie_client_program_exists_async(const struct PieClient *client,
                                               const char *hash,
                                               struct PieOp **out_op,
                                               struct PieError **out_err);

/*
 Upload progress: `(user_data, bytes_sent, bytes_total)`; see pie_client_upload_program.
 */
typedef void (*PieProgressCallback)(void *user_data, uint64_t bytes_sent, uint64_t bytes_total);

/*
 Uploads a program (a WebAssembly component, `len` bytes) and writes its hash, 64 hex
 digits and a NUL, into `out_hash` (at least PIE_HASH_BUFFER_SIZE bytes). `progress` (may be
 NULL) is called as progress(user_data, bytes_sent, bytes_total) each time a 256 KiB chunk has
 been handed to the socket, on the calling thread; it must return quickly and must not make
 blocking libpie calls (they fail with PIE_STATUS_BUSY). It is never called after the upload
 has finished. A successful upload always ends with a call where bytes_sent == bytes_total,
 before this function returns.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (not a WebAssembly component:
 refused before sending, as the server would drop the connection), PIE_STATUS_SERVER (refused;
 the server's text), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_upload_program(const struct PieClient *client,
                                         const uint8_t *data,
                                         size_t len,
                                         PieProgressCallback progress,
                                         void *user_data,
                                         char *out_hash,
                                         struct PieError **out_err);

/*
 Asynchronous pie_client_upload_program (`data` is copied); the hash is
 pie_op_result_string(op). `progress` runs on a libpie runtime thread; `user_data` must stay
 valid until the operation finishes.
 */
enum PieStatus pie_client_upload_program_async(const struct PieClient *client,
                                               const uint8_t *data,
                                               size_t len,
                                               PieProgressCallback progress,
                                               void *user_data,
                                               struct PieOp **out_op,
                                               struct PieError **out_err);

/*
 Asks the server to terminate the instance `id` (its attached client then gets an ABORTED
 event). The server reports success for any well-formed UUID, whether or not such an instance
 exists. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (`id` is
 not a UUID), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_terminate_instance(const struct PieClient *client,
                                             const char *id,
                                             struct PieError **out_err);

/*
 Asynchronous pie_client_terminate_instance (no result value).
 */
enum PieStatus pie_client_terminate_instance_async(const struct PieClient *client,
                                                   const char *id,
                                                   struct PieOp **out_op,
                                                   struct PieError **out_err);

/*
 The protocol `client` speaks: PIE_PROTOCOL_JAN2026 or PIE_PROTOCOL_V05 once known (forced by
 pie_connect_options_set_protocol, or detected from the server's first answer),
 PIE_PROTOCOL_AUTO before that and for a NULL `client`. Calls made before detection work on
 either server: each first goes out in January-2026 form and is redone in 0.5 form when the
 server turns out to be 0.5 (one extra round trip, once).
 */
enum PieProtocol pie_client_protocol(const struct PieClient *client);

/*
 Pie 0.5: installs a program from its artifact (`len` bytes: a WebAssembly component, or the
 script source when the manifest says `[runtime] language = "python"` or `"javascript"`) and
 its manifest (TOML text with `[package] name` and `version`), in 256 KiB chunks. Writes the
 artifact's hash (64 hex digits and a NUL) into `out_hash` (at least PIE_HASH_BUFFER_SIZE
 bytes). `progress` (may be NULL) works as for pie_client_upload_program. The server replaces
 an installed name@version silently, whatever `force_overwrite` says (a 0.5.2 defect).
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (empty
 manifest, before anything is sent), PIE_STATUS_SERVER (the server's text verbatim, e.g.
 "Invalid manifest: Failed to parse manifest TOML: ..."), PIE_STATUS_UNSUPPORTED (a
 January-2026 server: use pie_client_upload_program), PIE_STATUS_TIMEOUT,
 PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_install_program(const struct PieClient *client,
                                          const uint8_t *artifact,
                                          size_t len,
                                          const char *manifest,
                                          bool force_overwrite,
                                          PieProgressCallback progress,
                                          void *user_data,
                                          char *out_hash,
                                          struct PieError **out_err);

/*
 Asynchronous pie_client_install_program (`artifact` and `manifest` are copied); the hash is
 pie_op_result_string(op). `progress` runs on a libpie runtime thread; `user_data` must stay
 valid until the operation finishes.
 */
enum PieStatus pie_client_install_program_async(const struct PieClient *client,
                                                const uint8_t *artifact,
                                                size_t len,
                                                const char *manifest,
                                                bool force_overwrite,
                                                PieProgressCallback progress,
                                                void *user_data,
                                                struct PieOp **out_op,
                                                struct PieError **out_err);

/*
 Pie 0.5: whether `name`@`version` is installed or built in (compat-openai@0.1.0, ...); the
 answer goes to `*out_installed`. `version` must be major.minor.patch.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (a name
 or version of the wrong form, naming the parameter, before anything is sent),
 PIE_STATUS_SERVER, PIE_STATUS_UNSUPPORTED (a January-2026 server: use
 pie_client_program_exists), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
 PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_check_program(const struct PieClient *client,
                                        const char *name,
                                        const char *version,
                                        bool *out_installed,
                                        struct PieError **out_err);

/*
 Asynchronous pie_client_check_program; the answer is pie_op_result_bool(op, ...).
 */
enum PieStatus pie_client_check_program_async(const struct PieClient *client,
                                              const char *name,
                                              const char *version,
                                              struct PieOp **out_op,
                                              struct PieError **out_err);

/*
 Pie 0.5: the model's counters as JSON object text (`default.kv_pages_used`,
 `default.kv_pages_total`, ...) in `*out_json`, owned by the caller (pie_string_free).
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_SERVER, PIE_STATUS_UNSUPPORTED (a January-2026
 server), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_model_status(const struct PieClient *client,
                                       char **out_json,
                                       struct PieError **out_err);

/*
 Asynchronous pie_client_model_status; the answer is pie_op_result_string(op).
 */
enum PieStatus pie_client_model_status_async(const struct PieClient *client,
                                             struct PieOp **out_op,
                                             struct PieError **out_err);

/*
 Whether the operation finished: PIE_STATUS_PENDING while it runs, then its final status
 (PIE_STATUS_OK, or the failure, which also goes to `*out_err`). Never blocks.
 Errors: PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_op_poll(const struct PieOp *op, struct PieError **out_err);

/*
 Waits until the operation finishes or `timeout_ms` elapses (the timeout rule of the
 overview). Returns the final status as pie_op_poll, or PIE_STATUS_PENDING if it is still
 running at the timeout. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT
 (`timeout_ms`), PIE_STATUS_BUSY (a wait on a runtime thread, e.g. in a progress callback).
 */
enum PieStatus pie_op_wait(const struct PieOp *op, int32_t timeout_ms, struct PieError **out_err);

/*
 The same as pie_op_poll (kept from 0.1).
 */
enum PieStatus pie_op_error(const struct PieOp *op, struct PieError **out_err);

/*
 Operation finished: `(user_data, op, status)`; see pie_op_set_callback.
 */
typedef void (*PieOpCallback)(void *user_data, struct PieOp *op, enum PieStatus status);

/*
 Registers `callback(user_data, op, status)`, called once when the operation finishes (at once,
 if it already has), on the client's callback thread (for pie_client_connect_async: the thread
 that becomes the new client's callback thread); `op` is the same handle the host holds,
 valid during the call even if the host frees it there. Then `drop(user_data)` runs once (also
 when the callback is replaced or the op is freed without it ever being called). The callback
 may call any libpie function, including pie_op_take_* and pie_op_free on this op.
 Errors: PIE_STATUS_NULL_POINTER (`op` or `callback`), PIE_STATUS_IO (thread start failed).
 */
enum PieStatus pie_op_set_callback(const struct PieOp *op,
                                   PieOpCallback callback,
                                   void *user_data,
                                   PieDropCallback drop,
                                   struct PieError **out_err);

/*
 Cancels the operation if it is still running: it then finishes with PIE_STATUS_CANCELLED
 (its callback, if any, is called with that status). No effect on a finished operation.
 A request already sent may still take effect on the server. Returns PIE_STATUS_OK.
 Errors: PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_op_cancel(const struct PieOp *op, struct PieError **out_err);

/*
 The text result of a finished query or upload_program operation (the query's answer, or the
 program hash): NUL-terminated UTF-8, borrowed, valid until pie_op_free(op). NULL if the
 operation is still running, failed, has no text result, or `op` is NULL.
 */
const char *pie_op_result_string(const struct PieOp *op);

/*
 The boolean result of a finished pie_client_program_exists_async operation, written to
 `*out` on success. Errors: PIE_STATUS_PENDING (still running), the operation's failure
 status, PIE_STATUS_INVALID_ARGUMENT (no boolean result), PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_op_result_bool(const struct PieOp *op, bool *out, struct PieError **out_err);

/*
 Frees an operation. A still-running operation is cancelled first (its callback, if any, is
 still called, with PIE_STATUS_CANCELLED). Results not taken are freed with it. NULL is a no-op.
 May be called from inside the operation's own callback.
 */
void pie_op_free(struct PieOp *op);

/*
 Launches the program with hash `hash` with `argc` arguments `argv` (UTF-8, copied; `argv` may
 be NULL when `argc` is 0). The instance goes to `*out_instance` (owned by the caller:
 pie_instance_free). A `detached` instance runs without sending events to this connection:
 attach it to receive them. Errors: PIE_STATUS_NULL_POINTER (also for a NULL argv[i]),
 PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (e.g. program not found; the server's text),
 PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_launch_instance(const struct PieClient *client,
                                          const char *hash,
                                          const char *const *argv,
                                          size_t argc,
                                          bool detached,
                                          struct PieInstance **out_instance,
                                          struct PieError **out_err);

/*
 Asynchronous pie_client_launch_instance; the instance is pie_op_take_instance(op, ...).
 */
enum PieStatus pie_client_launch_instance_async(const struct PieClient *client,
                                                const char *hash,
                                                const char *const *argv,
                                                size_t argc,
                                                bool detached,
                                                struct PieOp **out_op,
                                                struct PieError **out_err);

/*
 Launches an inferlet from the server's registry by `name` ("namespace/name@version" or
 "name@version"; the server may download it first, so this may take longer than a request
 timeout). Otherwise as pie_client_launch_instance.
 */
enum PieStatus pie_client_launch_instance_from_registry(const struct PieClient *client,
                                                        const char *name,
                                                        const char *const *argv,
                                                        size_t argc,
                                                        bool detached,
                                                        struct PieInstance **out_instance,
                                                        struct PieError **out_err);

/*
 Asynchronous pie_client_launch_instance_from_registry (pie_op_take_instance).
 */
enum PieStatus pie_client_launch_instance_from_registry_async(const struct PieClient *client,
                                                              const char *name,
                                                              const char *const *argv,
                                                              size_t argc,
                                                              bool detached,
                                                              struct PieOp **out_op,
                                                              struct PieError **out_err);

/*
 Pie 0.5: launches the installed or built-in program `inferlet` ("name" for the latest
 installed version, or "name@major.minor.patch") with `input` (JSON text, copied; for
 programs with `call = "kwargs"` a JSON object of keyword arguments, e.g. "{\"n\": 5}"). The
 instance goes to `*out_instance` (pie_instance_free).

 Attached (`detached` false): the instance receives the process's events; closing the
 connection kills the process. Detached: the 0.5.2 server does not say which process it
 started; libpie lists the processes before and after the launch (its own launches on this
 client wait meanwhile) and gives the handle the id of the one new process with this program
 and exactly this input. When there is none (it already finished) or more than one (another
 client launched the same program with the same input at that moment), pie_instance_id is
 the empty string: the process was launched, its id is unknown.

 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (input
 that is not JSON, an inferlet name or version of the wrong form; the message names the
 parameter; nothing is sent), PIE_STATUS_SERVER (e.g. "program x@1.0.0 is not installed
 (looked in ...)"; the server's text), PIE_STATUS_UNSUPPORTED (a January-2026 server: use
 pie_client_launch_instance_from_registry), PIE_STATUS_TIMEOUT (also an engine that has
 wedged), PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_launch_process(const struct PieClient *client,
                                         const char *inferlet,
                                         const char *input,
                                         bool detached,
                                         struct PieInstance **out_instance,
                                         struct PieError **out_err);

/*
 Asynchronous pie_client_launch_process (pie_op_take_instance).
 */
enum PieStatus pie_client_launch_process_async(const struct PieClient *client,
                                               const char *inferlet,
                                               const char *input,
                                               bool detached,
                                               struct PieOp **out_op,
                                               struct PieError **out_err);

/*
 Attaches this connection to the running instance `id` (a UUID, e.g. from
 pie_client_list_instances or a detached launch), so that its events come here. The new handle
 goes to `*out_instance` (pie_instance_free). Errors: PIE_STATUS_NULL_POINTER,
 PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (no such instance, or already attached elsewhere),
 PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_attach_instance(const struct PieClient *client,
                                          const char *id,
                                          struct PieInstance **out_instance,
                                          struct PieError **out_err);

/*
 Asynchronous pie_client_attach_instance (pie_op_take_instance).
 */
enum PieStatus pie_client_attach_instance_async(const struct PieClient *client,
                                                const char *id,
                                                struct PieOp **out_op,
                                                struct PieError **out_err);

/*
 Moves the instance out of a finished launch/attach operation. The caller owns it
 (pie_instance_free). Errors as pie_op_take_client.
 */
enum PieStatus pie_op_take_instance(const struct PieOp *op,
                                    struct PieInstance **out_instance,
                                    struct PieError **out_err);

/*
 The instance id (a lowercase UUID): NUL-terminated, borrowed, valid until
 pie_instance_free(instance). NULL if `instance` is NULL.
 */
const char *pie_instance_id(const struct PieInstance *instance);

/*
 True if the instance was launched detached (this handle then cannot receive or send; attach
 it with pie_client_attach_instance). False for NULL.
 */
bool pie_instance_is_detached(const struct PieInstance *instance);

/*
 Sends a text message (UTF-8, copied) to the instance. The server gives no reply; OK means it
 was sent. On Pie 0.5 this is `signal_process`, which fails silently: a message to a process
 that has ended, or that another connection is attached to, is dropped without any error.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_DETACHED,
 PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_instance_send(const struct PieInstance *instance,
                                 const char *message,
                                 struct PieError **out_err);

/*
 Asynchronous pie_instance_send (no result value).
 */
enum PieStatus pie_instance_send_async(const struct PieInstance *instance,
                                       const char *message,
                                       struct PieOp **out_op,
                                       struct PieError **out_err);

/*
 Uploads `len` bytes (copied) to the instance as a blob. `progress` as in
 pie_client_upload_program. Warning: the January-2026 server stops serving the connection after
 a blob upload. On Pie 0.5 this is `transfer_file`, fire-and-forget: OK means every chunk was
 handed to the socket, not that the process got the file. The server reports no failure (bad
 hash, unknown process), and it drops a file that arrives before the inferlet waits for one in
 `receive_file()`: send a file only after the inferlet said it is ready (e.g. a message).
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_DETACHED, PIE_STATUS_SERVER,
 PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_instance_upload_blob(const struct PieInstance *instance,
                                        const uint8_t *data,
                                        size_t len,
                                        PieProgressCallback progress,
                                        void *user_data,
                                        struct PieError **out_err);

/*
 Asynchronous pie_instance_upload_blob (no result value); `progress` runs on a libpie runtime
 thread; `user_data` must stay valid until the operation finishes.
 */
enum PieStatus pie_instance_upload_blob_async(const struct PieInstance *instance,
                                              const uint8_t *data,
                                              size_t len,
                                              PieProgressCallback progress,
                                              void *user_data,
                                              struct PieOp **out_op,
                                              struct PieError **out_err);

/*
 Terminates the instance (as pie_client_terminate_instance with its id). Its stream then ends
 with an ABORTED event. Errors as pie_client_terminate_instance.
 */
enum PieStatus pie_instance_terminate(const struct PieInstance *instance,
                                      struct PieError **out_err);

/*
 Asynchronous pie_instance_terminate (no result value).
 */
enum PieStatus pie_instance_terminate_async(const struct PieInstance *instance,
                                            struct PieOp **out_op,
                                            struct PieError **out_err);

/*
 Receives the next event, in server order, into `*out_event` (owned by the caller:
 pie_event_free), waiting at most `timeout_ms` (the timeout rule of the overview).
 Returns PIE_STATUS_OK with an event; PIE_STATUS_TIMEOUT if none came in time;
 PIE_STATUS_STREAM_ENDED after the terminal event was received; PIE_STATUS_CONNECTION_CLOSED
 or PIE_STATUS_CLIENT_CLOSED once the connection ended and every queued event was received;
 PIE_STATUS_DETACHED for a detached instance; PIE_STATUS_BUSY if the instance has an event
 callback; PIE_STATUS_NULL_POINTER; PIE_STATUS_INVALID_ARGUMENT (`timeout_ms`).
 */
enum PieStatus pie_instance_recv(const struct PieInstance *instance,
                                 int32_t timeout_ms,
                                 struct PieEvent **out_event,
                                 struct PieError **out_err);

/*
 Asynchronous pie_instance_recv: the operation finishes with the statuses listed there; the
 event is pie_op_take_event(op, ...). Errors (immediate): PIE_STATUS_NULL_POINTER,
 PIE_STATUS_INVALID_ARGUMENT, PIE_STATUS_BUSY.
 */
enum PieStatus pie_instance_recv_async(const struct PieInstance *instance,
                                       int32_t timeout_ms,
                                       struct PieOp **out_op,
                                       struct PieError **out_err);

/*
 Instance events: `(user_data, status, event)`; see pie_instance_set_callback.
 */
typedef void (*PieEventCallback)(void *user_data,
                                 enum PieStatus status,
                                 const struct PieEvent *event);

/*
 Switches the instance to callback delivery: from now on every event is passed to
 `callback(user_data, PIE_STATUS_OK, event)` — `event` borrowed, valid only during the call —
 in server order, on the client's callback thread (one thread per client, never a network
 thread; callbacks of one client never run concurrently). When the stream ends, one final call
 `callback(user_data, status, NULL)` tells why (PIE_STATUS_STREAM_ENDED after the terminal
 event, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED), then `drop(user_data)` (may be
 NULL) runs once; it also runs, after the last call, when the callback is replaced by another
 pie_instance_set_callback or the instance is freed. Events already queued are delivered too.
 A callback may call any libpie function, including pie_instance_free on this instance or
 pie_client_free on its client (both deferred until the callback returns). pie_instance_recv
 then returns PIE_STATUS_BUSY until the stream has ended (finish or cancel pending
 pie_instance_recv_async operations first: an event they take is not passed to the callback).
 Errors: PIE_STATUS_NULL_POINTER (`instance`, `callback`), PIE_STATUS_DETACHED, PIE_STATUS_IO.
 */
enum PieStatus pie_instance_set_callback(const struct PieInstance *instance,
                                         PieEventCallback callback,
                                         void *user_data,
                                         PieDropCallback drop,
                                         struct PieError **out_err);

/*
 Frees the instance handle. The instance keeps running on the server (terminate it first if
 needed). With an event callback: no call starts after this, and `drop(user_data)` has run when
 it returns — except when called from a callback of the same client, where the release
 happens right after the callback returns. NULL is a no-op.
 */
void pie_instance_free(struct PieInstance *instance);

/*
 Lists the instances on the server visible to this session; `*out_list` is owned by the caller
 (pie_instance_list_free). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
 PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
 */
enum PieStatus pie_client_list_instances(const struct PieClient *client,
                                         struct PieInstanceList **out_list,
                                         struct PieError **out_err);

/*
 Asynchronous pie_client_list_instances (pie_op_take_instance_list).
 */
enum PieStatus pie_client_list_instances_async(const struct PieClient *client,
                                               struct PieOp **out_op,
                                               struct PieError **out_err);

/*
 Moves the list out of a finished pie_client_list_instances_async operation. The caller owns
 it (pie_instance_list_free). Errors as pie_op_take_client.
 */
enum PieStatus pie_op_take_instance_list(const struct PieOp *op,
                                         struct PieInstanceList **out_list,
                                         struct PieError **out_err);

/*
 Number of instances in the list (0 for NULL).
 */
size_t pie_instance_list_len(const struct PieInstanceList *list);

/*
 Id of entry `index` (borrowed). NULL if `list` is NULL or `index` out of range.
 */
const char *pie_instance_list_id(const struct PieInstanceList *list, size_t index);

/*
 User name of the session that launched entry `index` (borrowed; empty if the server did not
 say). NULL if `list` is NULL or `index` out of range.
 */
const char *pie_instance_list_username(const struct PieInstanceList *list, size_t index);

/*
 Writes the number of launch arguments of entry `index` to `*out_count`.
 Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (index out of range).
 */
enum PieStatus pie_instance_list_argument_count(const struct PieInstanceList *list,
                                                size_t index,
                                                size_t *out_count,
                                                struct PieError **out_err);

/*
 Launch argument `arg_index` of entry `index` (borrowed). NULL if out of range or `list` is NULL.
 */
const char *pie_instance_list_argument(const struct PieInstanceList *list,
                                       size_t index,
                                       size_t arg_index);

/*
 State of a listed instance. Stable numbers.
 */
typedef enum PieInstanceStatus {
  /*
   Running, with a client attached.
   */
  PIE_INSTANCE_STATUS_ATTACHED = 0,
  /*
   Running with no client attached.
   */
  PIE_INSTANCE_STATUS_DETACHED = 1,
  /*
   Finished; still listed by the server.
   */
  PIE_INSTANCE_STATUS_FINISHED = 2,
} PieInstanceStatus;

/*
 Writes the state of entry `index` to `*out_status`. Errors as
 pie_instance_list_argument_count.
 */
enum PieStatus pie_instance_list_status(const struct PieInstanceList *list,
                                        size_t index,
                                        enum PieInstanceStatus *out_status,
                                        struct PieError **out_err);

/*
 Writes the whole seconds since entry `index` was launched to `*out_secs`. Errors as
 pie_instance_list_argument_count.
 */
enum PieStatus pie_instance_list_elapsed_secs(const struct PieInstanceList *list,
                                              size_t index,
                                              uint64_t *out_secs,
                                              struct PieError **out_err);

/*
 Writes the KV-cache pages used by entry `index` to `*out_pages` (always 0 on current servers).
 Errors as pie_instance_list_argument_count.
 */
enum PieStatus pie_instance_list_kv_pages_used(const struct PieInstanceList *list,
                                               size_t index,
                                               uint32_t *out_pages,
                                               struct PieError **out_err);

/*
 Frees a list. NULL is a no-op.
 */
void pie_instance_list_free(struct PieInstanceList *list);

/*
 What a PieEvent is. Stable numbers.
 */
typedef enum PieEventKind {
  /*
   A text message sent by the instance (pie_event_text).
   */
  PIE_EVENT_KIND_MESSAGE = 0,
  /*
   Terminal: the program finished; the text is its return value.
   */
  PIE_EVENT_KIND_COMPLETED = 1,
  /*
   Terminal: the instance was terminated (text "Signal termination").
   */
  PIE_EVENT_KIND_ABORTED = 2,
  /*
   Terminal: the program failed; the text says why.
   */
  PIE_EVENT_KIND_EXCEPTION = 3,
  /*
   Terminal: the engine killed the instance (out of memory for an older instance).
   */
  PIE_EVENT_KIND_SERVER_ERROR = 4,
  /*
   Terminal: out of resources (not sent by current servers).
   */
  PIE_EVENT_KIND_OUT_OF_RESOURCES = 5,
  /*
   A blob of bytes sent by the instance (pie_event_blob).
   */
  PIE_EVENT_KIND_BLOB = 6,
  /*
   Text the instance wrote to its standard output.
   */
  PIE_EVENT_KIND_STDOUT = 7,
  /*
   Text the instance wrote to its standard error.
   */
  PIE_EVENT_KIND_STDERR = 8,
  /*
   Terminal: an event code this library does not know; the text is the server's message.
   */
  PIE_EVENT_KIND_UNKNOWN = 9,
  /*
   Events were discarded because the instance's queue limit was reached
   (pie_event_dropped tells how many); the stream goes on after it.
   */
  PIE_EVENT_KIND_OVERFLOW = 10,
} PieEventKind;

/*
 The kind of the event (PIE_EVENT_KIND_UNKNOWN if `event` is NULL).
 */
enum PieEventKind pie_event_kind(const struct PieEvent *event);

/*
 The event's text (every kind but PIE_EVENT_KIND_BLOB): NUL-terminated UTF-8, borrowed, valid
 as long as the event. If `out_len` is not NULL it receives the length in bytes without the
 NUL (the text may itself contain NUL bytes). Returns NULL (and length 0) for a blob event or
 a NULL `event`.
 */
const char *pie_event_text(const struct PieEvent *event, size_t *out_len);

/*
 The bytes of a PIE_EVENT_KIND_BLOB event, borrowed, valid as long as the event; the length
 goes to `*out_len` (required). Never NULL for a blob event, even when empty. Returns NULL (and
 length 0) for other kinds or NULL arguments.
 */
const uint8_t *pie_event_blob(const struct PieEvent *event, size_t *out_len);

/*
 The name a Pie 0.5 inferlet gave a file it sent (PIE_EVENT_KIND_BLOB events of 0.5
 servers, `send-file-as` and friends): NUL-terminated UTF-8, borrowed, valid as long as the
 event. The name is the inferlet's suggestion: sanitise it before using it as a path. NULL
 when the file has no name, for January-2026 blobs, for other kinds and for a NULL `event`.
 */
const char *pie_event_blob_name(const struct PieEvent *event);

/*
 True if this is the last event of its instance (COMPLETED, ABORTED, EXCEPTION, SERVER_ERROR,
 OUT_OF_RESOURCES, UNKNOWN). False for NULL.
 */
bool pie_event_is_terminal(const struct PieEvent *event);

/*
 For PIE_EVENT_KIND_OVERFLOW: how many events were discarded at this point. 0 otherwise.
 */
uint64_t pie_event_dropped(const struct PieEvent *event);

/*
 Frees an event the caller owns. NULL is a no-op. Never call it on the borrowed event passed
 to an event callback.
 */
void pie_event_free(struct PieEvent *event);

/*
 Moves the event out of a finished pie_instance_recv_async operation. The caller owns it
 (pie_event_free). Errors: PIE_STATUS_PENDING (still running), the operation's failure status
 (a recv that timed out has PIE_STATUS_TIMEOUT, an ended stream PIE_STATUS_STREAM_ENDED, ...),
 PIE_STATUS_INVALID_ARGUMENT (not a recv operation, or already taken), PIE_STATUS_NULL_POINTER.
 */
enum PieStatus pie_op_take_event(const struct PieOp *op,
                                 struct PieEvent **out_event,
                                 struct PieError **out_err);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PIE_H */
