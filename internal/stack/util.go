package stack

import (
	"context"
	"net"
	"time"

	"go.temporal.io/api/workflowservice/v1"
)

func describeNS(ns string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: ns}
}

// dialer bounds connection attempts by ctx's deadline (or 3s).
func dialer(ctx context.Context) *net.Dialer {
	d := &net.Dialer{Timeout: 3 * time.Second}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	return d
}

// passwordPolicyHCL is the dev stack's Vault password policy for initial
// credentials: 20 characters with every class represented.
const passwordPolicyHCL = `length = 20
rule "charset" {
  charset   = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset   = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset   = "!@#$%^&*-_=+"
  min-chars = 1
}
`
