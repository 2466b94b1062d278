// Command cluster starts, inspects and stops a Temporal cluster on
// PostgreSQL on loopback (internal/stack, cluster.go): PostgreSQL and five
// Temporal server processes (frontend, two history, matching, worker).
//
//	cluster up      start what is not running, set up the schema, register the namespace
//	cluster down    stop the processes the cluster started (by PID)
//	cluster status  say which processes answer
//	cluster env     print the JOINERY_* variables pointing Joinery at it
//	cluster pids    print the recorded PIDs of the live processes
//
// The rest of the dev stack (Vault, slapd, HRIS, Mailpit) is shared with the
// dev server: `eval "$(bin/devstack env)"; eval "$(bin/cluster env)"`.
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

const usage = "usage: cluster up|down|status|env|pids"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	repo, err := stack.FindRepoDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k := stack.DefaultCluster(repo)
	k.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "up":
		addr, err := stack.ClusterUp(ctx, k)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("cluster up: Temporal frontend %s (PostgreSQL 127.0.0.1:%d, %d history shards)\nlogs: %s/logs\n",
			addr, k.PGPort, k.HistoryShards, k.StateDir)
	case "down":
		if err := stack.ClusterDown(ctx, k); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("cluster down")
	case "status":
		st := stack.ClusterStatus(ctx, k)
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
	case "env":
		for _, kv := range k.Env() {
			fmt.Printf("export %s\n", kv)
		}
	case "pids":
		pids := stack.ClusterPIDs(k)
		names := make([]string, 0, len(pids))
		for n := range pids {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Printf("%s %d\n", n, pids[n])
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
