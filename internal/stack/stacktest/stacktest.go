// Package stacktest gives integration tests the running dev stack.
package stacktest

import (
	"context"
	"sync"
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
//
// The stack is brought up once per test binary: Up rebuilds and checks the
// reference HRIS and probes every server, which is start-up work, not
// something to repeat for each of a package's tests.
func Ensure(t testing.TB) stack.Endpoints {
	t.Helper()
	r := up()
	if r.err != nil {
		t.Fatalf("stacktest: the dev stack is needed and could not start: %v", r.err)
	}
	return r.ep
}

type result struct {
	ep  stack.Endpoints
	err error
}

// up memoises the first Up of this test binary (its error too: a stack that
// could not start fails every test that needs it, with the same reason).
var up = sync.OnceValue(func() result {
	repo, err := stack.FindRepoDir()
	if err != nil {
		return result{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ep, err := stack.Up(ctx, stack.DefaultConfig(repo))
	return result{ep: ep, err: err}
})
