package hris

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

// 408 and 425 invite the same request again, so they retry like a 5xx;
// other 4xx answers stay permanent.
func TestRetryableStatuses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusRequestTimeout, true}, {http.StatusTooEarly, true}, {http.StatusBadGateway, true},
		{http.StatusBadRequest, false}, {http.StatusConflict, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
		c, err := New(Config{BaseURL: srv.URL, Company: "joinery", APIKey: "k"})
		require.NoError(t, err)
		_, err = c.GetWorker(context.Background(), "200")
		srv.Close()
		var ce *connectors.Error
		require.True(t, errors.As(err, &ce), "status %d: %v", tc.status, err)
		require.Equal(t, tc.retryable, connectors.IsRetryable(err), "status %d: %v", tc.status, err)
	}
}
