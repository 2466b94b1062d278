// Package e2e runs whole joiners against the real dev stack: an in-process
// worker with the real connectors (LDAP, Vault, HRIS) on its own task queue.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/stack"
)

// Config builds Joinery's configuration for the running stack.
func Config(ep stack.Endpoints, repo string) (config.Config, error) {
	env := map[string]string{}
	for _, kv := range stack.Env(ep) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return cfg, err
	}
	cfg.PolicyFile = filepath.Join(repo, "testdata", "policy", "default.yaml")
	return cfg, nil
}

// AddEmployee enters a hire in the reference HRIS (BambooHR "add employee")
// and returns its ID.
func AddEmployee(ctx context.Context, ep stack.Endpoints, fields map[string]string) (string, error) {
	body, _ := json.Marshal(fields)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		fmt.Sprintf("%s/api/gateway.php/%s/v1/employees/", ep.HRISURL, ep.HRISCompany), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(ep.HRISAPIKey, "x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("add employee: %s: %s", resp.Status, b)
	}
	loc := resp.Header.Get("Location")
	return loc[strings.LastIndex(loc, "/")+1:], nil
}
