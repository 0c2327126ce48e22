package store
import ("testing";"log/slog";"github.com/dgraph-io/badger/v4";"time";"fmt")
var syncW = true
func BenchmarkDbgBare(b *testing.B) {
	for _, per := range []int{1, 30, 210, 1000} {
	b.Run(fmt.Sprint(per), func(b *testing.B) {
	recs := benchRecords(b, 1000)
	db, _ := badger.Open(badgerOptions(Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)}).WithSyncWrites(syncW))
	defer db.Close()
	b.ResetTimer()
	k := 0
	var total time.Duration
	for i := range b.N {
		t0 := time.Now()
		txn := db.NewTransaction(true)
		for j := 0; j < per; j++ {
			k++
			txn.Set([]byte(fmt.Sprintf("k%d-%d", i, j)), recs[k%1000].Bytes()[:100])
		}
		txn.Commit()
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/commit")
	})
	}
}
func BenchmarkDbgBareNoSync(b *testing.B) { syncW = false; BenchmarkDbgBare(b); syncW = true }
