package testnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/signature"
	"github.com/entente-net/entente/store"
)

// SignAccreditations signs n controller accreditations of fresh keys by
// jurisdiction j's authority, on every core: the cheapest records to
// authorise, for benchmarks of the ingest pipeline itself.
func (n *Net) SignAccreditations(j string, count int) ([]*protocol.Record, error) {
	auth, ok := n.Authorities[j]
	if !ok {
		return nil, fmt.Errorf("testnet: no jurisdiction %s", j)
	}
	out := make([]*protocol.Record, count)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	now := time.Now()
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(count); i = next.Add(1) - 1 {
				k, err := config.GenerateKey()
				if err != nil {
					errs[w] = err
					return
				}
				id, _ := peer.IDFromPrivateKey(k)
				if out[i], err = protocol.Sign(auth, now.UnixMilli(), &protocol.Accreditation{
					Subject: id.String(), Jurisdiction: j, Roles: []protocol.Role{protocol.RoleController},
					Name: fmt.Sprintf("platform %d", i), ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.AddDate(1, 0, 0).UnixMilli(),
				}); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IngestReading is what MeasureIngest found: the time the records took
// to ingest, and, interleaved with it, the times of the machine's two
// limits (DESIGN.md §10): bare signature checks on the same cores, and
// bare synced Badger writes of the same records.
type IngestReading struct {
	Records    int
	IngestTime time.Duration
	IngestCPU  time.Duration // CPU time of the process while ingesting
	// Verifications were made with each verifier, in as many rounds.
	Verifications int
	// StdVerifyTime is crypto/ed25519.Verify's; KeysVerifyTime is that of
	// the verifier nodes use (signature.Keys, warm), which decides the
	// same.
	StdVerifyTime  time.Duration
	KeysVerifyTime time.Duration
	// DiskTime is the time a store.Baseline took to write the same
	// records (zero when none was given), and DiskCPU the CPU time the
	// process used meanwhile.
	DiskTime time.Duration
	DiskCPU  time.Duration
}

// Add is the reading of r's rounds and o's together.
func (r IngestReading) Add(o IngestReading) IngestReading {
	r.Records += o.Records
	r.IngestTime += o.IngestTime
	r.IngestCPU += o.IngestCPU
	r.Verifications += o.Verifications
	r.StdVerifyTime += o.StdVerifyTime
	r.KeysVerifyTime += o.KeysVerifyTime
	r.DiskTime += o.DiskTime
	r.DiskCPU += o.DiskCPU
	return r
}

// IngestRate is records ingested per second.
func (r IngestReading) IngestRate() float64 { return float64(r.Records) / r.IngestTime.Seconds() }

// StdVerifyRate is crypto/ed25519 verifications per second on every core.
func (r IngestReading) StdVerifyRate() float64 {
	return float64(r.Verifications) / r.StdVerifyTime.Seconds()
}

// KeysVerifyRate is the nodes' own verifications per second on every core.
func (r IngestReading) KeysVerifyRate() float64 {
	return float64(r.Verifications) / r.KeysVerifyTime.Seconds()
}

// DiskRate is bare synced Badger writes of the records per second (0 when
// not measured).
func (r IngestReading) DiskRate() float64 {
	if r.DiskTime == 0 {
		return 0
	}
	return float64(r.Records) / r.DiskTime.Seconds()
}

// Limit is the lower of the machine's two limits, in records per second,
// and its name: "cpu" (bare verification) or "disk" (bare writes).
func (r IngestReading) Limit() (float64, string) {
	if d := r.DiskRate(); d > 0 && d < r.StdVerifyRate() {
		return d, "disk"
	}
	return r.StdVerifyRate(), "cpu"
}

// OverLimit is ingest ÷ the lower limit.
func (r IngestReading) OverLimit() float64 {
	l, _ := r.Limit()
	return r.IngestRate() / l
}

// SharedLimit is the rate at which this machine's cores could do both
// baselines' work for every record — one crypto/ed25519 verification
// (its CPU time: cores ÷ StdVerifyRate) and the bare writes' CPU time —
// and no more than the bare writes' own rate: the limit of a node that
// must verify and write each record on the same cores, when the bare
// writes themselves keep cores busy. 0 when the writes were not measured.
// (docs/performance.md, issue 17, session 9.)
func (r IngestReading) SharedLimit() float64 {
	if r.DiskTime == 0 {
		return 0
	}
	cores := float64(runtime.GOMAXPROCS(0))
	perRecord := cores/r.StdVerifyRate() + r.DiskCPUPerRecord().Seconds()
	return min(cores/perRecord, r.DiskRate())
}

// CoresBusy is the CPU the process used while ingesting, in cores.
func (r IngestReading) CoresBusy() float64 { return r.IngestCPU.Seconds() / r.IngestTime.Seconds() }

// CPUPerRecord is the CPU time ingest used per record, and DiskCPUPerRecord
// the bare writes' (0 when not measured): what each costs the cores,
// whatever the machine's other load does to the rates.
func (r IngestReading) CPUPerRecord() time.Duration {
	return r.IngestCPU / time.Duration(max(r.Records, 1))
}

// DiskCPUPerRecord is the bare writes' CPU time per record (0 when not
// measured).
func (r IngestReading) DiskCPUPerRecord() time.Duration {
	return r.DiskCPU / time.Duration(max(r.Records, 1))
}

// ingestRounds is how many slices MeasureIngest cuts the records into.
// A shared machine's speed drifts by tens of percent over seconds; with
// ingest and baselines taking turns every few hundred milliseconds, all
// see the same machine.
const ingestRounds = 10

// MeasureIngest submits recs to m from submitters concurrent callers, in
// rounds, and after each round times bare Ed25519 verification of a
// record-sized message on every core and, with disk, bare synced writes
// of the round's records: the baselines of ingest. Every record must be
// new to m and to disk.
func MeasureIngest(ctx context.Context, m *Member, recs []*protocol.Record, submitters int, disk *store.Baseline) (IngestReading, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return IngestReading{}, err
	}
	msg := make([]byte, 300)
	sig := ed25519.Sign(priv, msg)
	keys := signature.NewKeys(1)
	for range 2 { // the second sighting builds the key's table
		keys.Verify(pub, msg, sig)
	}
	per := max((len(recs)+ingestRounds-1)/ingestRounds, 1)
	rounds := (len(recs) + per - 1) / per
	verifications := max(per/2, 1000)
	var r IngestReading
	for start, round := 0, 1; start < len(recs); start, round = start+per, round+1 {
		chunk := recs[start:min(start+per, len(recs))]
		cpu0, t0 := cpuTime(), time.Now()
		if err := submitConcurrently(ctx, m, chunk, submitters); err != nil {
			return r, err
		}
		r.IngestTime += time.Since(t0)
		r.IngestCPU += cpuTime() - cpu0
		r.Records += len(chunk)
		r.StdVerifyTime += onEveryCore(verifications, func() bool { return ed25519.Verify(pub, msg, sig) })
		r.KeysVerifyTime += onEveryCore(verifications, func() bool { return keys.Verify(pub, msg, sig) })
		r.Verifications += verifications
		if disk != nil {
			cpu0, t0 := cpuTime(), time.Now()
			if err := disk.Write(ctx, chunk); err != nil {
				return r, err
			}
			r.DiskTime += time.Since(t0)
			r.DiskCPU += cpuTime() - cpu0
		}
		progress(ctx, "ingest", round, rounds)
	}
	return r, nil
}

// submitConcurrently submits recs to m from callers goroutines; each must
// be new.
func submitConcurrently(ctx context.Context, m *Member, recs []*protocol.Record, callers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(recs)) && failed.Load() == nil; i = next.Add(1) - 1 {
				acc, err := m.Services().Ingest.SubmitRecord(ctx, recs[i])
				if err == nil && !acc.New {
					err = fmt.Errorf("record %s was already held", recs[i].CID())
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// onEveryCore runs verify count times on GOMAXPROCS goroutines and
// returns the time taken; it panics if verify says false (a valid
// signature that does not verify would make any rate meaningless).
func onEveryCore(count int, verify func() bool) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if !verify() {
					panic("ed25519: a valid signature does not verify")
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// cpuTime is the CPU time this process has used (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
