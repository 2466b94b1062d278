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
