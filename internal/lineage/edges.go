package lineage

import (
	"context"
	"database/sql"
	"strings"

	"github.com/slipwayml/slipway/internal/datasets"
)

// deletedStage marks the kept row of a deleted model version (the
// registry's Deleted_Internal, as MLflow spells it); such rows are
// redacted and take part in no lineage.
const deletedStage = "Deleted_Internal"

// chunkSize bounds the OR-ed conditions of one query, well inside SQLite's
// expression depth limit of 1000.
const chunkSize = 200

// inChunks calls fn with consecutive parts of ids, at most chunkSize each.
func inChunks(ids []string, fn func(part []string) error) error {
	for start := 0; start < len(ids); start += chunkSize {
		if err := fn(ids[start:min(start+chunkSize, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// anyOf returns "(cond OR cond ...)" with cond repeated n times.
func anyOf(cond string, n int) string {
	return "(" + strings.Repeat(cond+" OR ", n-1) + cond + ")"
}

// dataConsumers: data versions -> the runs that logged a dataset whose
// digest names them. Every form of digest that could name a version is
// looked up exactly, which the datasets_by_digest index answers.
func (s *Service) dataConsumers(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		var args []any
		for _, id := range part {
			name, version, _ := datasets.ParseRef(id)
			args = append(args, name, version)
		}
		named := map[string][]Ref{} // digest form -> the versions it names
		var forms []any
		err := s.db.EachRow(ctx, `SELECT name, version, digest FROM data_versions WHERE `+anyOf(`(name = ? AND version = ?)`, len(part)),
			args, func(rows *sql.Rows) error {
				var name, digest string
				var version int64
				if err := rows.Scan(&name, &version, &digest); err != nil {
					return err
				}
				for _, f := range digestForms(digest) {
					if named[f] == nil {
						forms = append(forms, f)
					}
					named[f] = append(named[f], dataRef(name, version))
				}
				return nil
			})
		if err != nil || len(forms) == 0 {
			return err
		}
		return s.db.EachRow(ctx, `SELECT DISTINCT d.digest, i.run_uuid FROM datasets d JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid
			WHERE d.digest IN (`+placeholders(len(forms))+`)`, forms, func(rows *sql.Rows) error {
			var digest, run string
			if err := rows.Scan(&digest, &run); err != nil {
				return err
			}
			for _, from := range named[digest] {
				out = append(out, Edge{From: from, To: Ref{KindRun, run}, Relation: ConsumedBy})
			}
			return nil
		})
	})
	return out, err
}

// runInputs: runs -> the data versions their datasets' digests name. The
// versions are found by the first MinDigestPrefix digits of their digest
// (an indexed expression), then checked against the whole prefix.
func (s *Service) runInputs(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		byPrefix := map[string][]string{} // digest prefix -> runs that logged it
		var keys []any
		seenKey := map[string]bool{}
		err := s.db.EachRow(ctx, `SELECT DISTINCT i.run_uuid, d.digest FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
			WHERE i.run_uuid IN (`+placeholders(len(part))+`)`, strArgs(part), func(rows *sql.Rows) error {
			var run, digest string
			if err := rows.Scan(&run, &digest); err != nil {
				return err
			}
			p, ok := digestPrefix(digest)
			if !ok {
				return nil
			}
			byPrefix[p] = append(byPrefix[p], run)
			if k := p[:MinDigestPrefix]; !seenKey[k] {
				seenKey[k] = true
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		return s.db.EachRow(ctx, `SELECT name, version, digest FROM data_versions
			WHERE substr(digest, 1, 12) IN (`+placeholders(len(keys))+`)`, keys, func(rows *sql.Rows) error {
			var name, digest string
			var version int64
			if err := rows.Scan(&name, &version, &digest); err != nil {
				return err
			}
			for p, runs := range byPrefix {
				if strings.HasPrefix(digest, p) {
					for _, run := range runs {
						out = append(out, Edge{From: dataRef(name, version), To: Ref{KindRun, run}, Relation: ConsumedBy})
					}
				}
			}
			return nil
		})
	})
	return out, err
}

// runModels: runs -> the model versions registered from them, by run_id
// or by a runs:/ source.
func (s *Service) runModels(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		in := `(` + placeholders(len(part)) + `)`
		args := append([]any{deletedStage}, strArgs(part)...)
		args = append(args, strArgs(part)...)
		wanted := make(map[string]bool, len(part))
		for _, id := range part {
			wanted[id] = true
		}
		return s.db.EachRow(ctx, `SELECT COALESCE(mv.run_id, ''), COALESCE(mv.source_run_id, ''), rm.name, mv.version
			FROM model_versions mv JOIN registered_models rm ON rm.model_id = mv.model_id
			WHERE mv.current_stage <> ? AND (mv.run_id IN `+in+` OR mv.source_run_id IN `+in+`)`, args, func(rows *sql.Rows) error {
			var runID, sourceRun, name string
			var version int64
			if err := rows.Scan(&runID, &sourceRun, &name, &version); err != nil {
				return err
			}
			for _, r := range []string{runID, sourceRun} {
				if wanted[r] {
					out = append(out, Edge{From: Ref{KindRun, r}, To: modelRef(name, version), Relation: RegisteredFrom})
				}
			}
			return nil
		})
	})
	return out, err
}

// modelOrigins: model versions -> the run and the version each was
// registered from.
func (s *Service) modelOrigins(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		args := []any{deletedStage}
		for _, id := range part {
			name, version, _, _ := splitModelID(id)
			args = append(args, name, version)
		}
		return s.db.EachRow(ctx, `SELECT rm.name, mv.version, COALESCE(mv.run_id, ''), COALESCE(mv.source_run_id, ''),
				COALESCE(src.name, ''), COALESCE(mv.source_version, 0)
			FROM model_versions mv
			JOIN registered_models rm ON rm.model_id = mv.model_id
			LEFT JOIN registered_models src ON src.model_id = mv.source_model_id
			WHERE mv.current_stage <> ? AND `+anyOf(`(rm.name = ? AND mv.version = ?)`, len(part)), args, func(rows *sql.Rows) error {
			var name, runID, sourceRun, srcName string
			var version, srcVersion int64
			if err := rows.Scan(&name, &version, &runID, &sourceRun, &srcName, &srcVersion); err != nil {
				return err
			}
			to := modelRef(name, version)
			if runID != "" {
				out = append(out, Edge{From: Ref{KindRun, runID}, To: to, Relation: RegisteredFrom})
			}
			if sourceRun != "" && sourceRun != runID {
				out = append(out, Edge{From: Ref{KindRun, sourceRun}, To: to, Relation: RegisteredFrom})
			}
			if srcName != "" {
				out = append(out, Edge{From: modelRef(srcName, srcVersion), To: to, Relation: DerivedFrom})
			}
			return nil
		})
	})
	return out, err
}

// modelCopies: model versions -> the versions registered from them with a
// models:/ source.
func (s *Service) modelCopies(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		args := []any{deletedStage}
		for _, id := range part {
			name, version, _, _ := splitModelID(id)
			args = append(args, name, version)
		}
		return s.db.EachRow(ctx, `SELECT src.name, mv.source_version, rm.name, mv.version
			FROM registered_models src
			JOIN model_versions mv ON mv.source_model_id = src.model_id
			JOIN registered_models rm ON rm.model_id = mv.model_id
			WHERE mv.current_stage <> ? AND `+anyOf(`(src.name = ? AND mv.source_version = ?)`, len(part)), args, func(rows *sql.Rows) error {
			var srcName, name string
			var srcVersion, version int64
			if err := rows.Scan(&srcName, &srcVersion, &name, &version); err != nil {
				return err
			}
			out = append(out, Edge{From: modelRef(srcName, srcVersion), To: modelRef(name, version), Relation: DerivedFrom})
			return nil
		})
	})
	return out, err
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func strArgs(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// dataProducers: data versions -> the runs named as having produced them.
func (s *Service) dataProducers(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		var args []any
		for _, id := range part {
			name, version, _ := datasets.ParseRef(id)
			args = append(args, name, version)
		}
		return s.db.EachRow(ctx, `SELECT name, version, run_id FROM data_versions WHERE run_id <> '' AND `+anyOf(`(name = ? AND version = ?)`, len(part)),
			args, func(rows *sql.Rows) error {
				var name, run string
				var version int64
				if err := rows.Scan(&name, &version, &run); err != nil {
					return err
				}
				out = append(out, Edge{From: Ref{KindRun, run}, To: dataRef(name, version), Relation: Produced})
				return nil
			})
	})
	return out, err
}

// runOutputs: runs -> the data versions they produced.
func (s *Service) runOutputs(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		return s.db.EachRow(ctx, `SELECT name, version, run_id FROM data_versions WHERE run_id IN (`+placeholders(len(part))+`)`,
			strArgs(part), func(rows *sql.Rows) error {
				var name, run string
				var version int64
				if err := rows.Scan(&name, &version, &run); err != nil {
					return err
				}
				out = append(out, Edge{From: Ref{KindRun, run}, To: dataRef(name, version), Relation: Produced})
				return nil
			})
	})
	return out, err
}

// modelDeployments: model versions -> the deployments that served them.
func (s *Service) modelDeployments(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		var args []any
		for _, id := range part {
			name, version, _, _ := splitModelID(id)
			args = append(args, name, version)
		}
		return s.servedEdges(ctx, anyOf(`(model_name = ? AND version = ?)`, len(part)), args, &out)
	})
	return out, err
}

// deploymentModels: deployments -> the model versions they served.
func (s *Service) deploymentModels(ctx context.Context, ids []string) ([]Edge, error) {
	var out []Edge
	err := inChunks(ids, func(part []string) error {
		return s.servedEdges(ctx, `deployment IN (`+placeholders(len(part))+`)`, strArgs(part), &out)
	})
	return out, err
}

// servedEdges appends the served-by edges of the deployment_versions rows
// where holds.
func (s *Service) servedEdges(ctx context.Context, where string, args []any, out *[]Edge) error {
	return s.db.EachRow(ctx, `SELECT model_name, version, deployment FROM deployment_versions WHERE `+where, args, func(rows *sql.Rows) error {
		var name, deployment string
		var version int64
		if err := rows.Scan(&name, &version, &deployment); err != nil {
			return err
		}
		*out = append(*out, Edge{From: modelRef(name, version), To: Ref{KindDeployment, deployment}, Relation: ServedBy})
		return nil
	})
}
