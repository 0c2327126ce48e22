package testnet

import (
	"context"
	"testing"
	"time"
)

// newTransferWorld starts a federation with opts (DE, FR and BR by
// default) and publishes a TransferWorld on it.
func newTransferWorld(tb testing.TB, opts Options) *TransferWorld {
	tb.Helper()
	if len(opts.Jurisdictions) == 0 {
		opts.Jurisdictions = []string{"DE", "FR", "BR"}
	}
	net, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { net.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		tb.Fatal(err)
	}
	w, err := NewTransferWorld(ctx, net)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}
