package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
)

func init() {
	commands["codec-server"] = cmdCodecServer
	commands["codec-key"] = cmdCodecKey
}

const codecServerUsage = `usage: starter codec-server [--addr HOST:PORT]

Runs the codec endpoint (default address JOINERY_CODEC_ADDR) that the Temporal
Web UI and "temporal --codec-endpoint" call to show encrypted payloads:
  POST /decode, POST /encode   Authorization: Bearer JOINERY_CODEC_TOKEN
Browsers may call it only from JOINERY_TEMPORAL_UI_URL's origin. It decrypts
with the keys of JOINERY_CODEC_KEYS_FILE (or JOINERY_CODEC_KEYS_VAULT_PATH) and
logs every use with its caller.
SIGINT or SIGTERM shuts it down gracefully.
`

// cmdCodecServer serves the codec endpoint until SIGINT or SIGTERM.
func cmdCodecServer(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, codecServerUsage) }
	addr := fs.String("addr", cfg.CodecAddr, "listen address")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 {
		fmt.Fprint(stderr, codecServerUsage)
		return exitUsage
	}
	// A server runs until it is told to stop, not for the operator
	// commands' time limit: keep the values, drop the deadline, and stop
	// on the signals main listens for.
	ctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger := run.NewLogger(cfg.LogLevel, stderr)
	if err := codec.CheckListen(*addr, cfg.CodecToken); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	h, err := codec.NewServerFromConfig(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	// The real address, so --addr 127.0.0.1:0 works for scripts and tests.
	fmt.Fprintf(stdout, "codec server on http://%s (Web UI origin %s); temporal ... --codec-endpoint http://%s --codec-auth \"Bearer $JOINERY_CODEC_TOKEN\"\n",
		ln.Addr(), cfg.TemporalUIURL, ln.Addr())
	select {
	case err := <-done:
		fmt.Fprintln(stderr, err)
		return exitFailed
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

const codecKeyUsage = `usage: starter codec-key [KEY_ID]

Prints a new line for JOINERY_CODEC_KEYS_FILE: "<key-id> <base64 32 random bytes>".
To rotate, put it first in the file (the first key encrypts; every key decrypts)
and restart the worker, the starters and the codec server.
`

// cmdCodecKey prints a fresh key line; it needs no server.
func cmdCodecKey(_ context.Context, _ config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 || (len(args) == 1 && (args[0] == "-h" || args[0] == "--help")) {
		fmt.Fprint(stderr, codecKeyUsage)
		return exitUsage
	}
	id := ""
	if len(args) == 1 {
		id = args[0]
	}
	k, err := codec.NewKey(id)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fmt.Fprintln(stdout, k.Line())
	return exitOK
}
