// Package pie is the Go binding of libpie, the client library of the Pie programmable LLM
// serving system. It wraps libpie's C API (pie.h) with cgo.
//
// Build flags come from the environment, e.g. against a source checkout:
//
//	CGO_CFLAGS="-I$ROOT/include" CGO_LDFLAGS="-L$ROOT/target/debug -Wl,-rpath,$ROOT/target/debug"
//
// or against an installation: CGO_CFLAGS=$(pkg-config --cflags pie), CGO_LDFLAGS=$(pkg-config
// --libs pie). Every type is safe for concurrent use. Close what you open (Client, Instance,
// Key); a finalizer frees what is forgotten, but only the garbage collector decides when.
package pie

/*
#cgo LDFLAGS: -lpie
#include <stdint.h>
#include <stdlib.h>
#include "pie.h"

void pieGoProgressTrampoline(void *user_data, uint64_t sent, uint64_t total);

// cgo cannot pass a C function pointer or turn an integer handle into a void* without vet
// complaints, so these helpers do it on the C side.
static enum PieStatus pie_go_upload_program(const struct PieClient *c, const uint8_t *data,
                                            size_t len, uintptr_t handle, char *out_hash,
                                            struct PieError **err) {
  return pie_client_upload_program(c, data, len, handle ? pieGoProgressTrampoline : NULL,
                                   (void *)handle, out_hash, err);
}
static enum PieStatus pie_go_install_program(const struct PieClient *c, const uint8_t *data,
                                             size_t len, const char *manifest, bool force,
                                             uintptr_t handle, char *out_hash,
                                             struct PieError **err) {
  return pie_client_install_program(c, data, len, manifest, force,
                                    handle ? pieGoProgressTrampoline : NULL, (void *)handle,
                                    out_hash, err);
}
static enum PieStatus pie_go_upload_blob(const struct PieInstance *i, const uint8_t *data,
                                         size_t len, uintptr_t handle, struct PieError **err) {
  return pie_instance_upload_blob(i, data, len, handle ? pieGoProgressTrampoline : NULL,
                                  (void *)handle, err);
}
*/
import "C"

import (
	"context"
	"errors"
	"runtime"
	"runtime/cgo"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Status is libpie's status code (PieStatus). The numbers are stable.
type Status int

// The status codes of pie.h.
const (
	StatusOK               Status = C.PIE_STATUS_OK
	StatusInvalidArgument  Status = C.PIE_STATUS_INVALID_ARGUMENT
	StatusConnectionFailed Status = C.PIE_STATUS_CONNECTION_FAILED
	StatusConnectionClosed Status = C.PIE_STATUS_CONNECTION_CLOSED
	StatusClientClosed     Status = C.PIE_STATUS_CLIENT_CLOSED
	StatusTimeout          Status = C.PIE_STATUS_TIMEOUT
	StatusServer           Status = C.PIE_STATUS_SERVER
	StatusAuth             Status = C.PIE_STATUS_AUTH
	StatusKey              Status = C.PIE_STATUS_KEY
	StatusProtocol         Status = C.PIE_STATUS_PROTOCOL
	StatusDetached         Status = C.PIE_STATUS_DETACHED
	StatusStreamEnded      Status = C.PIE_STATUS_STREAM_ENDED
	StatusIO               Status = C.PIE_STATUS_IO
	StatusInternal         Status = C.PIE_STATUS_INTERNAL
	StatusNullPointer      Status = C.PIE_STATUS_NULL_POINTER
	StatusInvalidUTF8      Status = C.PIE_STATUS_INVALID_UTF8
	StatusPanic            Status = C.PIE_STATUS_PANIC
	StatusPending          Status = C.PIE_STATUS_PENDING
	StatusBusy             Status = C.PIE_STATUS_BUSY
	StatusBufferTooSmall   Status = C.PIE_STATUS_BUFFER_TOO_SMALL
	StatusCancelled        Status = C.PIE_STATUS_CANCELLED
	StatusUnsupported      Status = C.PIE_STATUS_UNSUPPORTED
)

// String is the C name of the status, e.g. "PIE_STATUS_TIMEOUT".
func (s Status) String() string {
	return C.GoString(C.pie_status_name(C.int32_t(s)))
}

// Error is a failed libpie call: its status code and libpie's message (for server refusals,
// the server's text verbatim).
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string { return "pie: " + e.Status.String() + ": " + e.Message }

// Is makes errors.Is(err, pie.ErrTimeout) (and the other Err* values) match on the status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// Sentinels for errors.Is: they match any *Error with the same status.
var (
	ErrInvalidArgument  = &Error{Status: StatusInvalidArgument}
	ErrConnectionFailed = &Error{Status: StatusConnectionFailed}
	ErrConnectionClosed = &Error{Status: StatusConnectionClosed}
	ErrClientClosed     = &Error{Status: StatusClientClosed}
	ErrTimeout          = &Error{Status: StatusTimeout}
	ErrServer           = &Error{Status: StatusServer}
	ErrAuth             = &Error{Status: StatusAuth}
	ErrKey              = &Error{Status: StatusKey}
	ErrDetached         = &Error{Status: StatusDetached}
	ErrStreamEnded      = &Error{Status: StatusStreamEnded}
	ErrUnsupported      = &Error{Status: StatusUnsupported}
)

// Protocol is the protocol a connection speaks (PieProtocol).
type Protocol int

// Protocols. As an option, ProtocolAuto (the zero value) detects the server's protocol; from
// Client.Protocol it means "not detected yet".
const (
	ProtocolAuto    Protocol = C.PIE_PROTOCOL_AUTO
	ProtocolJan2026 Protocol = C.PIE_PROTOCOL_JAN2026
	ProtocolV05     Protocol = C.PIE_PROTOCOL_V05
)

// String names the protocol, e.g. "V05".
func (p Protocol) String() string {
	switch p {
	case ProtocolAuto:
		return "Auto"
	case ProtocolJan2026:
		return "Jan2026"
	case ProtocolV05:
		return "V05"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// ErrHandleClosed is returned by methods called after Close.
var ErrHandleClosed = errors.New("pie: handle already closed")

// check turns a status and its error object (freed here) into a Go error. It takes the
// address of the error pointer: in check(C.pie_x(..., &cerr), &cerr) Go does not specify
// whether a plain variable argument is read before or after the call, so passing cerr's value
// could miss what pie_x wrote.
func check(st C.enum_PieStatus, cerrp **C.struct_PieError) error {
	if st == C.PIE_STATUS_OK {
		return nil // libpie writes *out_err only on failure
	}
	msg := ""
	if cerr := *cerrp; cerr != nil {
		*cerrp = nil
		msg = C.GoString(C.pie_error_message(cerr))
		C.pie_error_free(cerr)
	}
	return &Error{Status: Status(st), Message: msg}
}

// cString copies s into C memory; the caller frees it.
func cString(s string) *C.char { return C.CString(s) }

// cArgs builds a C argv in C memory (cgo forbids passing Go memory that holds pointers).
func cArgs(args []string) (**C.char, func()) {
	if len(args) == 0 {
		return nil, func() {}
	}
	size := C.size_t(len(args)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
	arr := (*[1 << 28]*C.char)(C.malloc(size))[:len(args):len(args)]
	for i, a := range args {
		arr[i] = C.CString(a)
	}
	return &arr[0], func() {
		for _, p := range arr {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(&arr[0]))
	}
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// Version is the version of the libpie shared library in use, e.g. "0.1.0".
func Version() string { return C.GoString(C.pie_version()) }

// HashBlob is the hash libpie and the server use for programs and blobs: blake3, 64 lowercase
// hex digits.
func HashBlob(data []byte) string {
	var out [C.PIE_HASH_BUFFER_SIZE]C.char
	st := C.pie_hash_blob(bytesPtr(data), C.size_t(len(data)), &out[0], C.size_t(len(out)), nil)
	runtime.KeepAlive(data)
	if st != C.PIE_STATUS_OK {
		// Cannot happen: the buffer is large enough and the pointers are valid.
		panic("pie_hash_blob: " + Status(st).String())
	}
	return C.GoString(&out[0])
}

// Options are connection settings; zero values keep libpie's defaults.
type Options struct {
	ConnectTimeout time.Duration // default 10 s
	RequestTimeout time.Duration // default 30 s; bounds every blocking call's wait for a reply
	// MaxLaunchesInFlight: 0 keeps the default (1, which avoids a known server deadlock);
	// a negative value means unlimited.
	MaxLaunchesInFlight int
	QueueLimitBytes     uint64   // per-instance queued event bytes; default 64 MiB
	RootCertsPEM        [][]byte // extra trusted roots for wss://
	// Protocol forces one protocol; ProtocolAuto (the zero value) detects it.
	Protocol Protocol
	// Identity is the x-pie-identity header a Pie 0.5 server requires ("" keeps "libpie").
	Identity string
	// EventBatchWindow: during a flood of output, libpie reads the socket at most once per
	// window and delivers the events gathered meanwhile together (pie.h,
	// pie_connect_options_set_event_batch_window_us). 0 keeps the default (1 ms); a negative
	// value turns batching off; at most 1 s.
	EventBatchWindow time.Duration
}

func millis(d time.Duration) C.uint32_t {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms > int64(^uint32(0)) {
		ms = int64(^uint32(0))
	}
	return C.uint32_t(ms)
}

func (o *Options) build() (*C.struct_PieConnectOptions, error) {
	opts := C.pie_connect_options_new()
	if opts == nil {
		return nil, &Error{Status: StatusInternal, Message: "out of memory"}
	}
	var cerr *C.struct_PieError
	fail := func(st C.enum_PieStatus) error {
		err := check(st, &cerr)
		if err != nil {
			C.pie_connect_options_free(opts)
		}
		return err
	}
	if o.ConnectTimeout > 0 {
		if err := fail(C.pie_connect_options_set_connect_timeout_ms(opts, millis(o.ConnectTimeout), &cerr)); err != nil {
			return nil, err
		}
	}
	if o.RequestTimeout > 0 {
		if err := fail(C.pie_connect_options_set_request_timeout_ms(opts, millis(o.RequestTimeout), &cerr)); err != nil {
			return nil, err
		}
	}
	if o.MaxLaunchesInFlight != 0 {
		max := C.uint32_t(0)
		if o.MaxLaunchesInFlight > 0 {
			max = C.uint32_t(o.MaxLaunchesInFlight)
		}
		if err := fail(C.pie_connect_options_set_max_launches_in_flight(opts, max, &cerr)); err != nil {
			return nil, err
		}
	}
	if o.QueueLimitBytes > 0 {
		if err := fail(C.pie_connect_options_set_instance_queue_limit_bytes(opts, C.uint64_t(o.QueueLimitBytes), &cerr)); err != nil {
			return nil, err
		}
	}
	if o.EventBatchWindow != 0 {
		us := o.EventBatchWindow.Microseconds()
		if us < 0 {
			us = 0
		}
		if us > int64(^uint32(0)) {
			us = int64(^uint32(0))
		}
		if err := fail(C.pie_connect_options_set_event_batch_window_us(opts, C.uint32_t(us), &cerr)); err != nil {
			return nil, err
		}
	}
	if o.Protocol != ProtocolAuto {
		if err := fail(C.pie_connect_options_set_protocol(opts, C.int32_t(o.Protocol), &cerr)); err != nil {
			return nil, err
		}
	}
	if o.Identity != "" {
		cid := cString(o.Identity)
		st := C.pie_connect_options_set_identity(opts, cid, &cerr)
		C.free(unsafe.Pointer(cid))
		if err := fail(st); err != nil {
			return nil, err
		}
	}
	for _, pem := range o.RootCertsPEM {
		st := C.pie_connect_options_add_root_cert_pem(opts, bytesPtr(pem), C.size_t(len(pem)), &cerr)
		runtime.KeepAlive(pem)
		if err := fail(st); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// Key is a private SSH key for Authenticate.
type Key struct {
	mu sync.RWMutex
	k  *C.struct_PieKey
}

// LoadKey reads a private key file (OpenSSH, PKCS#8, PKCS#1 or SEC1; "~/" is expanded).
// passphrase is "" for unencrypted keys.
func LoadKey(path, passphrase string) (*Key, error) {
	cpath := cString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cpass *C.char
	if passphrase != "" {
		cpass = cString(passphrase)
		defer C.free(unsafe.Pointer(cpass))
	}
	var k *C.struct_PieKey
	var cerr *C.struct_PieError
	if err := check(C.pie_key_load_file(cpath, cpass, &k, &cerr), &cerr); err != nil {
		return nil, err
	}
	key := &Key{k: k}
	runtime.SetFinalizer(key, (*Key).Close)
	return key, nil
}

// Close wipes and frees the key. Safe to call more than once.
func (k *Key) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	C.pie_key_free(k.k)
	k.k = nil
}

// Client is a connection to a Pie server.
type Client struct {
	mu sync.RWMutex // held shared during calls, exclusively to free the handle
	c  *C.struct_PieClient
}

// Connect opens a connection to url (ws://host:port or wss://host:port). opts may be nil.
func Connect(url string, opts *Options) (*Client, error) {
	var copts *C.struct_PieConnectOptions
	if opts != nil {
		o, err := opts.build()
		if err != nil {
			return nil, err
		}
		copts = o
		defer C.pie_connect_options_free(copts)
	}
	curl := cString(url)
	defer C.free(unsafe.Pointer(curl))
	var c *C.struct_PieClient
	var cerr *C.struct_PieError
	if err := check(C.pie_client_connect(curl, copts, &c, &cerr), &cerr); err != nil {
		return nil, err
	}
	client := &Client{c: c}
	runtime.SetFinalizer(client, (*Client).Close)
	return client, nil
}

// with runs f with the live handle, or returns ErrHandleClosed.
func (c *Client) with(f func(*C.struct_PieClient) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.c == nil {
		return ErrHandleClosed
	}
	return f(c.c)
}

// Close closes the connection (pending calls fail with ErrClientClosed, every instance's
// stream ends) and frees the client. Instances stay valid until closed themselves. Safe to
// call more than once.
func (c *Client) Close() error {
	// Close first, without the exclusive lock, so calls blocked in libpie return now.
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_close(h, &cerr), &cerr)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	C.pie_client_free(c.c)
	c.c = nil
	return err
}

// Authenticate logs in as username with key (nil when the server has authentication off).
func (c *Client) Authenticate(username string, key *Key) error {
	cuser := cString(username)
	defer C.free(unsafe.Pointer(cuser))
	var ck *C.struct_PieKey
	if key != nil {
		key.mu.RLock()
		defer key.mu.RUnlock()
		if key.k == nil {
			return ErrHandleClosed
		}
		ck = key.k
	}
	return c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_authenticate(h, cuser, ck, &cerr), &cerr)
	})
}

// InternalAuthenticate logs in with the server's internal token.
func (c *Client) InternalAuthenticate(token string) error {
	ctok := cString(token)
	defer C.free(unsafe.Pointer(ctok))
	return c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_internal_authenticate(h, ctok, &cerr), &cerr)
	})
}

// Ping makes a round trip to the server.
func (c *Client) Ping() error {
	return c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_ping(h, &cerr), &cerr)
	})
}

// Query sends (subject, record) and returns the server's answer.
func (c *Client) Query(subject, record string) (string, error) {
	csub, crec := cString(subject), cString(record)
	defer C.free(unsafe.Pointer(csub))
	defer C.free(unsafe.Pointer(crec))
	var answer string
	err := c.with(func(h *C.struct_PieClient) error {
		var out *C.char
		var cerr *C.struct_PieError
		if err := check(C.pie_client_query(h, csub, crec, &out, &cerr), &cerr); err != nil {
			return err
		}
		answer = C.GoString(out)
		C.pie_string_free(out)
		return nil
	})
	return answer, err
}

// ProgramExists tells whether the server has the program with this hash.
func (c *Client) ProgramExists(hash string) (bool, error) {
	chash := cString(hash)
	defer C.free(unsafe.Pointer(chash))
	var exists C.bool
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_program_exists(h, chash, &exists, &cerr), &cerr)
	})
	return bool(exists), err
}

// UploadProgram uploads a program (a WebAssembly component) and returns its hash. progress
// may be nil.
func (c *Client) UploadProgram(program []byte, progress ProgressFunc) (string, error) {
	var handle cgo.Handle
	if progress != nil {
		handle = cgo.NewHandle(progress)
		defer handle.Delete()
	}
	var out [C.PIE_HASH_BUFFER_SIZE]C.char
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		st := C.pie_go_upload_program(h, bytesPtr(program), C.size_t(len(program)),
			C.uintptr_t(handle), &out[0], &cerr)
		runtime.KeepAlive(program)
		return check(st, &cerr)
	})
	if err != nil {
		return "", err
	}
	return C.GoString(&out[0]), nil
}

func (c *Client) launch(registry bool, name string, args []string, detached bool) (*Instance, error) {
	cname := cString(name)
	defer C.free(unsafe.Pointer(cname))
	argv, freeArgs := cArgs(args)
	defer freeArgs()
	var inst *C.struct_PieInstance
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		var st C.enum_PieStatus
		if registry {
			st = C.pie_client_launch_instance_from_registry(h, cname, argv, C.size_t(len(args)),
				C.bool(detached), &inst, &cerr)
		} else {
			st = C.pie_client_launch_instance(h, cname, argv, C.size_t(len(args)),
				C.bool(detached), &inst, &cerr)
		}
		return check(st, &cerr)
	})
	if err != nil {
		return nil, err
	}
	return newInstance(inst), nil
}

// Protocol tells which protocol the connection speaks (ProtocolAuto until detected).
func (c *Client) Protocol() Protocol {
	p := ProtocolAuto
	_ = c.with(func(h *C.struct_PieClient) error {
		p = Protocol(C.pie_client_protocol(h))
		return nil
	})
	return p
}

// InstallProgram installs a program on a Pie 0.5 server: the artifact (a WebAssembly
// component, or the script source for a python/javascript manifest) and its TOML manifest.
// Returns the artifact's hash. progress may be nil. On a January-2026 server: ErrUnsupported.
func (c *Client) InstallProgram(artifact []byte, manifest string, forceOverwrite bool, progress ProgressFunc) (string, error) {
	var handle cgo.Handle
	if progress != nil {
		handle = cgo.NewHandle(progress)
		defer handle.Delete()
	}
	cman := cString(manifest)
	defer C.free(unsafe.Pointer(cman))
	var out [C.PIE_HASH_BUFFER_SIZE]C.char
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		st := C.pie_go_install_program(h, bytesPtr(artifact), C.size_t(len(artifact)), cman,
			C.bool(forceOverwrite), C.uintptr_t(handle), &out[0], &cerr)
		runtime.KeepAlive(artifact)
		return check(st, &cerr)
	})
	if err != nil {
		return "", err
	}
	return C.GoString(&out[0]), nil
}

// CheckProgram tells whether name@version (major.minor.patch) is installed or built in on a
// Pie 0.5 server.
func (c *Client) CheckProgram(name, version string) (bool, error) {
	cname, cver := cString(name), cString(version)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cver))
	var installed C.bool
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_check_program(h, cname, cver, &installed, &cerr), &cerr)
	})
	return bool(installed), err
}

// LaunchProcess starts "name" or "name@version" on a Pie 0.5 server with JSON input. A
// detached launch's ID is found by listing; it is "" when that is not possible (see
// pie_client_launch_process).
func (c *Client) LaunchProcess(inferlet, inputJSON string, detached bool) (*Instance, error) {
	cinf, cin := cString(inferlet), cString(inputJSON)
	defer C.free(unsafe.Pointer(cinf))
	defer C.free(unsafe.Pointer(cin))
	var inst *C.struct_PieInstance
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_launch_process(h, cinf, cin, C.bool(detached), &inst, &cerr), &cerr)
	})
	if err != nil {
		return nil, err
	}
	return newInstance(inst), nil
}

// ModelStatus returns the model's counters as JSON text (Pie 0.5).
func (c *Client) ModelStatus() (string, error) {
	var answer string
	err := c.with(func(h *C.struct_PieClient) error {
		var out *C.char
		var cerr *C.struct_PieError
		if err := check(C.pie_client_model_status(h, &out, &cerr), &cerr); err != nil {
			return err
		}
		answer = C.GoString(out)
		C.pie_string_free(out)
		return nil
	})
	return answer, err
}

// LaunchInstance starts the uploaded program with this hash. A detached instance sends no
// events to this client: attach to it (AttachInstance) to receive them.
func (c *Client) LaunchInstance(hash string, args []string, detached bool) (*Instance, error) {
	return c.launch(false, hash, args, detached)
}

// LaunchInstanceFromRegistry starts an inferlet from the server's registry
// ("namespace/name@version", "name@version" or "name").
func (c *Client) LaunchInstanceFromRegistry(name string, args []string, detached bool) (*Instance, error) {
	return c.launch(true, name, args, detached)
}

// AttachInstance attaches this client to a running or finished instance; the output the
// server kept for it arrives first.
func (c *Client) AttachInstance(id string) (*Instance, error) {
	cid := cString(id)
	defer C.free(unsafe.Pointer(cid))
	var inst *C.struct_PieInstance
	err := c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_attach_instance(h, cid, &inst, &cerr), &cerr)
	})
	if err != nil {
		return nil, err
	}
	return newInstance(inst), nil
}

// TerminateInstance asks the server to stop instance id.
func (c *Client) TerminateInstance(id string) error {
	cid := cString(id)
	defer C.free(unsafe.Pointer(cid))
	return c.with(func(h *C.struct_PieClient) error {
		var cerr *C.struct_PieError
		return check(C.pie_client_terminate_instance(h, cid, &cerr), &cerr)
	})
}

// InstanceStatus is the state of a listed instance.
type InstanceStatus int

// Instance states.
const (
	InstanceAttached InstanceStatus = C.PIE_INSTANCE_STATUS_ATTACHED
	InstanceDetached InstanceStatus = C.PIE_INSTANCE_STATUS_DETACHED
	InstanceFinished InstanceStatus = C.PIE_INSTANCE_STATUS_FINISHED
)

func (s InstanceStatus) String() string {
	switch s {
	case InstanceAttached:
		return "attached"
	case InstanceDetached:
		return "detached"
	case InstanceFinished:
		return "finished"
	}
	return "unknown"
}

// InstanceInfo describes one instance listed by the server.
type InstanceInfo struct {
	ID          string
	Username    string
	Arguments   []string
	Status      InstanceStatus
	Elapsed     time.Duration
	KVPagesUsed uint32
}

// ListInstances lists the server's instances visible to this session.
func (c *Client) ListInstances() ([]InstanceInfo, error) {
	var out []InstanceInfo
	err := c.with(func(h *C.struct_PieClient) error {
		var list *C.struct_PieInstanceList
		var cerr *C.struct_PieError
		if err := check(C.pie_client_list_instances(h, &list, &cerr), &cerr); err != nil {
			return err
		}
		defer C.pie_instance_list_free(list)
		n := int(C.pie_instance_list_len(list))
		for i := 0; i < n; i++ {
			idx := C.size_t(i)
			info := InstanceInfo{
				ID:       C.GoString(C.pie_instance_list_id(list, idx)),
				Username: C.GoString(C.pie_instance_list_username(list, idx)),
			}
			var count C.size_t
			if err := check(C.pie_instance_list_argument_count(list, idx, &count, &cerr), &cerr); err != nil {
				return err
			}
			for a := C.size_t(0); a < count; a++ {
				info.Arguments = append(info.Arguments, C.GoString(C.pie_instance_list_argument(list, idx, a)))
			}
			var status C.enum_PieInstanceStatus
			if err := check(C.pie_instance_list_status(list, idx, &status, &cerr), &cerr); err != nil {
				return err
			}
			info.Status = InstanceStatus(status)
			var secs C.uint64_t
			if err := check(C.pie_instance_list_elapsed_secs(list, idx, &secs, &cerr), &cerr); err != nil {
				return err
			}
			info.Elapsed = time.Duration(secs) * time.Second
			var pages C.uint32_t
			if err := check(C.pie_instance_list_kv_pages_used(list, idx, &pages, &cerr), &cerr); err != nil {
				return err
			}
			info.KVPagesUsed = uint32(pages)
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// EventKind says what an Event is.
type EventKind int

// Event kinds (PieEventKind).
const (
	EventMessage        EventKind = C.PIE_EVENT_KIND_MESSAGE
	EventCompleted      EventKind = C.PIE_EVENT_KIND_COMPLETED
	EventAborted        EventKind = C.PIE_EVENT_KIND_ABORTED
	EventException      EventKind = C.PIE_EVENT_KIND_EXCEPTION
	EventServerError    EventKind = C.PIE_EVENT_KIND_SERVER_ERROR
	EventOutOfResources EventKind = C.PIE_EVENT_KIND_OUT_OF_RESOURCES
	EventBlob           EventKind = C.PIE_EVENT_KIND_BLOB
	EventStdout         EventKind = C.PIE_EVENT_KIND_STDOUT
	EventStderr         EventKind = C.PIE_EVENT_KIND_STDERR
	EventUnknown        EventKind = C.PIE_EVENT_KIND_UNKNOWN
	EventOverflow       EventKind = C.PIE_EVENT_KIND_OVERFLOW
)

// String names the kind, e.g. "Completed".
func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "Message"
	case EventCompleted:
		return "Completed"
	case EventAborted:
		return "Aborted"
	case EventException:
		return "Exception"
	case EventServerError:
		return "ServerError"
	case EventOutOfResources:
		return "OutOfResources"
	case EventBlob:
		return "Blob"
	case EventStdout:
		return "Stdout"
	case EventStderr:
		return "Stderr"
	case EventUnknown:
		return "Unknown"
	case EventOverflow:
		return "Overflow"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one event of an instance.
type Event struct {
	Kind     EventKind
	Text     string // every kind but EventBlob
	Blob     []byte // EventBlob
	BlobName string // EventBlob from a Pie 0.5 server: the file's name, if it has one
	Dropped  uint64 // EventOverflow: events discarded at this point
	Terminal bool   // the last event of the instance
}

func takeEvent(ev *C.struct_PieEvent) Event {
	defer C.pie_event_free(ev)
	e := Event{
		Kind:     EventKind(C.pie_event_kind(ev)),
		Terminal: bool(C.pie_event_is_terminal(ev)),
		Dropped:  uint64(C.pie_event_dropped(ev)),
	}
	var n C.size_t
	if e.Kind == EventBlob {
		p := C.pie_event_blob(ev, &n)
		e.Blob = C.GoBytes(unsafe.Pointer(p), C.int(n))
		if name := C.pie_event_blob_name(ev); name != nil {
			e.BlobName = C.GoString(name)
		}
	} else if t := C.pie_event_text(ev, &n); t != nil {
		e.Text = C.GoStringN(t, C.int(n))
	}
	return e
}

// Instance is a running program.
type Instance struct {
	mu       sync.RWMutex
	i        *C.struct_PieInstance
	id       string
	detached bool
	errMu    sync.Mutex
	err      error // why an Events stream ended early
}

func newInstance(i *C.struct_PieInstance) *Instance {
	inst := &Instance{
		i:        i,
		id:       C.GoString(C.pie_instance_id(i)),
		detached: bool(C.pie_instance_is_detached(i)),
	}
	runtime.SetFinalizer(inst, (*Instance).Close)
	return inst
}

func (i *Instance) with(f func(*C.struct_PieInstance) error) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.i == nil {
		return ErrHandleClosed
	}
	return f(i.i)
}

// ID is the instance's UUID.
func (i *Instance) ID() string { return i.id }

// IsDetached tells whether it was launched detached (then Send/Recv fail with ErrDetached).
func (i *Instance) IsDetached() bool { return i.detached }

// Close frees the handle; the instance keeps running on the server. Safe to call twice.
func (i *Instance) Close() {
	i.mu.Lock()
	defer i.mu.Unlock()
	C.pie_instance_free(i.i)
	i.i = nil
}

// Send sends a text message to the instance.
func (i *Instance) Send(message string) error {
	cmsg := cString(message)
	defer C.free(unsafe.Pointer(cmsg))
	return i.with(func(h *C.struct_PieInstance) error {
		var cerr *C.struct_PieError
		return check(C.pie_instance_send(h, cmsg, &cerr), &cerr)
	})
}

// UploadBlob sends bytes to the instance; progress may be nil.
func (i *Instance) UploadBlob(blob []byte, progress ProgressFunc) error {
	var handle cgo.Handle
	if progress != nil {
		handle = cgo.NewHandle(progress)
		defer handle.Delete()
	}
	return i.with(func(h *C.struct_PieInstance) error {
		var cerr *C.struct_PieError
		st := C.pie_go_upload_blob(h, bytesPtr(blob), C.size_t(len(blob)), C.uintptr_t(handle), &cerr)
		runtime.KeepAlive(blob)
		return check(st, &cerr)
	})
}

// Terminate stops the instance; its stream ends with an EventAborted.
func (i *Instance) Terminate() error {
	return i.with(func(h *C.struct_PieInstance) error {
		var cerr *C.struct_PieError
		return check(C.pie_instance_terminate(h, &cerr), &cerr)
	})
}

// recvSlice bounds each blocking libpie call, so that a cancelled context or Close is noticed
// quickly; events themselves are returned as soon as they arrive.
const recvSlice = 100 * time.Millisecond

// Recv waits for the next event until ctx is done. After the terminal event it returns an
// error matching ErrStreamEnded; when the connection ends, ErrConnectionClosed or
// ErrClientClosed; ctx.Err() when the context ends first.
func (i *Instance) Recv(ctx context.Context) (Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		wait := recvSlice
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < wait {
				wait = left
			}
		}
		ms := C.int32_t(wait.Milliseconds())
		if ms < 0 {
			ms = 0
		}
		var ev *C.struct_PieEvent
		err := i.with(func(h *C.struct_PieInstance) error {
			var cerr *C.struct_PieError
			return check(C.pie_instance_recv(h, ms, &ev, &cerr), &cerr)
		})
		if err == nil {
			return takeEvent(ev), nil
		}
		if !errors.Is(err, ErrTimeout) {
			return Event{}, err
		}
	}
}

// Events delivers the instance's events on a channel until the terminal event (the last one
// sent) or until the stream or ctx ends; the channel is then closed and Err tells why it
// ended early (nil after a terminal event).
func (i *Instance) Events(ctx context.Context) <-chan Event {
	ch := make(chan Event)
	i.errMu.Lock()
	i.err = nil
	i.errMu.Unlock()
	go func() {
		defer close(ch)
		for {
			ev, err := i.Recv(ctx)
			if err != nil {
				i.errMu.Lock()
				i.err = err
				i.errMu.Unlock()
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				i.errMu.Lock()
				i.err = ctx.Err()
				i.errMu.Unlock()
				return
			}
			if ev.Terminal {
				return
			}
		}
	}()
	return ch
}

// Err is why the last Events channel closed before a terminal event (nil otherwise).
func (i *Instance) Err() error {
	i.errMu.Lock()
	defer i.errMu.Unlock()
	return i.err
}
