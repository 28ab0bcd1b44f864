package pie_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/pie-project/libpie/bindings/go/pie"
)

type logRecord struct {
	level           pie.LogLevel
	target, message string
}

type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

func (r *logRecorder) log(level pie.LogLevel, target, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, logRecord{level, target, message})
}

func (r *logRecorder) snapshot() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logRecord(nil), r.records...)
}

func (r *logRecorder) has(level pie.LogLevel, target, needle string) bool {
	for _, rec := range r.snapshot() {
		if rec.level == level && rec.target == target && strings.Contains(rec.message, needle) {
			return true
		}
	}
	return false
}

// The logger is process-wide, so this test sets it, checks, and always removes it again.
func TestSetLogger(t *testing.T) {
	if err := pie.SetLogger(pie.LogLevel(9), func(pie.LogLevel, string, string) {}); err == nil {
		t.Fatal("level 9 accepted")
	}
	var info logRecorder
	if err := pie.SetLogger(pie.LogInfo, info.log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pie.SetLogger(pie.LogOff, nil) })

	s := startSim(t)
	c := connect(t, s)
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if !info.has(pie.LogInfo, "pie::connection", "connected to "+s.url) {
		t.Fatalf("no connection record: %+v", info.snapshot())
	}
	if !info.has(pie.LogInfo, "pie::auth", "'gopher'") {
		t.Fatalf("no auth record: %+v", info.snapshot())
	}
	for _, rec := range info.snapshot() {
		if rec.level > pie.LogInfo {
			t.Fatalf("record above the level: %+v", rec)
		}
	}

	// Replaced: only warnings and errors now, to the new function.
	var warn logRecorder
	if err := pie.SetLogger(pie.LogWarn, warn.log); err != nil {
		t.Fatal(err)
	}
	before := len(info.snapshot())
	if _, err := pie.Connect("ws://127.0.0.1:1", nil); err == nil {
		t.Fatal("connected to port 1")
	}
	if !warn.has(pie.LogWarn, "pie::connection", "cannot connect to ws://127.0.0.1:1") {
		t.Fatalf("no failure record: %+v", warn.snapshot())
	}
	if len(info.snapshot()) != before {
		t.Fatal("the replaced logger still receives records")
	}

	// Removed: nothing arrives any more.
	if err := pie.SetLogger(pie.LogOff, nil); err != nil {
		t.Fatal(err)
	}
	n := len(warn.snapshot())
	if _, err := pie.Connect("ws://127.0.0.1:1", nil); err == nil {
		t.Fatal("connected to port 1")
	}
	if len(warn.snapshot()) != n {
		t.Fatal("the removed logger still receives records")
	}
}
