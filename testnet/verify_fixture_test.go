package testnet

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// transferWorld is a federation ready for transfer decisions: DE and BR
// rule sets, a DE platform with a consent, a BR recipient.
type transferWorld struct {
	net       *Net
	platform  *Party
	recipient *Party
	consent   *protocol.Record
	request   protocol.TransferRequest
}

func newTransferWorld(tb testing.TB, opts Options) *transferWorld {
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
	w := &transferWorld{net: net}
	if w.platform, err = net.NewParty(ctx, "DE", "platform", protocol.RoleController); err != nil {
		tb.Fatal(err)
	}
	if w.recipient, err = net.NewParty(ctx, "BR", "recipient", protocol.RoleController); err != nil {
		tb.Fatal(err)
	}
	rules := func(block protocol.Severity) protocol.Rules {
		return protocol.Rules{MaxTier: 2, ProhibitedPurposes: []string{"marketing"}, MaxRetentionDays: 365, BlockOnIncident: block,
			Conditions: []protocol.Condition{{ID: "no-iris-beyond-tier-1", Description: "iris data is not resold", Expr: `!("iris" in transfer.categories) || transfer.tier <= 1`}}}
	}
	var waitFor []*protocol.Record
	for _, j := range []string{"DE", "BR"} {
		rs, err := Sign(net.Authorities[j], &protocol.Ruleset{Jurisdiction: j, Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
			Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules(protocol.SeverityHigh)},
			Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules(protocol.SeverityHigh)}})
		if err != nil {
			tb.Fatal(err)
		}
		if err := net.Submit(ctx, net.NodeFor(j), rs); err != nil {
			tb.Fatal(err)
		}
		waitFor = append(waitFor, rs)
	}
	subject := make([]byte, 32)
	rand.Read(subject)
	if w.consent, err = Sign(w.platform.Key, &protocol.Consent{
		Subject: subject, Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 1, Destinations: []string{"BR"}, RetentionDays: 90, ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in",
	}); err != nil {
		tb.Fatal(err)
	}
	if err := net.Submit(ctx, net.NodeOf("DE"), w.consent); err != nil {
		tb.Fatal(err)
	}
	waitFor = append(waitFor, w.platform.Accreditation, w.recipient.Accreditation, w.consent)
	for _, r := range waitFor {
		if err := net.WaitAll(ctx, r.CID()); err != nil {
			tb.Fatal(err)
		}
	}
	w.request = protocol.TransferRequest{
		Consent: protocol.LinkTo(w.consent.CID()), From: "DE", To: "BR", Sender: w.consent.Issuer().String(), Recipient: w.recipient.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30,
	}
	return w
}
