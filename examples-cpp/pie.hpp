// pie.hpp — a small header-only C++17 wrapper over libpie's C API (pie.h).
//
// * Every libpie object is held by a move-only owner (std::unique_ptr with the object's own
//   free function), so nothing leaks and nothing is freed twice.
// * Failures throw pie::Error (a std::runtime_error carrying the PieStatus).
// * The thread-safety rules are libpie's: every object may be used from any thread.
//
// Instance::recv returns std::nullopt on timeout and throws pie::Error when the stream is over
// (PIE_STATUS_STREAM_ENDED after the terminal event, or the connection's end).
#ifndef PIE_HPP
#define PIE_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pie.h"

namespace pie {

// A failed libpie call: the status code and libpie's message.
class Error : public std::runtime_error {
 public:
  Error(PieStatus status, const std::string& message)
      : std::runtime_error(std::string(pie_status_name(static_cast<int32_t>(status))) + ": " +
                           message),
        status_(status) {}
  PieStatus status() const noexcept { return status_; }

 private:
  PieStatus status_;
};

namespace detail {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

// Throws if `status` is not OK, with the message from `*err` (which it frees). It takes the
// address of the caller's error pointer, not its value: in `check(pie_x(..., &err), &err)`
// the order in which arguments are evaluated is unspecified, so a value could be read before
// pie_x wrote it.
inline void check(PieStatus status, PieError** errp) {
  if (status == PIE_STATUS_OK) return;
  Owned<PieError, pie_error_free> owned(errp ? *errp : nullptr);
  const char* msg = owned ? pie_error_message(owned.get()) : nullptr;
  throw Error(status, msg ? msg : "");
}

// argv-style view of a vector of strings, valid while `args` lives.
inline std::vector<const char*> c_args(const std::vector<std::string>& args) {
  std::vector<const char*> out;
  out.reserve(args.size());
  for (const auto& a : args) out.push_back(a.c_str());
  return out;
}

}  // namespace detail

// The blake3 hash libpie and the server use for programs and blobs (64 hex digits).
inline std::string hash_blob(const void* data, std::size_t len) {
  char out[PIE_HASH_BUFFER_SIZE];
  PieError* err = nullptr;
  detail::check(pie_hash_blob(static_cast<const uint8_t*>(data), len, out, sizeof out, &err), &err);
  return out;
}

// One event, owned.
class Event {
 public:
  explicit Event(PieEvent* e) : e_(e) {}
  PieEventKind kind() const { return pie_event_kind(e_.get()); }
  bool is_terminal() const { return pie_event_is_terminal(e_.get()); }
  // The text of any kind but BLOB (may contain NUL bytes).
  std::string text() const {
    std::size_t len = 0;
    const char* t = pie_event_text(e_.get(), &len);
    return t ? std::string(t, len) : std::string();
  }
  std::vector<uint8_t> blob() const {
    std::size_t len = 0;
    const uint8_t* b = pie_event_blob(e_.get(), &len);
    return b ? std::vector<uint8_t>(b, b + len) : std::vector<uint8_t>();
  }
  // Pie 0.5: the name a file (BLOB) was sent with; empty when it has none.
  std::string blob_name() const {
    const char* n = pie_event_blob_name(e_.get());
    return n ? std::string(n) : std::string();
  }
  uint64_t dropped() const { return pie_event_dropped(e_.get()); }
  const PieEvent* get() const noexcept { return e_.get(); }

 private:
  detail::Owned<PieEvent, pie_event_free> e_;
};

// A private key (OpenSSH, PKCS#8, PKCS#1 or SEC1 file).
class Key {
 public:
  static Key load_file(const std::string& path, const char* passphrase = nullptr) {
    PieKey* k = nullptr;
    PieError* err = nullptr;
    detail::check(pie_key_load_file(path.c_str(), passphrase, &k, &err), &err);
    return Key(k);
  }
  const PieKey* get() const noexcept { return k_.get(); }

 private:
  explicit Key(PieKey* k) : k_(k) {}
  detail::Owned<PieKey, pie_key_free> k_;
};

class Instance {
 public:
  explicit Instance(PieInstance* i) : i_(i) {}
  std::string id() const { return pie_instance_id(i_.get()); }
  bool is_detached() const { return pie_instance_is_detached(i_.get()); }
  void send(const std::string& message) const {
    PieError* err = nullptr;
    detail::check(pie_instance_send(i_.get(), message.c_str(), &err), &err);
  }
  void upload_blob(const std::vector<uint8_t>& blob) const {
    PieError* err = nullptr;
    detail::check(
        pie_instance_upload_blob(i_.get(), blob.data(), blob.size(), nullptr, nullptr, &err),
        &err);
  }
  void terminate() const {
    PieError* err = nullptr;
    detail::check(pie_instance_terminate(i_.get(), &err), &err);
  }
  // The next event; std::nullopt if none came within timeout_ms (-1: wait forever).
  std::optional<Event> recv(int32_t timeout_ms = -1) const {
    PieEvent* e = nullptr;
    PieError* err = nullptr;
    PieStatus s = pie_instance_recv(i_.get(), timeout_ms, &e, &err);
    if (s == PIE_STATUS_TIMEOUT) {
      pie_error_free(err);
      return std::nullopt;
    }
    detail::check(s, &err);
    return Event(e);
  }
  PieInstance* get() const noexcept { return i_.get(); }

 private:
  detail::Owned<PieInstance, pie_instance_free> i_;
};

// One entry of Client::list_instances.
struct InstanceInfo {
  std::string id;
  std::string username;
  std::vector<std::string> arguments;
  PieInstanceStatus status;
  uint64_t elapsed_secs;
};

class Client {
 public:
  static Client connect(const std::string& url, const PieConnectOptions* options = nullptr) {
    PieClient* c = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_connect(url.c_str(), options, &c, &err), &err);
    return Client(c);
  }
  void authenticate(const std::string& username, const Key* key = nullptr) const {
    PieError* err = nullptr;
    detail::check(
        pie_client_authenticate(c_.get(), username.c_str(), key ? key->get() : nullptr, &err),
        &err);
  }
  void internal_authenticate(const std::string& token) const {
    PieError* err = nullptr;
    detail::check(pie_client_internal_authenticate(c_.get(), token.c_str(), &err), &err);
  }
  void ping() const {
    PieError* err = nullptr;
    detail::check(pie_client_ping(c_.get(), &err), &err);
  }
  std::string query(const std::string& subject, const std::string& record) const {
    char* out = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_query(c_.get(), subject.c_str(), record.c_str(), &out, &err), &err);
    detail::Owned<char, pie_string_free> owned(out);
    return owned.get();
  }
  bool program_exists(const std::string& hash) const {
    bool exists = false;
    PieError* err = nullptr;
    detail::check(pie_client_program_exists(c_.get(), hash.c_str(), &exists, &err), &err);
    return exists;
  }
  std::string upload_program(const std::vector<uint8_t>& program) const {
    char hash[PIE_HASH_BUFFER_SIZE];
    PieError* err = nullptr;
    detail::check(pie_client_upload_program(c_.get(), program.data(), program.size(), nullptr,
                                            nullptr, hash, &err),
                  &err);
    return hash;
  }
  Instance launch(const std::string& hash, const std::vector<std::string>& args = {},
                  bool detached = false) const {
    auto argv = detail::c_args(args);
    PieInstance* i = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_launch_instance(c_.get(), hash.c_str(), argv.data(), argv.size(),
                                             detached, &i, &err),
                  &err);
    return Instance(i);
  }
  Instance launch_from_registry(const std::string& name,
                                const std::vector<std::string>& args = {},
                                bool detached = false) const {
    auto argv = detail::c_args(args);
    PieInstance* i = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_launch_instance_from_registry(c_.get(), name.c_str(), argv.data(),
                                                           argv.size(), detached, &i, &err),
                  &err);
    return Instance(i);
  }
  // The protocol in use (PIE_PROTOCOL_AUTO until detected).
  PieProtocol protocol() const { return pie_client_protocol(c_.get()); }
  // Pie 0.5: install an artifact (wasm component, or script source) with its TOML manifest.
  std::string install_program(const std::vector<uint8_t>& artifact, const std::string& manifest,
                              bool force_overwrite = false) const {
    char hash[PIE_HASH_BUFFER_SIZE];
    PieError* err = nullptr;
    detail::check(pie_client_install_program(c_.get(), artifact.data(), artifact.size(),
                                             manifest.c_str(), force_overwrite, nullptr, nullptr,
                                             hash, &err),
                  &err);
    return hash;
  }
  // Pie 0.5: whether name@version (major.minor.patch) is installed or built in.
  bool check_program(const std::string& name, const std::string& version) const {
    bool installed = false;
    PieError* err = nullptr;
    detail::check(pie_client_check_program(c_.get(), name.c_str(), version.c_str(), &installed,
                                           &err),
                  &err);
    return installed;
  }
  // Pie 0.5: launch "name" or "name@version" with JSON input (see pie_client_launch_process
  // for the id of a detached launch).
  Instance launch_process(const std::string& inferlet, const std::string& input_json = "{}",
                          bool detached = false) const {
    PieInstance* i = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_launch_process(c_.get(), inferlet.c_str(), input_json.c_str(),
                                            detached, &i, &err),
                  &err);
    return Instance(i);
  }
  // Pie 0.5: the model's counters as JSON text.
  std::string model_status() const {
    char* out = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_model_status(c_.get(), &out, &err), &err);
    detail::Owned<char, pie_string_free> owned(out);
    return owned.get();
  }
  Instance attach(const std::string& id) const {
    PieInstance* i = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_attach_instance(c_.get(), id.c_str(), &i, &err), &err);
    return Instance(i);
  }
  std::vector<InstanceInfo> list_instances() const {
    PieInstanceList* raw = nullptr;
    PieError* err = nullptr;
    detail::check(pie_client_list_instances(c_.get(), &raw, &err), &err);
    detail::Owned<PieInstanceList, pie_instance_list_free> list(raw);
    std::vector<InstanceInfo> out;
    for (std::size_t i = 0; i < pie_instance_list_len(list.get()); i++) {
      InstanceInfo info{pie_instance_list_id(list.get(), i),
                        pie_instance_list_username(list.get(), i),
                        {},
                        PIE_INSTANCE_STATUS_ATTACHED,
                        0};
      std::size_t n = 0;
      detail::check(pie_instance_list_argument_count(list.get(), i, &n, &err), &err);
      for (std::size_t a = 0; a < n; a++)
        info.arguments.emplace_back(pie_instance_list_argument(list.get(), i, a));
      detail::check(pie_instance_list_status(list.get(), i, &info.status, &err), &err);
      detail::check(pie_instance_list_elapsed_secs(list.get(), i, &info.elapsed_secs, &err), &err);
      out.push_back(std::move(info));
    }
    return out;
  }
  void terminate_instance(const std::string& id) const {
    PieError* err = nullptr;
    detail::check(pie_client_terminate_instance(c_.get(), id.c_str(), &err), &err);
  }
  // Closes the connection (idempotent); the destructor frees the handle.
  void close() const {
    PieError* err = nullptr;
    detail::check(pie_client_close(c_.get(), &err), &err);
  }
  PieClient* get() const noexcept { return c_.get(); }

 private:
  explicit Client(PieClient* c) : c_(c) {}
  detail::Owned<PieClient, pie_client_free> c_;
};

}  // namespace pie

#endif  // PIE_HPP
