package datasets_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// BenchmarkPutObjects stores batches of 1,000 objects of about 500 bytes in
// a local folder: the server side of the first add of a tree of small files.
func BenchmarkPutObjects(b *testing.B) {
	bs, err := blob.Open(context.Background(), b.TempDir(), blob.Options{})
	if err != nil {
		b.Fatal(err)
	}
	svc := datasets.New(storetest.SQLite(b), bs)
	var entries [][]entry
	for i := 0; i < b.N; i++ {
		var es []entry
		for j := 0; j < 1000; j++ {
			c := fmt.Sprintf("object %d %d %0500d", i, j, j)
			es = append(es, entry{name: digest(c), body: c})
		}
		entries = append(entries, es)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		buf := tarOf(b, entries[i]...)
		b.StartTimer()
		if _, err := svc.PutObjects(context.Background(), buf); err != nil {
			b.Fatal(err)
		}
	}
}
