package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// Observed predictions are written when the log's writer runs (and all of
// them before it stops), read back by window with their labels, and
// pruned after the retention period.
func TestPredictionLogWritesReadsAndPrunes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		m := f.deployCredit()
		clock := time.UnixMilli(1_000_000)
		f.s.Now = func() time.Time { return clock }
		x := []float32{1, 2, float32(math.NaN()), 4}
		for _, id := range []string{"r1", "r2", "r3"} {
			f.s.Observe("credit", m, id, 1, x, []float32{0.25}, 3*time.Millisecond)
		}
		x[0] = 99 // the log copied the caller's buffer
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		f.s.plog.run(ctx) // a stopped writer still writes what is queued
		if st := f.s.plog.Stats(); st.Logged != 3 || st.Queued != 0 || st.Dropped != 0 {
			t.Fatalf("stats: %+v", st)
		}
		if err := f.s.RecordFeedback(f.ctx, "credit", []Feedback{{RequestID: "r2", Label: json.RawMessage(`1`)}}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RecordFeedback(f.ctx, "credit", []Feedback{{RequestID: "r2", Label: json.RawMessage(`0`)}}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RecordFeedback(f.ctx, "nope", []Feedback{{RequestID: "r2", Label: json.RawMessage(`1`)}}); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("feedback to a missing deployment: %v", err)
		}
		got, err := f.s.Predictions(f.ctx, "credit", 0, math.MaxInt64, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || string(got[0].Inputs) != "[1,2,null,4]" || string(got[0].Outputs) != "[0.25]" ||
			string(got[1].Label) != "0" || got[0].Label != nil || got[1].LatencyUS != 3000 || got[0].Version != 1 {
			t.Fatalf("read back: %+v", got)
		}
		if got, _ := f.s.Predictions(f.ctx, "credit", 1_000_001, math.MaxInt64, 100); len(got) != 0 {
			t.Errorf("a window after the predictions holds %d", len(got))
		}
		clock = clock.Add(DefaultLogRetention + time.Minute)
		f.s.plog.prune(f.ctx)
		if got, _ := f.s.Predictions(f.ctx, "credit", 0, math.MaxInt64, 100); len(got) != 0 {
			t.Errorf("after the retention period %d predictions remain", len(got))
		}
	})
}

// A full queue drops and counts instead of blocking the request.
func TestPredictionLogDropsWhenFull(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.s.plog.queue = make(chan *Prediction, 2)
	for i := 0; i < 5; i++ {
		f.s.plog.Record(&Prediction{})
	}
	if st := f.s.plog.Stats(); st.Queued != 2 || st.Dropped != 3 {
		t.Errorf("stats: %+v", st)
	}
}

// A group is written whole and in order.
func TestPredictionLogWritesGroups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.register("credit", smallModel)
		if _, err := f.s.Create(f.ctx, "credit", "models:/credit/1"); err != nil {
			t.Fatal(err)
		}
		group := make([]*Prediction, 135)
		for i := range group {
			group[i] = &Prediction{PredictionInfo: PredictionInfo{RequestID: "r" + strconv.Itoa(i), Deployment: "credit", ModelName: "credit",
				Version: 1, Time: int64(1000 + i), Rows: 1}, Inputs: []float32{float32(i), 1, 2, 3}, Outputs: []float32{0.5}}
		}
		f.s.plog.write(f.ctx, group)
		got, err := f.s.Predictions(f.ctx, "credit", 0, math.MaxInt64, 1000)
		if err != nil || len(got) != len(group) || f.s.plog.Stats().Logged != int64(len(group)) {
			t.Fatalf("wrote %d predictions, read back %d (%v), stats %+v", len(group), len(got), err, f.s.plog.Stats())
		}
		for i, p := range got {
			if p.RequestID != "r"+strconv.Itoa(i) || string(p.Inputs) != "["+strconv.Itoa(i)+",1,2,3]" {
				t.Fatalf("prediction %d read back as %+v", i, p)
			}
		}
	})
}

// BenchmarkPredictionLogWrite times writing one group of one-row
// predictions of 30 features, per prediction.
func BenchmarkPredictionLogWrite(b *testing.B) {
	f := newFixture(b, storetest.SQLite(b))
	group := make([]*Prediction, DefaultLogGroup)
	x := make([]float32, 30)
	for i := range x {
		x[i] = float32(i) * 1.37
	}
	for i := range group {
		group[i] = &Prediction{PredictionInfo: PredictionInfo{RequestID: "bench-" + strconv.Itoa(i), Deployment: "credit",
			ModelName: "credit", Version: 1, Time: int64(i), LatencyUS: 40, Rows: 1}, Inputs: x, Outputs: []float32{0.25}}
	}
	b.ResetTimer()
	for range b.N {
		f.s.plog.write(f.ctx, group)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(group)), "ns/prediction")
}

// Predictions that trickle in are committed as whole groups: the writer
// waits up to its linger for a group to fill, does not wait once it is
// full, and writes a partial group when it stops.
func TestPredictionLogLingersForAGroup(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	m := f.deployCredit()
	l := f.s.plog
	l.group, l.linger = 4, time.Hour
	segments := func() int {
		var n int
		if err := f.s.db.Read.QueryRowContext(f.ctx, `SELECT count(*) FROM prediction_segments`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithCancel(f.ctx)
	stopped := make(chan struct{})
	go func() { l.run(ctx); close(stopped) }()
	x := []float32{1, 2, 3, 4}
	observe := func(from, to int) {
		for i := from; i < to; i++ {
			f.s.Observe("credit", m, "r"+strconv.Itoa(i), 1, x, []float32{0.5}, time.Millisecond)
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitLogged := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); l.Stats().Logged < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d predictions logged after 10 s, want %d: a full group waited for the linger", l.Stats().Logged, n)
			}
		}
	}
	observe(0, 4)
	waitLogged(4) // a full group does not wait out the hour
	observe(4, 9)
	waitLogged(8)
	time.Sleep(20 * time.Millisecond) // room for a write the ninth prediction should not cause
	if st, n := l.Stats(), segments(); st.Logged != 8 || n != 2 {
		t.Fatalf("after two full groups and one lingering prediction: %d logged in %d segments, want 8 in 2", st.Logged, n)
	}
	cancel()
	<-stopped
	if st, n := l.Stats(), segments(); st.Logged != 9 || st.Queued != 0 || n != 3 {
		t.Fatalf("after the writer stopped: %d logged in %d segments (%d queued), want 9 in 3", st.Logged, n, st.Queued)
	}
}

// deployCredit deploys smallModel as deployment "credit" and returns the
// version its traffic routes to.
func (f *fixture) deployCredit() *Loaded {
	f.t.Helper()
	f.register("credit", smallModel)
	if _, err := f.s.Create(f.ctx, "credit", "models:/credit/1"); err != nil {
		f.t.Fatal(err)
	}
	m, _, err := f.s.Route("credit", "")
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// Written predictions are recycled, and one a shadow is still scoring is
// not: with observers, a shadow and the writer all running, every logged
// prediction keeps the values it was observed with.
func TestRecycledPredictionsKeepTheirValues(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	m := f.deployCredit()
	f.register("credit", smallModel)
	if _, err := f.s.SetShadow(f.ctx, "credit", "models:/credit/2", 50); err != nil {
		t.Fatal(err)
	}
	l := f.s.plog
	l.group, l.linger = 16, time.Millisecond
	ctx, cancel := context.WithCancel(f.ctx)
	stopped := make(chan struct{})
	go func() { l.run(ctx); close(stopped) }()
	const observers, each = 4, 500
	var wg sync.WaitGroup
	for o := range observers {
		wg.Go(func() {
			x, y := make([]float32, 4), make([]float32, 1)
			for i := range each {
				n := o*each + i
				for j := range x {
					x[j] = float32(10*n + j)
				}
				y[0] = float32(n)
				f.s.Observe("credit", m, "r"+strconv.Itoa(n), 1, x, y, time.Millisecond)
			}
		})
	}
	wg.Wait()
	for len(f.s.shadowSlots) > 0 { // shadows still scoring
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-stopped
	got, err := f.s.Predictions(f.ctx, "credit", 0, math.MaxInt64, 10000)
	if err != nil {
		t.Fatal(err)
	}
	shadows := 0
	for _, p := range got {
		n, err := strconv.Atoi(strings.TrimPrefix(p.RequestID, "r"))
		if err != nil {
			t.Fatalf("request id %q", p.RequestID)
		}
		want := fmt.Sprintf("[%d,%d,%d,%d]", 10*n, 10*n+1, 10*n+2, 10*n+3)
		if string(p.Inputs) != want || (!p.Shadow && string(p.Outputs) != "["+strconv.Itoa(n)+"]") {
			t.Fatalf("%s (shadow %v) logged inputs %s, outputs %s; observed with %s, [%d]", p.RequestID, p.Shadow, p.Inputs, p.Outputs, want, n)
		}
		if p.Shadow {
			shadows++
		}
	}
	if st := l.Stats(); len(got) != observers*each+shadows || shadows == 0 || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("%d predictions logged, %d of them a shadow's, want %d and some; stats %+v", len(got), shadows, observers*each+shadows, st)
	}
}
