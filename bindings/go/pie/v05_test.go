package pie_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pie-project/libpie/bindings/go/pie"
)

// startSim05 runs $PIE_SIM --protocol 0.5 and returns the URL a user would type (host:port).
func startSim05(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PIE_SIM")
	if bin == "" {
		t.Fatal("PIE_SIM must name the pie-sim binary")
	}
	cmd := exec.Command(bin, "--protocol", "0.5", "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		_ = cmd.Process.Kill()
		t.Fatalf("pie-sim printed nothing: %v", lines.Err())
	}
	url := strings.TrimSuffix(strings.TrimPrefix(lines.Text(), "listening on "), "/v1/ws")
	go func() {
		for lines.Scan() {
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return url
}

const manifest05 = "[package]\nname = \"%s\"\nversion = \"0.1.0\"\n[runtime]\nlanguage = \"python\"\nentry = \"main\"\ncall = \"kwargs\"\n"

func TestV05(t *testing.T) {
	c, err := pie.Connect(startSim05(t), &pie.Options{Identity: "go/tester"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if p := c.Protocol(); p != pie.ProtocolV05 || p.String() != "V05" {
		t.Fatalf("protocol %v", p)
	}
	if _, err := c.ProgramExists(strings.Repeat("0", 64)); !errors.Is(err, pie.ErrUnsupported) {
		t.Fatalf("ProgramExists on 0.5: %v", err)
	}
	if got := fmt.Sprint(pie.StatusUnsupported); got != "PIE_STATUS_UNSUPPORTED" {
		t.Fatalf("status prints as %q", got)
	}
	if _, err := c.LaunchProcess("echo-args", "{not json", false); !errors.Is(err, pie.ErrInvalidArgument) {
		t.Fatalf("bad input: %v", err)
	}
	calls := 0
	src := []byte("def main(**kwargs):\n    return kwargs\n")
	hash, err := c.InstallProgram(src, fmt.Sprintf(manifest05, "echo-args"), false, func(sent, total uint64) { calls++ })
	if err != nil || hash != pie.HashBlob(src) || calls == 0 {
		t.Fatalf("install: %q %v (%d progress calls)", hash, err, calls)
	}
	if ok, err := c.CheckProgram("echo-args", "0.1.0"); err != nil || !ok {
		t.Fatalf("check: %v %v", ok, err)
	}
	if status, err := c.ModelStatus(); err != nil || !strings.Contains(status, "kv_pages_total") {
		t.Fatalf("model status: %q %v", status, err)
	}
	inst, err := c.LaunchProcess("echo-args@0.1.0", `{"a": 1}`, false)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	var kinds []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err := inst.Recv(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev.Kind.String())
		if ev.Terminal {
			if ev.Kind != pie.EventCompleted || ev.Text != `{"a": 1}` {
				t.Fatalf("end: %v %q", ev.Kind, ev.Text)
			}
			break
		}
	}
	if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "Stdout") || !strings.Contains(got, "Message") {
		t.Fatalf("event kinds %s", got)
	}
}
