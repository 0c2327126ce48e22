package testnet

import "context"

// Progress is told, as a measurement goes, how far it is: after each of
// its rounds, the rounds done of total.
type Progress func(measure string, done, total int)

type progressKey struct{}

// WithProgress returns ctx carrying p, which MeasureIngest, MeasureVerify
// and MeasureLineage call after each round (as httptrace.WithClientTrace
// carries its hooks): long measurements can show that they go on.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// progress tells ctx's Progress, if any.
func progress(ctx context.Context, measure string, done, total int) {
	if p, ok := ctx.Value(progressKey{}).(Progress); ok && p != nil {
		p(measure, done, total)
	}
}
