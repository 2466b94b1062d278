package codec

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// A failure message may name a person: sealed, it is not in the failure at
// all, and only a converter holding the key gets it back.
func TestFailureConverterSealsMessages(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	fc := FailureConverter(c)
	f := fc.ErrorToFailure(temporal.NewApplicationError("username grace.hopper already taken by Grace Hopper", "Taken"))
	require.Equal(t, "Encoded failure", f.GetMessage())
	require.Empty(t, f.GetStackTrace())
	wire, err := proto.Marshal(f)
	require.NoError(t, err)
	require.NotContains(t, string(wire), "Grace")
	require.Equal(t, EncodingEncrypted, string(f.GetEncodedAttributes().GetMetadata()[MetadataEncoding]))

	// FailureToError restores the message into the failure it is given.
	sealed := proto.Clone(f).(*failurepb.Failure)
	back := fc.FailureToError(f)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(back, &ae))
	require.Contains(t, ae.Error(), "already taken by Grace Hopper")
	require.Equal(t, "Taken", ae.Type())

	// Without the key the message stays sealed.
	other := FailureConverter(newCodec(t, key(t, "k2")))
	require.NotContains(t, other.FailureToError(sealed).Error(), "Grace")
}
