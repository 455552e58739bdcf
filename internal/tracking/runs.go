package tracking

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/tracking/search"
)

// CreateRunRequest mirrors MLflow's CreateRun message.
type CreateRunRequest struct {
	ExperimentID string
	UserID       string
	RunName      string
	StartTime    int64
	Tags         []Tag
}

// CreateRun starts a run in an active experiment. As in MLflow, the run name
// and the mlflow.runName tag are kept equal, and a run without a name gets a
// generated one.
func (s *Service) CreateRun(ctx context.Context, req CreateRunRequest) (Run, error) {
	if req.ExperimentID == "" {
		req.ExperimentID = DefaultExperimentID
	}
	for i, t := range req.Tags {
		if err := validateTag(t, fmt.Sprintf("tags[%d].", i)); err != nil {
			return Run{}, err
		}
	}
	tags := make([]Tag, 0, len(req.Tags)+1)
	for _, t := range req.Tags {
		if t.Key == TagRunName {
			if req.RunName != "" && req.RunName != t.Value {
				return Run{}, errs.Invalid("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='%s', mlflow.runName='%s').", req.RunName, t.Value)
			}
			req.RunName = t.Value
			continue
		}
		tags = append(tags, t)
	}
	if req.RunName == "" {
		req.RunName = generateRunName()
	}
	tags = append(tags, Tag{Key: TagRunName, Value: req.RunName})
	if req.StartTime == 0 {
		req.StartTime = s.nowMillis()
	}
	id := newID()
	var run Run
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		expID, err := s.activeExperiment(ctx, tx, req.ExperimentID)
		if err != nil {
			return err
		}
		var location string
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT artifact_location FROM experiments WHERE experiment_id = ?`), expID).Scan(&location); err != nil {
			return err
		}
		run = Run{Info: RunInfo{
			RunID:          id,
			RunName:        req.RunName,
			ExperimentID:   req.ExperimentID,
			UserID:         req.UserID,
			Status:         StatusRunning,
			StartTime:      req.StartTime,
			ArtifactURI:    strings.TrimSuffix(location, "/") + "/" + id + "/artifacts",
			LifecycleStage: StageActive,
		}}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO runs
			(run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri)
			VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`),
			id, expID, req.RunName, req.UserID, StatusRunning, req.StartTime, run.Info.ArtifactURI); err != nil {
			return err
		}
		return s.upsertTags(ctx, tx, id, tags)
	})
	if err != nil {
		return Run{}, err
	}
	run.Tags = tags
	return run, nil
}

// GetRun returns a run with its latest metrics, params, tags and inputs.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	if err := ValidateRunID(id); err != nil {
		return Run{}, err
	}
	runs, err := s.loadRuns(ctx, []string{id})
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, errs.NotFoundf("Run with id=%s not found", id)
	}
	return runs[0], nil
}

// GetRuns returns those of ids that exist, in the order given, as GetRun
// would return each, with one query per table per 500 runs: lineage loads
// every run a data version fed this way.
func (s *Service) GetRuns(ctx context.Context, ids []string) ([]Run, error) {
	return s.loadRuns(ctx, ids)
}

// UpdateRunRequest mirrors MLflow's UpdateRun message; empty fields are kept.
type UpdateRunRequest struct {
	RunID   string
	Status  string
	EndTime *int64
	RunName string
}

func validStatus(s string) bool {
	switch s {
	case StatusRunning, StatusScheduled, StatusFinished, StatusFailed, StatusKilled:
		return true
	}
	return false
}

// UpdateRun changes an active run's status, end time or name.
func (s *Service) UpdateRun(ctx context.Context, req UpdateRunRequest) (RunInfo, error) {
	if err := ValidateRunID(req.RunID); err != nil {
		return RunInfo{}, err
	}
	if req.Status != "" && !validStatus(req.Status) {
		return RunInfo{}, invalidValue("status", req.Status, "must be one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED")
	}
	err := s.db.Batch(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunActive(ctx, tx, req.RunID); err != nil {
			return err
		}
		if req.Status != "" {
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET status = ? WHERE run_uuid = ?`), req.Status, req.RunID); err != nil {
				return err
			}
		}
		if req.EndTime != nil {
			if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET end_time = ? WHERE run_uuid = ?`), *req.EndTime, req.RunID); err != nil {
				return err
			}
		}
		if req.RunName != "" {
			return s.upsertTags(ctx, tx, req.RunID, []Tag{{Key: TagRunName, Value: req.RunName}})
		}
		return nil
	})
	if err != nil {
		return RunInfo{}, err
	}
	run, err := s.readRunInfo(ctx, s.db.Read, req.RunID)
	return run, err
}

// DeleteRun marks a run deleted; its data stays until it is purged.
func (s *Service) DeleteRun(ctx context.Context, id string) error {
	return s.setRunStage(ctx, id, StageDeleted)
}

// RestoreRun makes a deleted run active again.
func (s *Service) RestoreRun(ctx context.Context, id string) error {
	return s.setRunStage(ctx, id, StageActive)
}

func (s *Service) setRunStage(ctx context.Context, id, stage string) error {
	if err := ValidateRunID(id); err != nil {
		return err
	}
	return s.db.Batch(ctx, func(tx *sql.Tx) error {
		if _, err := s.readRunInfo(ctx, tx, id); err != nil {
			return err
		}
		var deleted any
		if stage == StageDeleted {
			deleted = s.nowMillis()
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, version = version + 1 WHERE run_uuid = ?`), stage, deleted, id)
		return err
	})
}

const runColumns = `r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage`

// scanRunInfo scans runColumns, after the columns lead scans into.
func scanRunInfo(row interface{ Scan(...any) error }, lead ...any) (RunInfo, error) {
	var ri RunInfo
	var exp int64
	var end sql.NullInt64
	err := row.Scan(append(lead, &ri.RunID, &exp, &ri.RunName, &ri.UserID, &ri.Status, &ri.StartTime, &end, &ri.ArtifactURI, &ri.LifecycleStage)...)
	ri.ExperimentID = strconv.FormatInt(exp, 10)
	if end.Valid {
		ri.EndTime = &end.Int64
	}
	return ri, err
}

func (s *Service) readRunInfo(ctx context.Context, q queryer, id string) (RunInfo, error) {
	ri, err := scanRunInfo(q.QueryRowContext(ctx, s.db.Q(`SELECT `+runColumns+` FROM runs r WHERE r.run_uuid = ?`), id))
	if err != nil {
		return ri, notFound(err, "Run with id=%s not found", id)
	}
	return ri, nil
}

// checkRunActive refuses writes to missing or deleted runs, as MLflow does.
// Every write to a run starts with it, so it is also where the run's
// version goes up (see runCache): a refused write's transaction, or its
// savepoint, is undone with the bump.
func (s *Service) checkRunActive(ctx context.Context, tx *sql.Tx, id string) error {
	var stage string
	if err := tx.QueryRowContext(ctx, s.db.Q(`UPDATE runs SET version = version + 1 WHERE run_uuid = ? RETURNING lifecycle_stage`), id).Scan(&stage); err != nil {
		return notFound(err, "Run with id=%s not found", id)
	}
	if stage != StageActive {
		return errs.Invalid("The run %s must be in the 'active' state. Current state is %s.", id, stage)
	}
	return nil
}

// SearchRunsRequest mirrors MLflow's SearchRuns message.
type SearchRunsRequest struct {
	ExperimentIDs []string
	Filter        string
	ViewType      ViewType
	MaxResults    int64
	OrderBy       []string
	PageToken     string
}

// SearchRuns returns one page of runs matching the filter, in order.
func (s *Service) SearchRuns(ctx context.Context, req SearchRunsRequest) ([]Run, string, error) {
	limit, err := maxResults(req.MaxResults, MaxResultsDefault, MaxResultsLimit)
	if err != nil {
		return nil, "", err
	}
	offset, err := search.DecodePageToken(req.PageToken)
	if err != nil {
		return nil, "", err
	}
	if len(req.ExperimentIDs) == 0 {
		return nil, "", nil
	}
	expIDs := make([]any, 0, len(req.ExperimentIDs))
	for _, id := range req.ExperimentIDs {
		n, err := parseExperimentID(id)
		if errs.Is(err, errs.NotFound) {
			continue // a string id cannot match any run here
		}
		if err != nil {
			return nil, "", err
		}
		expIDs = append(expIDs, n)
	}
	filter, err := search.ParseRunFilter(req.Filter)
	if err != nil {
		return nil, "", err
	}
	orders := make([]search.OrderBy, 0, len(req.OrderBy))
	for _, o := range req.OrderBy {
		ob, err := search.ParseRunOrderBy(o)
		if err != nil {
			return nil, "", err
		}
		orders = append(orders, ob)
	}
	compiled, err := search.CompileRuns(filter, orders, s.dialect())
	if err != nil {
		return nil, "", err
	}
	if len(expIDs) == 0 {
		return nil, "", nil
	}
	var refs []runRef
	if compiled.Tiers != nil && s.tiers {
		refs, err = s.searchTiers(ctx, compiled, expIDs, req.ViewType, limit+1, offset)
	} else {
		refs, err = s.searchIDs(ctx, search.Tier{From: "runs r " + compiled.Joins, FromArgs: compiled.JoinArgs, OrderBy: compiled.OrderBy},
			compiled, expIDs, req.ViewType, limit+1, offset)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(refs) > limit {
		refs = refs[:limit]
		next = search.EncodePageToken(offset + limit)
	}
	runs, err := s.loadCachedRuns(ctx, refs)
	return runs, next, err
}

// runRef is a run a search picked, with its version as the search read it.
type runRef struct {
	id      string
	version int64
}

// loadCachedRuns returns the runs of refs, in order: those cached at the
// version the search read from the cache, the rest loaded (and cached).
// A run deleted since the search is left out, as loadRuns leaves it.
func (s *Service) loadCachedRuns(ctx context.Context, refs []runRef) ([]Run, error) {
	out := make([]Run, len(refs))
	found := make([]bool, len(refs))
	var missing []string
	for i, ref := range refs {
		if out[i], found[i] = s.runs.get(ref.id, ref.version); !found[i] {
			missing = append(missing, ref.id)
		}
	}
	if len(missing) > 0 {
		loaded, versions, err := s.loadRunMaps(ctx, missing)
		if err != nil {
			return nil, err
		}
		for i, ref := range refs {
			if found[i] {
				continue
			}
			if r := loaded[ref.id]; r != nil {
				out[i], found[i] = *r, true
				s.runs.put(*r, versions[ref.id])
			}
		}
	}
	n := 0
	for i := range out {
		if found[i] {
			out[n] = out[i]
			n++
		}
	}
	return out[:n], nil
}

// searchTiers pages through the tiers of a search ordered by a metric (see
// search.SQL.Tiers) as if they were the one query they split: offset counts
// across tiers, and a tier is queried only while the page is not full.
func (s *Service) searchTiers(ctx context.Context, compiled search.SQL, expIDs []any, view ViewType, want, offset int) ([]runRef, error) {
	var refs []runRef
	for _, tier := range compiled.Tiers {
		if len(refs) >= want {
			break
		}
		got, err := s.searchIDs(ctx, tier, compiled, expIDs, view, want-len(refs), offset)
		if err != nil {
			return nil, err
		}
		switch {
		case len(got) > 0:
			// The page started in this tier (or an earlier one), and this
			// tier ended before the page did: the next starts at its top.
			offset = 0
		case offset > 0:
			// The page starts past this tier; by how much needs its size.
			n, err := s.countTier(ctx, tier, compiled, expIDs, view)
			if err != nil {
				return nil, err
			}
			offset = max(offset-n, 0)
		}
		refs = append(refs, got...)
	}
	// Each tier is its own statement, so a run whose metric changed tier
	// between two of them could be read twice; a page never repeats a run.
	seen := make(map[string]bool, len(refs))
	return slices.DeleteFunc(refs, func(ref runRef) bool {
		dup := seen[ref.id]
		seen[ref.id] = true
		return dup
	}), nil
}

// tierQuery writes the query of search.Tier and its arguments, up to the
// ORDER BY.
func tierQuery(b *strings.Builder, tier search.Tier, compiled search.SQL, expIDs []any, view ViewType) []any {
	args := append([]any{}, tier.FromArgs...)
	b.WriteString(tier.From)
	b.WriteString(` WHERE `)
	if tier.Cond != "" {
		b.WriteString(tier.Cond)
		b.WriteString(` AND `)
		args = append(args, tier.CondArgs...)
	}
	b.WriteString(`r.experiment_id IN (` + placeholders(len(expIDs)) + `) AND `)
	args = append(args, expIDs...)
	b.WriteString(stageClause("r", view))
	if compiled.Where != "" {
		b.WriteString(` AND (`)
		b.WriteString(compiled.Where)
		b.WriteString(`)`)
		args = append(args, compiled.WhereArgs...)
	}
	return args
}

func (s *Service) searchIDs(ctx context.Context, tier search.Tier, compiled search.SQL, expIDs []any, view ViewType, limit, offset int) ([]runRef, error) {
	var b strings.Builder
	b.WriteString(`SELECT r.run_uuid, r.version FROM `)
	args := tierQuery(&b, tier, compiled, expIDs, view)
	b.WriteString(` ORDER BY `)
	b.WriteString(tier.OrderBy)
	b.WriteString(` LIMIT ? OFFSET ?`)
	args = append(args, limit, offset)
	var refs []runRef
	err := s.db.EachRow(ctx, b.String(), args, func(rows *sql.Rows) error {
		var ref runRef
		if err := rows.Scan(&ref.id, &ref.version); err != nil {
			return err
		}
		refs = append(refs, ref)
		return nil
	})
	return refs, err
}

func (s *Service) countTier(ctx context.Context, tier search.Tier, compiled search.SQL, expIDs []any, view ViewType) (int, error) {
	var b strings.Builder
	b.WriteString(`SELECT COUNT(*) FROM `)
	args := tierQuery(&b, tier, compiled, expIDs, view)
	var n int
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(b.String()), args...).Scan(&n)
	return n, err
}

// loadRuns reads whole runs for ids, in the order given, with one query per
// table per chunk rather than per run. A page of more than 200 runs is read
// in two or more chunks at once, on their own read connections: a page of
// 1,000 runs is 45,000 rows, and one reader stepping through them left the
// second core idle.
func (s *Service) loadRuns(ctx context.Context, ids []string) ([]Run, error) {
	byID, _, err := s.loadRunMaps(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(ids))
	for _, id := range ids {
		if r := byID[id]; r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// loadRunMaps reads the runs of ids that exist, by id, with each run's
// version as read before anything else of it: whatever else was read is
// at least as new as that version.
func (s *Service) loadRunMaps(ctx context.Context, ids []string) (map[string]*Run, map[string]int64, error) {
	size := min(500, max(100, (len(ids)+1)/2))
	parts := chunks(len(ids), size)
	runs := make([]map[string]*Run, len(parts))
	versions := make([]map[string]int64, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range parts {
		g.Go(func() error {
			var err error
			runs[i], versions[i], err = s.loadRunChunk(gctx, ids[c[0]:c[1]])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if len(parts) == 1 {
		return runs[0], versions[0], nil
	}
	allRuns := make(map[string]*Run, len(ids))
	allVersions := make(map[string]int64, len(ids))
	for i := range parts {
		maps.Copy(allRuns, runs[i])
		maps.Copy(allVersions, versions[i])
	}
	return allRuns, allVersions, nil
}

func (s *Service) loadRunChunk(ctx context.Context, part []string) (map[string]*Run, map[string]int64, error) {
	byID := make(map[string]*Run, len(part))
	versions := make(map[string]int64, len(part))
	args := make([]any, len(part))
	for i, id := range part {
		args[i] = id
	}
	in := `(` + placeholders(len(part)) + `)`
	if err := s.db.EachRow(ctx, `SELECT r.version, `+runColumns+` FROM runs r WHERE r.run_uuid IN `+in, args, func(rows *sql.Rows) error {
		var version int64
		ri, err := scanRunInfo(rows, &version)
		byID[ri.RunID] = &Run{Info: ri}
		versions[ri.RunID] = version
		return err
	}); err != nil {
		return nil, nil, err
	}
	if err := s.db.EachRow(ctx, `SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN `+in+` ORDER BY run_uuid, key`, args, func(rows *sql.Rows) error {
		var id string
		var m Metric
		var isNaN int
		if err := rows.Scan(&id, &m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
			return err
		}
		m.Value = loadedValue(m.Value, isNaN)
		if r := byID[id]; r != nil {
			r.Metrics = append(r.Metrics, m)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if err := s.loadKeyValues(ctx, "params", in, args, byID, func(r *Run, key, value string) {
		r.Params = append(r.Params, Param{Key: key, Value: value})
	}); err != nil {
		return nil, nil, err
	}
	if err := s.loadKeyValues(ctx, "tags", in, args, byID, func(r *Run, key, value string) {
		r.Tags = append(r.Tags, Tag{Key: key, Value: value})
	}); err != nil {
		return nil, nil, err
	}
	if err := s.loadInputs(ctx, in, args, byID); err != nil {
		return nil, nil, err
	}
	return byID, versions, nil
}

// loadKeyValues reads the params or tags (table) of the runs in byID, in
// key order, and hands each row to add.
func (s *Service) loadKeyValues(ctx context.Context, table, in string, args []any, byID map[string]*Run, add func(r *Run, key, value string)) error {
	return s.db.EachRow(ctx, `SELECT run_uuid, key, value FROM `+table+` WHERE run_uuid IN `+in+` ORDER BY run_uuid, key`, args, func(rows *sql.Rows) error {
		var id, key, value string
		if err := rows.Scan(&id, &key, &value); err != nil {
			return err
		}
		if r := byID[id]; r != nil {
			add(r, key, value)
		}
		return nil
	})
}

func (s *Service) loadInputs(ctx context.Context, in string, args []any, byID map[string]*Run) error {
	type key struct{ run, ds string }
	index := map[key]int{}
	if err := s.db.EachRow(ctx, `SELECT i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
		FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
		WHERE i.run_uuid IN `+in+` ORDER BY i.run_uuid, d.name, d.digest`, args, func(rows *sql.Rows) error {
		var run, ds string
		var d Dataset
		if err := rows.Scan(&run, &ds, &d.Name, &d.Digest, &d.SourceType, &d.Source, &d.Schema, &d.Profile); err != nil {
			return err
		}
		if r := byID[run]; r != nil {
			index[key{run, ds}] = len(r.Inputs)
			r.Inputs = append(r.Inputs, DatasetInput{Dataset: d})
		}
		return nil
	}); err != nil {
		return err
	}
	if len(index) == 0 {
		return nil
	}
	return s.db.EachRow(ctx, `SELECT run_uuid, dataset_uuid, key, value FROM run_input_tags WHERE run_uuid IN `+in+` ORDER BY run_uuid, dataset_uuid, key`, args, func(rows *sql.Rows) error {
		var run, ds string
		var t Tag
		if err := rows.Scan(&run, &ds, &t.Key, &t.Value); err != nil {
			return err
		}
		if i, ok := index[key{run, ds}]; ok {
			r := byID[run]
			r.Inputs[i].Tags = append(r.Inputs[i].Tags, t)
		}
		return nil
	})
}

// generateRunName makes a memorable name such as "brave-otter-417", the way
// MLflow names unnamed runs.
func generateRunName() string {
	adjectives := []string{"able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "fast",
		"gentle", "glad", "grand", "keen", "kind", "lively", "lucky", "merry", "neat", "noble", "proud", "quick",
		"quiet", "rare", "sharp", "shy", "silent", "smart", "steady", "swift", "tidy", "vast", "warm", "wise"}
	nouns := []string{"ant", "bass", "bat", "bear", "bee", "carp", "cat", "colt", "crab", "crow", "deer", "dove",
		"eel", "elk", "finch", "fox", "frog", "goat", "gull", "hare", "hawk", "heron", "lark", "lynx", "mole", "moth",
		"newt", "otter", "owl", "ram", "seal", "shrew", "slug", "snail", "squid", "stag", "swan", "toad", "trout", "wolf", "wren"}
	return fmt.Sprintf("%s-%s-%d", adjectives[rand.IntN(len(adjectives))], nouns[rand.IntN(len(nouns))], rand.IntN(1000))
}
