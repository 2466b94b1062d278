// Package stacktest gives integration tests the running dev stack.
package stacktest

import (
	"context"
	"testing"
	"time"

	"github.com/joinery/joinery/internal/stack"
)

// Config returns the stack configuration of this checkout, failing the test
// if the checkout cannot be found.
func Config(t testing.TB) stack.Config {
	t.Helper()
	repo, err := stack.FindRepoDir()
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	return stack.DefaultConfig(repo)
}

// Ensure starts the dev stack if it is not up (or reuses it) and returns its
// endpoints. A server that cannot start fails the test with the reason: an
// integration test never skips silently.
func Ensure(t testing.TB) stack.Endpoints {
	t.Helper()
	cfg := Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ep, err := stack.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("stacktest: the dev stack is needed and could not start: %v", err)
	}
	return ep
}
