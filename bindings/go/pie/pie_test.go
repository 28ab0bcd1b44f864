package pie_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pie-project/libpie/bindings/go/pie"
)

// sim is a pie-sim process started for a test.
type sim struct {
	cmd *exec.Cmd
	url string
}

// startSim runs the simulator binary named by $PIE_SIM on a free port and reads its URL from
// the first line it prints ("listening on ws://HOST:PORT").
func startSim(t *testing.T, args ...string) *sim {
	t.Helper()
	bin := os.Getenv("PIE_SIM")
	if bin == "" {
		t.Fatal("PIE_SIM must name the pie-sim binary (cargo build -p pie-sim; scripts/test-all.sh sets it)")
	}
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--internal-token", "go-token"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("pie-sim printed nothing: %v", lines.Err())
	}
	url := strings.TrimPrefix(lines.Text(), "listening on ")
	if !strings.HasPrefix(url, "ws://") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("unexpected first line %q", lines.Text())
	}
	go func() { // keep draining so the simulator never blocks on a full pipe
		for lines.Scan() {
		}
	}()
	s := &sim{cmd: cmd, url: url}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return s
}

func connect(t *testing.T, s *sim) *pie.Client {
	t.Helper()
	c, err := pie.Connect(s.url, &pie.Options{RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Authenticate("gopher", nil); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collect receives events until the terminal one.
func collect(t *testing.T, inst *pie.Instance) (stdout string, events []pie.Event) {
	t.Helper()
	ctx := ctxT(t)
	for {
		ev, err := inst.Recv(ctx)
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		events = append(events, ev)
		if ev.Kind == pie.EventStdout {
			stdout += ev.Text
		}
		if ev.Terminal {
			return stdout, events
		}
	}
}

func TestVersionAndHash(t *testing.T) {
	if pie.Version() == "" {
		t.Fatal("empty version")
	}
	// blake3("") from the BLAKE3 reference vectors.
	if got := pie.HashBlob(nil); got != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("HashBlob(nil) = %s", got)
	}
	if got := pie.HashBlob([]byte("abc")); len(got) != 64 || got == pie.HashBlob([]byte("abd")) {
		t.Fatalf("HashBlob(abc) = %s", got)
	}
}

func TestPingQueryAndInternalAuth(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Query("model_status", ""); err != nil || got != "{}" {
		t.Fatalf("query = %q, %v", got, err)
	}
	other, err := pie.Connect(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.InternalAuthenticate("go-token"); err != nil {
		t.Fatalf("internal auth: %v", err)
	}
	if err := other.Ping(); err != nil {
		t.Fatal(err)
	}
}

func TestCompletionStreamsAndCompletes(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	inst, err := c.LaunchInstanceFromRegistry("text-completion", []string{"--prompt", "go", "--max-tokens", "10"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if len(inst.ID()) != 36 || inst.IsDetached() {
		t.Fatalf("id %q detached %v", inst.ID(), inst.IsDetached())
	}
	stdout, events := collect(t, inst)
	last := events[len(events)-1]
	if last.Kind != pie.EventCompleted || stdout != last.Text+"\n" || len(strings.Fields(last.Text)) != 10 {
		t.Fatalf("stdout %q, last %+v", stdout, last)
	}
	// The stream is over now.
	_, err = inst.Recv(ctxT(t))
	if !errors.Is(err, pie.ErrStreamEnded) {
		t.Fatalf("recv after the end: %v", err)
	}
	var perr *pie.Error
	if !errors.As(err, &perr) || perr.Status != pie.StatusStreamEnded {
		t.Fatalf("not a *pie.Error with the status: %#v", err)
	}
}

func TestChatWithEventsChannel(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	chat, err := c.LaunchInstanceFromRegistry("chat", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	for _, m := range []string{"one", "two"} {
		if err := chat.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := chat.Send("bye"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range chat.Events(ctxT(t)) {
		got = append(got, ev.Text)
	}
	if chat.Err() != nil {
		t.Fatalf("events ended early: %v", chat.Err())
	}
	if strings.Join(got, "|") != "you said: one|you said: two|bye" {
		t.Fatalf("got %q", got)
	}
}

func TestUploadLaunchByHashAndBlobs(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	script := "stdout hello $1\nrecv-blob\nmessage $#\ncomplete done"
	program, err := exec.Command(os.Getenv("PIE_SIM"), "make-program", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	hash := pie.HashBlob(program)
	if exists, err := c.ProgramExists(hash); err != nil || exists {
		t.Fatalf("exists before upload: %v %v", exists, err)
	}
	var mu sync.Mutex
	var calls [][2]uint64
	got, err := c.UploadProgram(program, func(sent, total uint64) {
		mu.Lock()
		calls = append(calls, [2]uint64{sent, total})
		mu.Unlock()
	})
	if err != nil || got != hash {
		t.Fatalf("upload: %q %v (want %s)", got, err, hash)
	}
	// Progress is reported per chunk handed to the socket; libpie may skip reports that
	// race with the server's reply, so only their consistency is checked.
	mu.Lock()
	for k, call := range calls {
		if call[1] != uint64(len(program)) || call[0] > call[1] || (k > 0 && call[0] < calls[k-1][0]) {
			t.Fatalf("progress calls %v", calls)
		}
	}
	mu.Unlock()
	if exists, err := c.ProgramExists(hash); err != nil || !exists {
		t.Fatalf("exists after upload: %v %v", exists, err)
	}
	inst, err := c.LaunchInstance(hash, []string{"world"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx := ctxT(t)
	ev, err := inst.Recv(ctx)
	if err != nil || ev.Kind != pie.EventStdout || ev.Text != "hello world" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	if err := inst.UploadBlob([]byte{0, 1, 2, 255}, nil); err != nil {
		t.Fatal(err)
	}
	ev, err = inst.Recv(ctx)
	if err != nil || ev.Kind != pie.EventBlob || string(ev.Blob) != "\x00\x01\x02\xff" {
		t.Fatalf("blob event %+v %v", ev, err)
	}
	_, events := collect(t, inst)
	if len(events) != 2 || events[0].Text != "1" || events[1].Kind != pie.EventCompleted || events[1].Text != "done" {
		t.Fatalf("events %+v", events)
	}
	// Not a component: refused before anything is sent.
	if _, err := c.UploadProgram([]byte("nope"), nil); !errors.Is(err, pie.ErrInvalidArgument) {
		t.Fatalf("bad upload: %v", err)
	}
}

func TestDetachedListAttachTerminate(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	inst, err := c.LaunchInstanceFromRegistry("forever", []string{"--interval-ms", "10"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if !inst.IsDetached() {
		t.Fatal("not detached")
	}
	if _, err := inst.Recv(ctxT(t)); !errors.Is(err, pie.ErrDetached) {
		t.Fatalf("recv on a detached handle: %v", err)
	}
	list, err := c.ListInstances()
	if err != nil {
		t.Fatal(err)
	}
	var found *pie.InstanceInfo
	for k := range list {
		if list[k].ID == inst.ID() {
			found = &list[k]
		}
	}
	if found == nil || found.Status != pie.InstanceDetached || found.Username != "gopher" ||
		strings.Join(found.Arguments, " ") != "--interval-ms 10" {
		t.Fatalf("listed %+v in %+v", found, list)
	}

	// A second client attaches and gets the ticks (replayed, then live).
	other := connect(t, s)
	att, err := other.AttachInstance(inst.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	ev, err := att.Recv(ctxT(t))
	if err != nil || ev.Kind != pie.EventStdout || !strings.HasPrefix(ev.Text, "tick ") {
		t.Fatalf("attached event %+v %v", ev, err)
	}
	if err := c.TerminateInstance(inst.ID()); err != nil {
		t.Fatal(err)
	}
	_, events := collect(t, att)
	if last := events[len(events)-1]; last.Kind != pie.EventAborted {
		t.Fatalf("last event %+v", last)
	}
}

func TestErrorsCarryStatus(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	_, err := c.LaunchInstanceFromRegistry("no-such-inferlet", nil, false)
	var perr *pie.Error
	if !errors.As(err, &perr) || perr.Status != pie.StatusServer || !strings.Contains(perr.Message, "404") {
		t.Fatalf("launch of a missing inferlet: %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "pie: PIE_STATUS_SERVER: ") {
		t.Fatalf("message %q", err.Error())
	}
	if _, err := pie.Connect("http://nope", nil); !errors.Is(err, pie.ErrInvalidArgument) {
		t.Fatalf("bad URL: %v", err)
	}
	// A batching window over one second is refused before anything is sent; a valid one and
	// "off" connect normally.
	if _, err := pie.Connect(s.url, &pie.Options{EventBatchWindow: 2 * time.Second}); !errors.Is(err, pie.ErrInvalidArgument) {
		t.Fatalf("2 s batching window: %v", err)
	}
	for _, w := range []time.Duration{-1, 500 * time.Microsecond} {
		bc, err := pie.Connect(s.url, &pie.Options{EventBatchWindow: w})
		if err != nil {
			t.Fatalf("batching window %v: %v", w, err)
		}
		bc.Close()
	}
	if _, err := pie.LoadKey(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Fatal("loading a missing key worked")
	}
}

func TestContextCancelAndClose(t *testing.T) {
	s := startSim(t)
	c := connect(t, s)
	inst, err := c.LaunchInstanceFromRegistry("busy", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := inst.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv with a deadline: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the deadline was noticed late: %v", time.Since(start))
	}
	// Closing the client ends the stream of a goroutine blocked in Recv.
	done := make(chan error, 1)
	go func() {
		_, err := inst.Recv(context.Background())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, pie.ErrClientClosed) {
			t.Fatalf("recv after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recv did not return after Close")
	}
	if err := c.Ping(); !errors.Is(err, pie.ErrHandleClosed) {
		t.Fatalf("ping after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestAuthenticationWithKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "go", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	s := startSim(t, "--auth-user", "gopher", "--auth-key", key+".pub")
	k, err := pie.LoadKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	c, err := pie.Connect(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate("gopher", k); err != nil {
		t.Fatalf("authenticate with key: %v", err)
	}
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	bad, err := pie.Connect(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Authenticate("stranger", k); !errors.Is(err, pie.ErrAuth) {
		t.Fatalf("unknown user: %v", err)
	}
}
