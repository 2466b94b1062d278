// Command devstack starts, inspects and stops Joinery's loopback dev stack
// (Temporal dev server + UI, Vault, slapd, reference HRIS).
//
//	devstack up      start what is not running, wait until all answer
//	devstack down    stop the processes the stack started (by PID)
//	devstack status  say which servers answer
//	devstack env     print the JOINERY_* variables pointing at the stack
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/joinery/joinery/internal/stack"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: devstack up|down|status|env")
		os.Exit(2)
	}
	repo, err := stack.FindRepoDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := stack.DefaultConfig(repo)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "up":
		ep, err := stack.Up(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("stack up: Temporal %s (UI %s), Vault %s, LDAP %s, HRIS %s\nlogs: %s/logs\n",
			ep.TemporalAddress, ep.TemporalUIURL, ep.VaultAddr, ep.LDAPURL, ep.HRISURL, ep.StateDir)
	case "down":
		if err := stack.Down(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("stack down")
	case "status":
		st := stack.Status(ctx, cfg)
		names := make([]string, 0, len(st))
		for n := range st {
			names = append(names, n)
		}
		sort.Strings(names)
		bad := false
		for _, n := range names {
			if st[n] != nil {
				bad = true
				fmt.Printf("%-9s down (%v)\n", n, st[n])
			} else {
				fmt.Printf("%-9s up\n", n)
			}
		}
		if bad {
			os.Exit(1)
		}
	case "env", "sweeper-env":
		// sweeper-env: the settings of the wrapping-token sweeper (the
		// worker binary in sweeper mode, with its own Vault identity).
		env := stack.Env
		if os.Args[1] == "sweeper-env" {
			env = stack.SweeperEnv
		}
		for _, kv := range env(cfg.Endpoints()) {
			fmt.Printf("export %s\n", kv)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: devstack up|down|status|env|sweeper-env")
		os.Exit(2)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
