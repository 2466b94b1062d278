package codec

import (
	"fmt"

	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
)

// DialOption returns the gRPC option that makes a Temporal client (and any
// worker built on it) encrypt on the way to the server and decrypt on the
// way back.
//
// It works at the transport rather than through client.Options'
// DataConverter and FailureConverter, although the result on the server is
// the same as a codec data converter plus a failure converter with
// EncodeCommonAttributes: every payload is sealed, and every failure's
// message and stack trace are moved into a sealed payload (they may name
// people). The difference is on the way back: a history fetched through this
// client arrives already decrypted, so the code that reads raw histories with
// the default converter (the audit record, list, tests) keeps working, and
// only a client without the key — or the server's database — sees ciphertext.
// Search attributes are left in clear: the server must index them, so they
// must never carry personal data in the first place.
func DialOption(c *Codec) (grpc.DialOption, error) {
	// The failure interceptor must run before the payload one on the way
	// out (it creates the payload that is then sealed) and after it on the
	// way in; gRPC runs a chain's first interceptor outermost.
	failures, err := converter.NewFailureGRPCClientInterceptor(converter.NewFailureGRPCClientInterceptorOptions{
		EncodeCommonAttributes: true,
	})
	if err != nil {
		return nil, fmt.Errorf("codec: failure interceptor: %w", err)
	}
	payloads, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{
		Codecs: []converter.PayloadCodec{c},
	})
	if err != nil {
		return nil, fmt.Errorf("codec: payload interceptor: %w", err)
	}
	return grpc.WithChainUnaryInterceptor(failures, payloads), nil
}
