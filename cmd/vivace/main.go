// Command vivace runs Vivace's roles: all of them (-target=all, the
// default) or one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/vivace-dev/vivace/cmd/vivace/app"
)

func main() {
	// In a container, collect harder near 90% of its memory limit rather
	// than be killed at it (unless GOMEMLIMIT is set).
	_, _ = memlimit.Set()
	cfg, printDefaults, err := app.Load(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vivace:", err)
		os.Exit(2)
	}
	if printDefaults {
		b, err := app.DefaultYAML(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vivace:", err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
		return
	}
	a, err := app.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vivace:", err)
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vivace:", err)
		os.Exit(1)
	}
}
