package testnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// TransferWorld is a federation ready for transfer decisions, for tests,
// benchmarks and `entente bench`: DE and BR rule sets (any destination or
// origin, up to tier 3, marketing prohibited, one CEL condition each), a
// DE platform's consent (face data, research, up to tier 3, to BR) and a
// BR recipient.
type TransferWorld struct {
	Net       *Net
	Platform  *Party // DE: the consent's issuer
	Recipient *Party // BR
	Consent   *protocol.Record
	// Request is the tier-1 transfer every check allows: the consent's
	// data from the platform to the recipient, for research, 30 days.
	Request protocol.TransferRequest
}

// NewTransferWorld publishes the world's records on net (which has DE
// and BR) and waits until every node holds them.
func NewTransferWorld(ctx context.Context, net *Net) (*TransferWorld, error) {
	w := &TransferWorld{Net: net}
	var err error
	if w.Platform, err = net.NewParty(ctx, "DE", "platform", protocol.RoleController); err != nil {
		return nil, err
	}
	if w.Recipient, err = net.NewParty(ctx, "BR", "recipient", protocol.RoleController); err != nil {
		return nil, err
	}
	rules := protocol.Rules{MaxTier: 3, ProhibitedPurposes: []string{"marketing"}, MaxRetentionDays: 365, BlockOnIncident: protocol.SeverityHigh,
		Conditions: []protocol.Condition{{ID: "no-iris-beyond-tier-1", Description: "iris data is not resold", Expr: `!("iris" in transfer.categories) || transfer.tier <= 1`}}}
	wait := []*protocol.Record{w.Platform.Accreditation, w.Recipient.Accreditation}
	for _, j := range []string{"DE", "BR"} {
		rs, err := Sign(net.Authorities[j], &protocol.Ruleset{Jurisdiction: j, Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
			Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules},
			Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}})
		if err != nil {
			return nil, err
		}
		if err := net.Submit(ctx, net.NodeFor(j), rs); err != nil {
			return nil, err
		}
		wait = append(wait, rs)
	}
	subject := make([]byte, 32)
	rand.Read(subject)
	if w.Consent, err = Sign(w.Platform.Key, &protocol.Consent{
		Subject: subject, Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{"research"},
		MaxTier: 3, Destinations: []string{"BR"}, RetentionDays: 90, ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in",
	}); err != nil {
		return nil, err
	}
	if err := net.Submit(ctx, net.NodeFor("DE"), w.Consent); err != nil {
		return nil, err
	}
	for _, r := range append(wait, w.Consent) {
		if err := net.WaitAll(ctx, r.CID()); err != nil {
			return nil, err
		}
	}
	w.Request = protocol.TransferRequest{
		Consent: protocol.LinkTo(w.Consent.CID()), From: "DE", To: "BR", Sender: w.Platform.ID.String(), Recipient: w.Recipient.ID.String(),
		Purpose: "research", Categories: []string{"face"}, Tier: 1, RetentionDays: 30,
	}
	return w, nil
}

// Resale has m sign the world's transfer from tier 1 up to tier−1, each
// resale by the previous recipient to a new BR platform (NextTier),
// naming the decision before it; and returns the request of the given
// tier, which names the last of them as its parent (the world's Request
// for tier 1). Every decision of the chain must be allowed.
func (w *TransferWorld) Resale(ctx context.Context, m *Member, tier int) (protocol.TransferRequest, error) {
	req := w.Request
	for req.Tier < int64(tier) {
		v, err := m.Services().Verify.Verify(ctx, req)
		if err != nil {
			return req, err
		}
		if req, err = w.NextTier(ctx, req, v); err != nil {
			return req, err
		}
	}
	return req, nil
}

// NextTier is the resale of what req, allowed by v, transferred: by its
// recipient, from BR, to a new BR platform, a tier higher and a day
// shorter, naming v's decision as its parent; At is left for the node.
func (w *TransferWorld) NextTier(ctx context.Context, req protocol.TransferRequest, v *service.Verdict) (protocol.TransferRequest, error) {
	if !v.Decision.Allowed() || v.Receipt == nil {
		return req, fmt.Errorf("testnet: the tier-%d decision is not an allow signed in a receipt: %+v", req.Tier, v.Decision.Failed())
	}
	buyer, err := w.Net.NewParty(ctx, "BR", fmt.Sprintf("tier-%d buyer", req.Tier+1), protocol.RoleController)
	if err != nil {
		return req, err
	}
	if err := w.Net.WaitAll(ctx, buyer.Accreditation.CID()); err != nil {
		return req, err
	}
	req.From, req.Sender, req.Recipient = "BR", req.Recipient, buyer.ID.String()
	req.Tier, req.RetentionDays, req.At = req.Tier+1, req.RetentionDays-1, 0
	req.Parent = &protocol.DecisionRef{Receipt: protocol.LinkTo(v.Receipt.CID()), Item: int64(v.Item)}
	return req, nil
}
