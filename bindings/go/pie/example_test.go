package pie_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pie-project/libpie/bindings/go/pie"
)

// The Go quick start: stream a completion from the registry's text-completion inferlet.
// (Compiled by `go test`, not run: it needs a server at the URL.)
func Example() {
	client, err := pie.Connect("ws://127.0.0.1:8080", &pie.Options{RequestTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer client.Close()
	if err := client.Authenticate("quickstart", nil); err != nil {
		fmt.Println("authenticate:", err)
		return
	}
	inst, err := client.LaunchInstanceFromRegistry("text-completion", []string{"--prompt", "Hello"}, false)
	var perr *pie.Error
	if errors.As(err, &perr) && perr.Status == pie.StatusServer {
		fmt.Println("the server refused:", perr.Message)
		return
	} else if err != nil {
		fmt.Println("launch:", err)
		return
	}
	defer inst.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ev := range inst.Events(ctx) {
		switch ev.Kind {
		case pie.EventStdout:
			fmt.Print(ev.Text)
		case pie.EventCompleted:
			fmt.Println("completed")
		}
	}
	if err := inst.Err(); err != nil {
		fmt.Println("stream ended early:", err)
	}
}
