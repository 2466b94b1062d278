package inbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/internal/e2e"
)

// searchAttributes reads a workflow's search attributes as the Temporal
// server holds them (DescribeWorkflowExecution), each decoded to text: a
// list attribute's values are joined with ",".
func searchAttributes(t *testing.T, h *e2e.Harness, workflowID string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc, err := h.C.DescribeWorkflowExecution(ctx, workflowID, "")
	require.NoError(t, err)
	out := map[string]string{}
	dc := converter.GetDefaultDataConverter()
	for name, p := range desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		var list []string
		if dc.FromPayload(p, &list) == nil {
			out[name] = strings.Join(list, ",")
			continue
		}
		var v any
		require.NoError(t, dc.FromPayload(p, &v), name)
		out[name] = fmt.Sprint(v)
	}
	return out
}

// requireNoNamesInSearchAttributes fails when any search attribute of the
// workflow, or its ID, contains one of names (case-insensitively).
func requireNoNamesInSearchAttributes(t *testing.T, h *e2e.Harness, workflowID string, names []string) {
	t.Helper()
	sa := searchAttributes(t, h, workflowID)
	require.NotEmpty(t, sa)
	t.Logf("search attributes of %s: %v", workflowID, sa)
	for attr, v := range sa {
		for _, n := range names {
			if n == "" {
				continue
			}
			require.NotContains(t, strings.ToLower(v), strings.ToLower(n), "search attribute %s = %q names %q", attr, v, n)
			require.NotContains(t, strings.ToLower(workflowID), strings.ToLower(n), "workflow ID names %q", n)
		}
	}
}
