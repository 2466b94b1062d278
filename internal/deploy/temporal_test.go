package deploy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/stack"
)

// tlsProxy terminates TLS with cert/key in front of the plaintext address
// backend, the way the compose Temporal frontend serves TLS; it stops with
// the test.
func tlsProxy(t *testing.T, backend, certFile, keyFile string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return ln.Addr().String()
}

// privateTemporal starts a Temporal dev server of this test's own on free
// ports (never the shared stack's), stopped by PID at cleanup.
func privateTemporal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoDir(t), "bin", "temporal")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/temporal missing (make tools): %v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--headless",
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "warn")
	logf, err := os.Create(filepath.Join(dir, "temporal.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c, err := client.Dial(client.Options{HostPort: addr, Logger: quietLogger{}})
		if err == nil {
			c.Close()
			return addr
		}
		time.Sleep(300 * time.Millisecond)
	}
	log, _ := os.ReadFile(logf.Name())
	t.Fatalf("private temporal did not answer: %s", log)
	return ""
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// The compose job's register.sh, run with the real Temporal CLI against a
// real server over TLS checked for the name "temporal": it creates the
// namespace and exactly Joinery's search attributes, and a second run (the
// job runs at every `up`) changes nothing and succeeds. Without the CA it
// fails rather than fall back to plain text.
func TestTemporalRegisterScriptAgainstARealServer(t *testing.T) {
	p := loadProject(t)
	job := p.Services["temporal-namespace"]
	backend := privateTemporal(t)
	certs := t.TempDir()
	boot := buildCmd(t, "bootstrap")
	out, err := exec.Command(boot, "certs", "-dir", certs, "-for", fmt.Sprintf("temporal=%d", os.Getuid())).CombinedOutput()
	require.NoError(t, err, "%s", out)
	front := tlsProxy(t, backend, filepath.Join(certs, "temporal", "cert.pem"), filepath.Join(certs, "temporal", "key.pem"))

	const ns = "joinery-deploy-test"
	run := func(caFile string, extra ...string) (string, error) {
		cmd := exec.Command("/bin/sh", filepath.Join(p.WorkingDir, "deploy", "temporal", "register.sh"))
		cmd.Env = []string{"PATH=" + filepath.Join(repoDir(t), "bin") + ":/usr/bin:/bin", "HOME=" + t.TempDir(),
			"TEMPORAL_ADDRESS=" + front, "TEMPORAL_TLS_CA_FILE=" + caFile,
			"TEMPORAL_TLS_SERVER_NAME=" + *job.Environment["TEMPORAL_TLS_SERVER_NAME"],
			"JOINERY_NAMESPACE=" + ns, "JOINERY_NAMESPACE_RETENTION=" + *job.Environment["JOINERY_NAMESPACE_RETENTION"],
			"JOINERY_SEARCH_ATTRIBUTES=" + *job.Environment["JOINERY_SEARCH_ATTRIBUTES"]}
		cmd.Env = append(cmd.Env, extra...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out2, err := run(filepath.Join(certs, "ca.pem"))
	require.NoError(t, err, "%s", out2)

	c, err := client.Dial(client.Options{HostPort: backend, Logger: quietLogger{}})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	require.NoError(t, err)
	require.Equal(t, 720*time.Hour, d.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())
	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	require.NoError(t, err)
	types := map[string]enumspb.IndexedValueType{"Keyword": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Datetime": enumspb.INDEXED_VALUE_TYPE_DATETIME, "KeywordList": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST}
	want := map[string]enumspb.IndexedValueType{}
	for _, sa := range stack.SearchAttributes {
		want[sa[0]] = types[sa[1]]
	}
	require.Equal(t, want, sas.GetCustomAttributes(), "exactly Joinery's search attributes, with their types")

	again, err := run(filepath.Join(certs, "ca.pem"))
	require.NoError(t, err, "%s", again)
	require.Contains(t, again, ns+" exists")
	require.Equal(t, len(stack.SearchAttributes), strings.Count(again, "exists")-1)

	// Another CA (a server that is not the deployment's): refused.
	other := t.TempDir()
	out, err = exec.Command(boot, "certs", "-dir", other, "-for", fmt.Sprintf("temporal=%d", os.Getuid())).CombinedOutput()
	require.NoError(t, err, "%s", out)
	bad, err := run(filepath.Join(other, "ca.pem"), "JOINERY_REGISTER_WAIT_TRIES=1")
	require.Error(t, err, "%s", bad)
	require.Contains(t, bad, "did not answer over TLS")
}
