package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/pipelines/runs"
	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
	"github.com/slipwayml/slipway/internal/tracking"
)

// clock is a time that tests move by hand; every service of a test reads
// the same one.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type fixture struct {
	t       *testing.T
	ctx     context.Context
	db      *store.DB
	runs    *runs.Service
	data    *datasets.Service
	clock   *clock
	s       *Service
	project string
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	blobs, err := blob.Open(ctx, t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blobs.Close() })
	tr, err := tracking.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	data := datasets.New(db, blobs)
	rs := runs.New(db, blobs, tr, data, registry.New(db, blobs, tr), t.TempDir())
	rs.Log = quiet
	f := &fixture{t: t, ctx: ctx, db: db, runs: rs, data: data, project: t.TempDir(),
		clock: &clock{t: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)}}
	f.s = f.service()
	f.put(nightlySpec)
	return f
}

// service is a scheduler over the fixture's database, as a second server
// or a restarted one would have.
func (f *fixture) service() *Service {
	s := New(f.db, f.runs, f.data)
	s.Log = quiet
	s.Now = f.clock.Now
	return s
}

const nightlySpec = `name: nightly
params:
  rows: 3
  mode: fast
steps:
  go:
    command: echo ${params.rows} ${params.mode}
`

func (f *fixture) put(specText string) {
	f.t.Helper()
	name := strings.TrimPrefix(strings.SplitN(specText, "\n", 2)[0], "name: ")
	if _, err := f.runs.PutPipeline(f.ctx, name, "pipeline.yaml", []byte(specText), f.project, "alice"); err != nil {
		f.t.Fatal(err)
	}
}

// queued returns the pipeline's runs, oldest first.
func (f *fixture) queued(pipeline string) []runs.Run {
	f.t.Helper()
	list, _, err := f.runs.ListRuns(f.ctx, runs.ListRunsRequest{Pipeline: pipeline, MaxResults: runs.MaxListRuns})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list
}

// finishQueued cancels the pipeline's queued runs, as if a runner had
// taken them: a schedule skips its slot while its last run waits.
func (f *fixture) finishQueued(pipeline string) {
	f.t.Helper()
	for _, r := range f.queued(pipeline) {
		if r.Status == runs.Queued {
			if _, err := f.runs.Cancel(f.ctx, r.ID); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

func (f *fixture) schedule(req ScheduleRequest) Trigger {
	f.t.Helper()
	if req.Pipeline == "" {
		req.Pipeline = "nightly"
	}
	tr, err := f.s.CreateSchedule(f.ctx, req)
	if err != nil {
		f.t.Fatal(err)
	}
	return tr
}

func (f *fixture) get(id string) Trigger {
	f.t.Helper()
	tr, err := f.s.Get(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return tr
}

// addVersion commits content as the next version of a dataset.
func (f *fixture) addVersion(name, content string) int64 {
	f.t.Helper()
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	if _, err := f.data.PutObject(f.ctx, digest, int64(len(content)), strings.NewReader(content)); err != nil {
		f.t.Fatal(err)
	}
	v, created, err := f.data.Commit(f.ctx, name, datasets.Commit{Files: []datasets.File{{Path: "rows.csv", Digest: digest, Size: int64(len(content))}}}, "alice")
	if err != nil || !created {
		f.t.Fatalf("commit %s: created %v, %v", name, created, err)
	}
	return v.Version
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// A schedule fires at its time in its timezone, once, and the run records
// which schedule and which slot started it.
func TestScheduleFiresAtItsTime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tr := f.schedule(ScheduleRequest{Cron: "0 3 * * *", Timezone: "Europe/Paris", Params: map[string]string{"rows": "7"}, By: "alice"})
		// 03:00 in Paris is 02:00 UTC in winter.
		if want := at("2026-03-10T02:00:00Z").UnixMilli(); tr.NextTime != want || tr.Timezone != "Europe/Paris" || !tr.Enabled {
			t.Fatalf("new schedule: %+v, want next_time %d", tr, want)
		}
		f.clock.Set(at("2026-03-10T01:59:59Z"))
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("fired %d runs a second early", n)
		}
		f.clock.Set(at("2026-03-10T02:00:00.300Z"))
		if n := f.s.tick(f.ctx); n != 1 {
			t.Fatalf("fired %d runs at the slot, want 1", n)
		}
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("fired %d more runs at the same moment", n)
		}
		list := f.queued("nightly")
		if len(list) != 1 {
			t.Fatalf("%d runs queued, want 1", len(list))
		}
		run := list[0]
		want := map[string]string{"trigger_id": tr.ID, "cron": "0 3 * * *", "scheduled_time": "2026-03-10T03:00:00+01:00"}
		if run.Status != runs.Queued || run.Trigger.Kind != runs.TriggerSchedule || !equal(run.Trigger.Detail, want) {
			t.Errorf("run: status %s trigger %+v, want queued schedule %v", run.Status, run.Trigger, want)
		}
		if run.Params["rows"] != "7" || run.CreatedBy != "alice" {
			t.Errorf("run params %v by %q", run.Params, run.CreatedBy)
		}
		got := f.get(tr.ID)
		if got.NextTime != at("2026-03-11T02:00:00Z").UnixMilli() || got.LastRunID != run.ID || got.LastFired == 0 {
			t.Errorf("after firing: next %s, last run %s", time.UnixMilli(got.NextTime).UTC(), got.LastRunID)
		}
		// Across the switch to summer time (29 March), 03:00 in Paris is
		// 01:00 UTC.
		f.clock.Set(at("2026-03-29T12:00:00Z"))
		f.s.tick(f.ctx)
		if got := f.get(tr.ID); got.NextTime != at("2026-03-30T01:00:00Z").UnixMilli() {
			t.Errorf("next firing after the DST change: %s, want 2026-03-30T01:00Z", time.UnixMilli(got.NextTime).UTC())
		}
	})
}

// When the clocks go back, a schedule at a fixed hour runs once in the
// repeated hour; an hourly one runs in both.
func TestScheduleRunsOnceWhenClocksGoBack(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.clock.Set(at("2026-10-24T12:00:00Z"))
	fixed := f.schedule(ScheduleRequest{Cron: "30 2 * * *", Timezone: "Europe/Paris"})
	hourly := f.schedule(ScheduleRequest{Cron: "30 * * * *", Timezone: "Europe/Paris"})
	if fixed.NextTime != at("2026-10-25T00:30:00Z").UnixMilli() {
		t.Fatalf("first firing %s, want 02:30 CEST", time.UnixMilli(fixed.NextTime).UTC())
	}
	// 02:30 CEST is 00:30 UTC; the clocks then go back from 03:00 CEST to
	// 02:00 CET, and 02:30 CET is 01:30 UTC.
	f.clock.Set(at("2026-10-25T00:30:00Z"))
	f.s.tick(f.ctx)
	f.finishQueued("nightly")
	if got := f.get(fixed.ID); got.NextTime != at("2026-10-26T01:30:00Z").UnixMilli() {
		t.Errorf("after 02:30 CEST the fixed schedule next fires at %s, want the next day", time.UnixMilli(got.NextTime).UTC())
	}
	if got := f.get(hourly.ID); got.NextTime != at("2026-10-25T01:30:00Z").UnixMilli() {
		t.Errorf("after 02:30 CEST the hourly schedule next fires at %s, want 02:30 CET", time.UnixMilli(got.NextTime).UTC())
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Two schedulers on one database (two servers) that tick at the same
// moments queue each slot exactly once.
func TestTwoSchedulersFireEachSlotOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.schedule(ScheduleRequest{Cron: "@every 1m"})
		other := f.service()
		start := f.clock.Now()
		const slots = 15
		for i := 1; i <= slots; i++ {
			f.clock.Set(start.Add(time.Duration(i) * time.Minute))
			var wg sync.WaitGroup
			for _, s := range []*Service{f.s, other, f.s, other} {
				wg.Add(1)
				go func() { defer wg.Done(); s.tick(f.ctx) }()
			}
			wg.Wait()
			f.finishQueued("nightly")
		}
		list := f.queued("nightly")
		if len(list) != slots {
			t.Fatalf("%d runs queued for %d slots", len(list), slots)
		}
		seen := map[string]bool{}
		for _, r := range list {
			slot := r.Trigger.Detail["scheduled_time"]
			if seen[slot] {
				t.Errorf("slot %s fired twice", slot)
			}
			seen[slot] = true
		}
	})
}

// A server that was down over several slots fires once when it comes
// back, not once per missed slot, then keeps to the schedule; a slot
// already fired before a restart is never fired again.
func TestRestartFiresMissedSlotsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tr := f.schedule(ScheduleRequest{Cron: "@hourly"})
		f.clock.Set(at("2026-03-10T01:00:00Z"))
		if n := f.s.tick(f.ctx); n != 1 {
			t.Fatalf("first slot fired %d runs", n)
		}
		// Restarted right after firing: the new server finds nothing due.
		restarted := f.service()
		f.clock.Set(at("2026-03-10T01:00:02Z"))
		if n := restarted.tick(f.ctx); n != 0 {
			t.Fatalf("a restart re-fired the slot already fired (%d runs)", n)
		}
		// Down from 01:00:02 to 05:30: the 02:00, 03:00, 04:00 and 05:00
		// slots were missed.
		f.finishQueued("nightly")
		restarted = f.service()
		f.clock.Set(at("2026-03-10T05:30:00Z"))
		if n := restarted.tick(f.ctx); n != 1 {
			t.Fatalf("after missing 4 slots the restarted server fired %d runs, want 1", n)
		}
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("the old server fired %d more", n)
		}
		list := f.queued("nightly")
		if len(list) != 2 || list[1].Trigger.Detail["scheduled_time"] != "2026-03-10T02:00:00Z" {
			t.Fatalf("runs: %d, last %+v", len(list), list[len(list)-1].Trigger)
		}
		if got := f.get(tr.ID); got.NextTime != at("2026-03-10T06:00:00Z").UnixMilli() {
			t.Errorf("next firing after catching up: %s, want 06:00", time.UnixMilli(got.NextTime).UTC())
		}
		f.finishQueued("nightly")
		f.clock.Set(at("2026-03-10T06:00:00Z"))
		if n := restarted.tick(f.ctx); n != 1 {
			t.Errorf("the 06:00 slot fired %d runs", n)
		}
	})
}

// A schedule faster than its pipeline skips a slot while the run of the
// previous one has not started, rather than pile up a queue, and says so.
func TestScheduleSkipsWhileItsRunWaits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tr := f.schedule(ScheduleRequest{Cron: "@every 1m"})
		start := f.clock.Now()
		f.clock.Set(start.Add(time.Minute))
		if n := f.s.tick(f.ctx); n != 1 {
			t.Fatalf("first slot fired %d runs", n)
		}
		first := f.get(tr.ID)
		f.clock.Set(start.Add(2 * time.Minute))
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("fired %d runs while the previous one waits", n)
		}
		got := f.get(tr.ID)
		if !strings.Contains(got.LastError, "skipped") || got.LastRunID != first.LastRunID || got.NextTime != start.Add(3*time.Minute).UnixMilli() {
			t.Fatalf("after a skipped slot: %+v", got)
		}
		f.finishQueued("nightly")
		f.clock.Set(start.Add(3 * time.Minute))
		if n := f.s.tick(f.ctx); n != 1 {
			t.Fatalf("fired %d runs once the previous one ended", n)
		}
		if got := f.get(tr.ID); got.LastError != "" || got.LastRunID == first.LastRunID {
			t.Errorf("after firing again: %+v", got)
		}
	})
}

// A paused schedule does not fire; resumed, it next fires at its first
// slot after now, without firing what it missed while paused.
func TestPauseAndResume(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	tr := f.schedule(ScheduleRequest{Cron: "@hourly"})
	if _, err := f.s.SetEnabled(f.ctx, tr.ID, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(at("2026-03-10T03:30:00Z"))
	if n := f.s.tick(f.ctx); n != 0 {
		t.Fatalf("a paused schedule fired %d runs", n)
	}
	got, err := f.s.SetEnabled(f.ctx, tr.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || got.NextTime != at("2026-03-10T04:00:00Z").UnixMilli() {
		t.Fatalf("resumed: %+v", got)
	}
	if n := f.s.tick(f.ctx); n != 0 {
		t.Fatalf("resuming fired %d runs for slots missed while paused", n)
	}
	if _, err := f.s.SetEnabled(f.ctx, "nope", true); !errs.Is(err, errs.NotFound) {
		t.Errorf("resuming an unknown schedule: %v", err)
	}
	if err := f.s.Delete(f.ctx, tr.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Delete(f.ctx, tr.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("deleting twice: %v", err)
	}
}

// A data trigger fires once per new version, with the version in the
// run's trigger, and not for versions that existed when it was created.
func TestDataTriggerFiresPerNewVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.addVersion("credit", "a,b\n1,2\n")
		tr, err := f.s.CreateDataTrigger(f.ctx, DataTriggerRequest{Pipeline: "nightly", Dataset: "credit", Params: map[string]string{"mode": "full"}})
		if err != nil {
			t.Fatal(err)
		}
		if tr.LastVersion != 1 {
			t.Fatalf("new trigger: last_version %d, want 1", tr.LastVersion)
		}
		other := f.service()
		if n := f.s.tick(f.ctx) + other.tick(f.ctx); n != 0 {
			t.Fatalf("fired %d runs for the version that existed before the trigger", n)
		}
		f.addVersion("credit", "a,b\n1,3\n")
		if n := f.s.tick(f.ctx) + other.tick(f.ctx); n != 1 {
			t.Fatalf("fired %d runs for one new version", n)
		}
		f.addVersion("credit", "a,b\n1,4\n")
		f.addVersion("credit", "a,b\n1,5\n")
		var wg sync.WaitGroup
		for _, s := range []*Service{f.s, other} {
			wg.Add(1)
			go func() { defer wg.Done(); s.tick(f.ctx) }()
		}
		wg.Wait()
		list := f.queued("nightly")
		var versions []string
		for _, r := range list {
			if r.Trigger.Kind != runs.TriggerData || r.Trigger.Detail["dataset"] != "credit" || r.Trigger.Detail["trigger_id"] != tr.ID || r.Params["mode"] != "full" {
				t.Errorf("run %d: trigger %+v params %v", r.Number, r.Trigger, r.Params)
			}
			versions = append(versions, r.Trigger.Detail["version"])
		}
		if strings.Join(versions, ",") != "2,3,4" {
			t.Fatalf("runs for versions %v, want 2,3,4", versions)
		}
		// Versions committed while the trigger is paused are skipped.
		if _, err := f.s.SetEnabled(f.ctx, tr.ID, false); err != nil {
			t.Fatal(err)
		}
		f.addVersion("credit", "a,b\n1,6\n")
		f.s.tick(f.ctx)
		if _, err := f.s.SetEnabled(f.ctx, tr.ID, true); err != nil {
			t.Fatal(err)
		}
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("fired %d runs for a version committed while paused", n)
		}
		f.addVersion("credit", "a,b\n1,7\n")
		if n := f.s.tick(f.ctx); n != 1 {
			t.Fatalf("fired %d runs after resuming", n)
		}
		if got := f.get(tr.ID); got.LastVersion != 6 || got.LastRunID == "" {
			t.Errorf("trigger after v6: %+v", got)
		}
	})
}

// Bad input names the field and the rule, and creates nothing.
func TestBadTriggersCreateNothing(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.addVersion("credit", "x\n1\n")
	cases := []struct {
		req  ScheduleRequest
		code errs.Code
		want string
	}{
		{ScheduleRequest{Cron: ""}, errs.InvalidArgument, "cron: is required"},
		{ScheduleRequest{Cron: "0 3 * *"}, errs.InvalidArgument, "expected exactly 5 fields"},
		{ScheduleRequest{Cron: "61 * * * *"}, errs.InvalidArgument, "cron:"},
		{ScheduleRequest{Cron: "@fortnightly"}, errs.InvalidArgument, "cron:"},
		{ScheduleRequest{Cron: "@every 100ms"}, errs.InvalidArgument, "at least 1s"},
		{ScheduleRequest{Cron: "@every soon"}, errs.InvalidArgument, "Go duration"},
		{ScheduleRequest{Cron: "TZ=UTC"}, errs.InvalidArgument, "timezone field"},
		{ScheduleRequest{Cron: "0 0 30 2 *"}, errs.InvalidArgument, "never fires"},
		{ScheduleRequest{Cron: "@daily", Timezone: "Mars/Olympus"}, errs.InvalidArgument, `timezone: "Mars/Olympus" is not an IANA time zone`},
		{ScheduleRequest{Cron: "@daily", Timezone: "Local"}, errs.InvalidArgument, "timezone:"},
		{ScheduleRequest{Cron: "@daily", Timezone: "../../etc/passwd"}, errs.InvalidArgument, "timezone:"},
		{ScheduleRequest{Cron: "@daily", Params: map[string]string{"rows": "many"}}, errs.InvalidArgument, "params:"},
		{ScheduleRequest{Cron: "@daily", Params: map[string]string{"depth": "3"}}, errs.InvalidArgument, "depth"},
		{ScheduleRequest{Cron: "@daily", Pipeline: "nope"}, errs.NotFound, `"nope"`},
	}
	for _, c := range cases {
		if c.req.Pipeline == "" {
			c.req.Pipeline = "nightly"
		}
		_, err := f.s.CreateSchedule(f.ctx, c.req)
		if errs.CodeOf(err) != c.code || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("%+v: %v, want %s mentioning %q", c.req, err, c.code, c.want)
		}
	}
	dataCases := []struct {
		req  DataTriggerRequest
		code errs.Code
		want string
	}{
		{DataTriggerRequest{Pipeline: "nightly"}, errs.InvalidArgument, "dataset: is required"},
		{DataTriggerRequest{Pipeline: "nightly", Dataset: "missing"}, errs.NotFound, `dataset: "missing" does not exist`},
		{DataTriggerRequest{Pipeline: "nightly", Dataset: "bad name!"}, errs.InvalidArgument, "dataset:"},
		{DataTriggerRequest{Pipeline: "nope", Dataset: "credit"}, errs.NotFound, `"nope"`},
		{DataTriggerRequest{Pipeline: "nightly", Dataset: "credit", Params: map[string]string{"rows": "1.5"}}, errs.InvalidArgument, "params:"},
	}
	for _, c := range dataCases {
		_, err := f.s.CreateDataTrigger(f.ctx, c.req)
		if errs.CodeOf(err) != c.code || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("%+v: %v, want %s mentioning %q", c.req, err, c.code, c.want)
		}
	}
	if list, err := f.s.List(f.ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("bad requests left %d triggers (%v)", len(list), err)
	}
	if _, err := f.s.List(f.ctx, "nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("listing an unknown pipeline's schedules: %v", err)
	}
}

// A schedule whose run can no longer be queued (the spec dropped a param
// it sets) records why and moves to its next slot instead of retrying
// every second.
func TestUnqueueableFiringMovesOn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tr := f.schedule(ScheduleRequest{Cron: "@hourly", Params: map[string]string{"mode": "full"}})
		f.put("name: nightly\nsteps:\n  go:\n    command: echo hi\n")
		f.clock.Set(at("2026-03-10T01:00:00Z"))
		if n := f.s.tick(f.ctx); n != 0 {
			t.Fatalf("queued %d runs with a param the spec no longer has", n)
		}
		got := f.get(tr.ID)
		if !strings.Contains(got.LastError, "mode") || got.NextTime != at("2026-03-10T02:00:00Z").UnixMilli() {
			t.Fatalf("after a failed firing: error %q, next %s", got.LastError, time.UnixMilli(got.NextTime).UTC())
		}
		if n := f.s.tick(f.ctx); n != 0 || len(f.queued("nightly")) != 0 {
			t.Fatalf("retried the failed slot")
		}
	})
}

// The internal trigger queues a run that says why.
func TestInternalTrigger(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	run, err := f.s.Internal(f.ctx, "nightly", "drift alert on credit-scorer", map[string]string{"rows": "9"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != runs.Queued || run.Trigger.Kind != runs.TriggerInternal || run.Trigger.Detail["reason"] != "drift alert on credit-scorer" || run.Params["rows"] != "9" {
		t.Fatalf("internal run: %+v", run)
	}
	for _, c := range []struct {
		pipeline, reason string
		params           map[string]string
		code             errs.Code
	}{
		{"nightly", " ", nil, errs.InvalidArgument},
		{"nightly", "why", map[string]string{"rows": "x"}, errs.InvalidArgument},
		{"nope", "why", nil, errs.NotFound},
	} {
		if _, err := f.s.Internal(f.ctx, c.pipeline, c.reason, c.params); errs.CodeOf(err) != c.code {
			t.Errorf("internal %s %q: %v, want %s", c.pipeline, c.reason, err, c.code)
		}
	}
	if n := len(f.queued("nightly")); n != 1 {
		t.Errorf("%d runs queued, want 1", n)
	}
}

// Run polls until its context ends, and fires what is due meanwhile.
func TestRunLoopFiresAndStops(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.schedule(ScheduleRequest{Cron: "@every 1s"})
	f.s.Interval = 5 * time.Millisecond
	f.clock.Set(f.clock.Now().Add(time.Hour))
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { f.s.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(f.queued("nightly")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop fired nothing in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	// The clock did not move: the due slot fired once however many polls.
	if n := len(f.queued("nightly")); n != 1 {
		t.Errorf("%d runs queued, want 1", n)
	}
}

func TestListAndGet(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	f.put("name: other\nsteps:\n  go:\n    command: echo hi\n")
	a := f.schedule(ScheduleRequest{Cron: "@daily"})
	b := f.schedule(ScheduleRequest{Pipeline: "other", Cron: "*/5 * * * *", Timezone: "America/New_York"})
	all, err := f.s.List(f.ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("list all: %+v %v", all, err)
	}
	mine, err := f.s.List(f.ctx, "other")
	if err != nil || len(mine) != 1 || mine[0].ID != b.ID || mine[0].Timezone != "America/New_York" || mine[0].Cron != "*/5 * * * *" {
		t.Fatalf("list other: %+v %v", mine, err)
	}
	if _, err := f.s.Get(f.ctx, "missing"); !errs.Is(err, errs.NotFound) {
		t.Errorf("get missing: %v", err)
	}
	// Deleting the pipeline deletes its schedules.
	if err := f.runs.DeletePipeline(f.ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Get(f.ctx, b.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("schedule of a deleted pipeline: %v", err)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "@hourly", "@every 10m", "*/5 1-3 ? JAN-MAR MON-FRI", "TZ=UTC", "CRON_TZ=x 0 0 * * *", "@every ", "0 0 30 2 *"} {
		f.Add(s, "Europe/Paris")
	}
	f.Fuzz(func(t *testing.T, text, tz string) {
		sched, loc, err := ParseSchedule(text, tz)
		if err != nil {
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("%q %q: %v is not an invalid argument", text, tz, err)
			}
			return
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if next := sched.Next(now.In(loc)); !next.IsZero() && !next.After(now) {
			t.Fatalf("%q: next firing %s is not after %s", text, next, now)
		}
	})
}
