package registry_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
	"github.com/slipwayml/slipway/internal/store/storetest"
)

// TestLatestVersions checks latest_versions against MLflow's definition,
// computed here from every version: walk them in ascending order, keep the
// newest READY one per stage, list stages by first appearance.
func TestLatestVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := f.ctx
		runID, _ := f.run(map[string]string{"model/m.bin": "1"})
		stages := map[string][]string{
			// The stage of each version, in order.
			"a": {"Archived", "None", "Production", "None", "Staging", "Production", "None"},
			"b": {"Staging"},
			"c": {},
			"d": {"None", "None", "Archived"},
		}
		for _, name := range []string{"a", "b", "c", "d"} {
			f.model(name)
			for i, st := range stages[name] {
				v := f.version(name, "runs:/"+runID+"/model", "")
				if err := f.reg.SetModelVersionTag(ctx, name, v.Version, registry.Tag{Key: "n", Value: fmt.Sprint(i + 1)}); err != nil {
					t.Fatal(err)
				}
				if st != registry.StageNone {
					if _, err := f.reg.TransitionStage(ctx, name, v.Version, st, false); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		// A deleted version, and versions that are not READY, are never
		// latest.
		if err := f.reg.DeleteModelVersion(ctx, "a", 6); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT model_id FROM registered_models WHERE name = ?`), "d").Scan(&id); err != nil {
			t.Fatal(err)
		}
		pendingRow(t, f, db, id, 4, f.now().UnixMilli(), registry.StageNone)
		pendingRow(t, f, db, id, 5, f.now().Add(-time.Hour).UnixMilli(), registry.StageNone)
		if failed, err := f.reg.RecoverPending(ctx, f.now().Add(-registry.PendingStaleAfter)); err != nil || len(failed) != 1 {
			t.Fatalf("recover: %+v %v", failed, err)
		}

		want := func(name string) []string {
			all, _, err := f.reg.SearchModelVersions(ctx, registry.SearchModelVersionsRequest{Filter: "name = '" + name + "'", OrderBy: []string{"version_number ASC"}})
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			by := map[string]registry.ModelVersion{}
			for _, v := range all {
				if v.Status != registry.StatusReady {
					continue
				}
				if _, ok := by[v.CurrentStage]; !ok {
					order = append(order, v.CurrentStage)
				}
				by[v.CurrentStage] = v
			}
			var out []string
			for _, st := range order {
				out = append(out, describe(by[st]))
			}
			return out
		}
		got := func(vs []registry.ModelVersion) []string {
			var out []string
			for _, v := range vs {
				out = append(out, describe(v))
			}
			return out
		}
		fixed := map[string][]string{
			"a": {"Archived:1[n=1]", "None:7[n=7]", "Production:3[n=3]", "Staging:5[n=5]"},
			"b": {"Staging:1[n=1]"},
			"c": nil,
			"d": {"None:2[n=2]", "Archived:3[n=3]"},
		}
		ms, _, err := f.reg.SearchRegisteredModels(ctx, registry.SearchRegisteredModelsRequest{})
		if err != nil || len(ms) != 4 {
			t.Fatalf("search: %d models, %v", len(ms), err)
		}
		for _, m := range ms {
			if g, w := got(m.LatestVersions), want(m.Name); !reflect.DeepEqual(g, w) || !reflect.DeepEqual(g, fixed[m.Name]) {
				t.Errorf("%s: latest_versions %v, computed %v, want %v", m.Name, g, w, fixed[m.Name])
			}
			one, err := f.reg.GetRegisteredModel(ctx, m.Name)
			if err != nil || !reflect.DeepEqual(got(one.LatestVersions), got(m.LatestVersions)) {
				t.Errorf("%s: get-registered-model %v, search %v (%v)", m.Name, got(one.LatestVersions), got(m.LatestVersions), err)
			}
		}
	})
}

func describe(v registry.ModelVersion) string {
	s := fmt.Sprintf("%s:%d[", v.CurrentStage, v.Version)
	for i, t := range v.Tags {
		if i > 0 {
			s += ","
		}
		s += t.Key + "=" + t.Value
	}
	return s + "]"
}
