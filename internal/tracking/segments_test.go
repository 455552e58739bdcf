package tracking_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// historyOrder is the order MLflow's stores return a history in: step,
// timestamp, value, a NaN after the numbers of its step and time.
func historyOrder(a, b tracking.Metric) int {
	if c := cmp.Compare(a.Step, b.Step); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
		return c
	}
	an, bn := math.IsNaN(a.Value), math.IsNaN(b.Value)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	return cmp.Compare(a.Value, b.Value)
}

func sameHistory(t *testing.T, what string, got, want []tracking.Metric) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d points, want %d", what, len(got), len(want))
	}
	for i := range got {
		if historyOrder(got[i], want[i]) != 0 || got[i].Key != want[i].Key {
			t.Fatalf("%s: point %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// Batches that overlap in steps, arrive out of order and repeat points are
// read back as one history in order with each point once, as MLflow's
// primary key keeps them, through every read path, whether they have been
// compacted into segments or not.
func TestHistoryMergesOverlappingBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		id := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{})).Info.RunID
		r := rand.New(rand.NewPCG(1, 2))
		var logged []tracking.Metric
		for b := range 200 {
			var ms []tracking.Metric
			base := int64(r.IntN(400)) // batches land anywhere, so they overlap
			for range 1 + r.IntN(300) {
				m := tracking.Metric{Key: "loss", Step: base + int64(r.IntN(60)), Timestamp: int64(r.IntN(3)), Value: float64(r.IntN(4))}
				switch r.IntN(20) {
				case 0:
					m.Value = math.NaN()
				case 1:
					m.Value = math.Inf(-1)
				case 2:
					m.Step = -m.Step
				}
				if b > 0 && r.IntN(10) == 0 { // a point logged before, again
					m = logged[r.IntN(len(logged))]
				}
				ms = append(ms, m)
			}
			ms = append(ms, tracking.Metric{Key: "other", Step: int64(b), Value: 1})
			if err := s.LogBatch(ctx, id, ms, nil, nil); err != nil {
				t.Fatal(err)
			}
			logged = append(logged, ms[:len(ms)-1]...)
		}
		// Some batches were compacted into segments and some were not.
		var segments, batches int
		if err := db.Read.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM metric_segments), (SELECT COUNT(*) FROM metric_batches)`).Scan(&segments, &batches); err != nil {
			t.Fatal(err)
		}
		if segments == 0 || batches == 0 {
			t.Fatalf("%d segments and %d batches: the test reads only one of the two", segments, batches)
		}
		want := slices.Clone(logged)
		slices.SortFunc(want, historyOrder)
		want = slices.CompactFunc(want, func(a, b tracking.Metric) bool { return historyOrder(a, b) == 0 })
		if len(want) == len(logged) {
			t.Fatal("the batches repeated no point; the test would not show that repeats are dropped")
		}

		all, _, err := s.GetMetricHistory(ctx, id, "loss", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		sameHistory(t, "get-history", all, want)

		var streamed []tracking.Metric
		if err := s.EachMetricHistoryPoint(ctx, id, "loss", func(m *tracking.Metric) error {
			streamed = append(streamed, *m)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sameHistory(t, "streamed history", streamed, want)

		var paged []tracking.Metric
		for tok := ""; ; {
			page, next, err := s.GetMetricHistory(ctx, id, "loss", 97, tok)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			tok = next
		}
		sameHistory(t, "paged history", paged, want)
		// A token of an offset alone, as servers before the point cursor
		// wrote them, still pages by offset.
		page, next, err := s.GetMetricHistory(ctx, id, "loss", 50, search.EncodePageToken(10))
		if err != nil {
			t.Fatal(err)
		}
		sameHistory(t, "page from an offset token", page, want[10:60])
		if page, _, err = s.GetMetricHistory(ctx, id, "loss", 50, next); err != nil {
			t.Fatal(err)
		}
		sameHistory(t, "the page after it", page, want[60:110])
		half := base64.StdEncoding.EncodeToString([]byte(`{"offset": 1, "step": 2}`))
		_, _, err = s.GetMetricHistory(ctx, id, "loss", 50, half)
		wantCode(t, err, errs.InvalidArgument)

		bulk, err := s.GetMetricHistoryBulk(ctx, []string{id}, "loss", 100000)
		if err != nil {
			t.Fatal(err)
		}
		byTime := slices.Clone(want)
		slices.SortStableFunc(byTime, func(a, b tracking.Metric) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		var bulkPoints []tracking.Metric
		for _, p := range bulk {
			bulkPoints = append(bulkPoints, p.Metric)
		}
		sameHistory(t, "get-history-bulk", bulkPoints, byTime)

		// Every step is sampled when there are fewer than max_results.
		sampled, err := s.SampleMetricHistory(ctx, tracking.BulkIntervalRequest{RunIDs: []string{id}, MetricKey: "loss"})
		if err != nil {
			t.Fatal(err)
		}
		var sampledPoints []tracking.Metric
		for _, p := range sampled {
			sampledPoints = append(sampledPoints, p.Metric)
		}
		var nonNegative []tracking.Metric // the range defaults to [0, last step]
		for _, m := range want {
			if m.Step >= 0 {
				nonNegative = append(nonNegative, m)
			}
		}
		sameHistory(t, "get-history-bulk-interval", sampledPoints, nonNegative)
	})
}

// Points written into the metrics table by a server before segments are
// moved into segments when the service starts, and read back unchanged.
func TestMetricRowsMoveIntoSegments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		id := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{})).Info.RunID
		other := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{})).Info.RunID
		var want []tracking.Metric
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			for i := range 2500 {
				isNaN, value := 0, float64(i%7)
				if i%100 == 0 {
					isNaN, value = 1, 0
				}
				for _, run := range []string{id, other} {
					if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES (?, ?, ?, ?, ?, ?)`),
						run, "acc", i/2, 1000-i%3, value, isNaN); err != nil {
						return err
					}
				}
				m := tracking.Metric{Key: "acc", Step: int64(i / 2), Timestamp: int64(1000 - i%3), Value: value}
				if isNaN == 1 {
					m.Value = math.NaN()
				}
				want = append(want, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(want, historyOrder)
		// And a point logged after the upgrade, between the old ones.
		if err := s.LogMetric(ctx, id, tracking.Metric{Key: "acc", Step: 5, Timestamp: 1, Value: 0.5}); err != nil {
			t.Fatal(err)
		}

		s = newService(t, db) // a server start
		var left int
		if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM metrics`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("%d rows left in the metrics table", left)
		}
		got, _, err := s.GetMetricHistory(ctx, other, "acc", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		sameHistory(t, "moved history", got, want)
		got, _, err = s.GetMetricHistory(ctx, id, "acc", 0, "")
		if err != nil {
			t.Fatal(err)
		}
		withNew := append(slices.Clone(want), tracking.Metric{Key: "acc", Step: 5, Timestamp: 1, Value: 0.5})
		slices.SortFunc(withNew, historyOrder)
		sameHistory(t, "moved history with a new point", got, withNew)
	})
}

// A segment or batch that is not in the format this server writes is an
// error, not a wrong answer.
func TestCorruptSegmentIsAnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		id := must[tracking.Run](t)(s.CreateRun(ctx, tracking.CreateRunRequest{})).Info.RunID
		corrupt := []struct {
			table, insert string
			data          []byte
		}{
			{"metric_segments", `INSERT INTO metric_segments (run_uuid, key, first_step, id, last_step, points, data) VALUES (?, 'k', 0, 0, 0, 1, ?)`, nil},
			{"metric_segments", ``, []byte{9, 0, 0}},
			{"metric_segments", ``, append([]byte{1}, make([]byte, 25)...)},
			{"metric_batches", `INSERT INTO metric_batches (run_uuid, points, data) VALUES (?, 1, ?)`, []byte{1, 1, 'k', 20, 0}},
			{"metric_batches", ``, []byte{1, 5, 'k'}},
			{"metric_batches", ``, []byte{2}},
		}
		insert := ""
		for _, c := range corrupt {
			if c.insert != "" {
				insert = c.insert
			}
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, db.Q(insert), id, append([]byte{}, c.data...))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.GetMetricHistory(ctx, id, "k", 0, ""); err == nil {
				t.Fatalf("a row of %s of %d bytes was read without an error", c.table, len(c.data))
			}
			if err := db.Tx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM `+c.table)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
