// Package e2e runs whole joiners against the real dev stack: an in-process
// worker with the real connectors (LDAP, Vault, HRIS) on its own task queue.
package e2e

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/joinery/joinery/connectors/hris"
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
// and returns its ID: the HR side of a demo or test.
func AddEmployee(ctx context.Context, ep stack.Endpoints, fields map[string]string) (string, error) {
	c, err := hris.New(hris.Config{BaseURL: ep.HRISURL, Company: ep.HRISCompany, APIKey: ep.HRISAPIKey})
	if err != nil {
		return "", err
	}
	return c.AddEmployee(ctx, fields)
}
