package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/slipwayml/slipway/internal/registry"
	"github.com/slipwayml/slipway/internal/store"
)

// The generated registry. Every value is a pure function of the model's
// index and the seed, so the expected answer of every search is computed
// here, from what was inserted, not read back from the database.
type model struct {
	id       int64
	name     string
	desc     string
	created  int64
	updated  int64
	tags     []kv // sorted by key, as the registry returns them
	versions []version
	aliases  []alias // sorted by alias
}

type kv struct{ k, v string }

type version struct {
	n        int64
	created  int64
	stage    string
	deleted  bool
	runID    string
	manifest string
	digest   string
	tags     []kv
}

type alias struct {
	name    string
	version int64
}

// latest is what latest_versions must hold for m: the newest READY
// version in each stage, stages in order of their first version.
func (m *model) latest() []version {
	var order []string
	by := map[string]version{}
	for _, v := range m.versions {
		if v.deleted {
			continue
		}
		if _, ok := by[v.stage]; !ok {
			order = append(order, v.stage)
		}
		by[v.stage] = v
	}
	out := make([]version, len(order))
	for i, st := range order {
		out[i] = by[st]
	}
	return out
}

func (m *model) tag(k string) string {
	for _, t := range m.tags {
		if t.k == k {
			return t.v
		}
	}
	return ""
}

var (
	teams = []string{"risk", "growth", "fraud", "search", "ads", "pricing", "supply", "ranking", "vision", "speech",
		"nlp", "forecast", "churn", "credit", "ops", "security", "health", "payments", "maps", "support"}
	frameworks = []string{"sklearn", "xgboost", "pytorch", "lightgbm", "onnx", "tensorflow"}
	words      = []string{"alpha", "delta", "orbit", "cedar", "ember", "fjord", "gale", "harbor", "island", "juniper",
		"kelp", "lumen", "meadow", "nova", "onyx", "prairie", "quartz", "ridge", "summit", "tundra"}
	modelFiles = []string{"MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml", "requirements.txt"}
)

const baseTime = int64(1_700_000_000_000)

// generate builds nModels models holding nVersions versions between them,
// 1 to 19 each (10 on average when nVersions = 10 x nModels).
func generate(nModels, nVersions int) []*model {
	rng := rand.New(rand.NewPCG(42, 7))
	counts := make([]int, nModels)
	total := 0
	mean := max(1, nVersions/nModels)
	for i := range counts {
		counts[i] = 1 + rng.IntN(2*mean-1)
		total += counts[i]
	}
	for total != nVersions {
		i := rng.IntN(nModels)
		switch {
		case total < nVersions:
			counts[i]++
			total++
		case counts[i] > 1:
			counts[i]--
			total--
		}
	}
	models := make([]*model, nModels)
	clock := baseTime
	for i := range models {
		m := &model{id: int64(i + 1)}
		// Names sort in an order unrelated to ids, as real names do.
		m.name = fmt.Sprintf("%s-%s-%05d", words[rng.IntN(len(words))], words[rng.IntN(len(words))], i)
		if rng.IntN(3) == 0 {
			m.desc = "Model " + m.name + " owned by its team; retrained weekly."
		}
		tier := "bronze"
		switch r := rng.IntN(10); {
		case r == 0:
			tier = "gold"
		case r <= 3:
			tier = "silver"
		}
		env := "prod"
		if rng.IntN(10) >= 7 {
			env = "staging"
		}
		m.tags = []kv{
			{"env", env},
			{"framework", frameworks[rng.IntN(len(frameworks))]},
			{"owner", "owner-" + strconv.Itoa(rng.IntN(200))},
			{"team", teams[rng.IntN(len(teams))]},
			{"tier", tier},
		}
		clock += 10
		m.created = clock
		k := counts[i]
		for n := 1; n <= k; n++ {
			clock++
			v := version{n: int64(n), created: clock, stage: registry.StageNone, runID: randHex(rng, 16)}
			switch {
			case n == k && k >= 3 && rng.IntN(2) == 0:
				v.stage = registry.StageProduction
			case n == k-1 && rng.IntN(3) == 0:
				v.stage = registry.StageStaging
			case n < k-1 && rng.IntN(2) == 0:
				v.stage = registry.StageArchived
			}
			v.deleted = n < k && rng.IntN(50) == 0
			if !v.deleted {
				v.manifest = manifest(rng)
				sum := sha256.Sum256([]byte(v.manifest))
				v.digest = hex.EncodeToString(sum[:])
				v.tags = []kv{{"git_sha", randHex(rng, 20)}, {"validation", []string{"passed", "failed"}[rng.IntN(2)]}}
			}
			m.versions = append(m.versions, v)
		}
		m.updated = clock
		for _, v := range m.versions {
			switch {
			case v.deleted:
			case v.stage == registry.StageProduction:
				m.aliases = append(m.aliases, alias{"champion", v.n})
			case v.stage == registry.StageStaging:
				m.aliases = append(m.aliases, alias{"challenger", v.n})
			}
		}
		sort.Slice(m.aliases, func(a, b int) bool { return m.aliases[a].name < m.aliases[b].name })
		models[i] = m
	}
	return models
}

func randHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return hex.EncodeToString(b)
}

// manifest is a manifest as registration writes it, for a typical MLflow
// model folder.
func manifest(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString("{\n  \"files\": [\n")
	for i, f := range modelFiles {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "    {\n      \"path\": %q,\n      \"size\": %d,\n      \"sha256\": %q\n    }", f, 100+rng.IntN(1<<20), randHex(rng, 32))
	}
	b.WriteString("\n  ]\n}\n")
	return b.String()
}

// seed writes the models straight into the registry's tables, in one
// transaction of multi-row INSERTs, with the rows registration and deletion
// would have left: READY versions with storage locations, manifests and
// digests; deleted versions redacted, without tags or aliases.
func seed(ctx context.Context, db *store.DB, models []*model) error {
	mr := rowSet{table: "registered_models", cols: []string{"model_id", "name", "creation_time", "last_updated_time", "description"}}
	mt := rowSet{table: "registered_model_tags", cols: []string{"model_id", "key", "value"}}
	mv := rowSet{table: "model_versions", cols: []string{"model_id", "version", "creation_time", "last_updated_time", "description", "user_id",
		"current_stage", "source", "run_id", "run_link", "status", "status_message", "storage_location", "manifest", "digest"}}
	vt := rowSet{table: "model_version_tags", cols: []string{"model_id", "version", "key", "value"}}
	al := rowSet{table: "registered_model_aliases", cols: []string{"model_id", "alias", "version"}}
	for _, m := range models {
		var desc any
		if m.desc != "" {
			desc = m.desc
		}
		mr.add(m.id, m.name, m.created, m.updated, desc)
		for _, t := range m.tags {
			mt.add(m.id, t.k, t.v)
		}
		for _, v := range m.versions {
			if v.deleted {
				mv.add(m.id, v.n, v.created, v.created+5, nil, nil, "Deleted_Internal", "REDACTED-SOURCE-PATH", "REDACTED-RUN-ID",
					"REDACTED-RUN-LINK", registry.StatusReady, nil, fmt.Sprintf("mlflow-artifacts:/registry/%d/%d/files", m.id, v.n), "", "")
				continue
			}
			mv.add(m.id, v.n, v.created, v.created, "", "alice", v.stage, "runs:/"+v.runID+"/model", v.runID, "", registry.StatusReady, nil,
				fmt.Sprintf("mlflow-artifacts:/registry/%d/%d/files", m.id, v.n), v.manifest, v.digest)
			for _, t := range v.tags {
				vt.add(m.id, v.n, t.k, t.v)
			}
		}
		for _, a := range m.aliases {
			al.add(m.id, a.name, a.version)
		}
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, rs := range []*rowSet{&mr, &mt, &mv, &vt, &al} {
			if err := rs.insert(ctx, db, tx); err != nil {
				return fmt.Errorf("insert into %s: %w", rs.table, err)
			}
		}
		if db.Dialect == store.Postgres {
			// Explicit ids leave the identity sequence behind; a model
			// created later must not collide with a seeded one.
			_, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('registered_models', 'model_id'), (SELECT MAX(model_id) FROM registered_models))`)
			return err
		}
		return nil
	})
}

type rowSet struct {
	table string
	cols  []string
	vals  []any
}

func (r *rowSet) add(vals ...any) { r.vals = append(r.vals, vals...) }

// insert sends the rows in multi-row INSERTs of at most 500 rows, well
// under both dialects' limits on bound parameters.
func (r *rowSet) insert(ctx context.Context, db *store.DB, tx *sql.Tx) error {
	n := len(r.cols)
	rows := len(r.vals) / n
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
	for start := 0; start < rows; start += 500 {
		end := min(start+500, rows)
		q := "INSERT INTO " + r.table + " (" + strings.Join(r.cols, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+", ", end-start), ", ")
		if _, err := tx.ExecContext(ctx, db.Q(q), r.vals[start*n:end*n]...); err != nil {
			return err
		}
	}
	return nil
}
