package registry

import (
	"context"
	"database/sql"
)

// latestVersions returns each model's latest_versions, as MLflow builds
// them: the newest version in each stage, stages in the order their
// oldest version entered them. Only READY versions count, as
// model_registry.proto says of latest_versions: a version still being
// copied, or whose registration failed, has no files to serve.
//
// The newest and oldest version per stage come from the
// model_versions_latest index alone; only those rows and their tags are
// read. Reading every version of every model on a page, as this did
// before, was most of a search's time (docs/benchmarks.md).
func (s *Service) latestVersions(ctx context.Context, in string, ids []any) (map[int64][]ModelVersion, error) {
	perStage := `SELECT model_id, MIN(version) AS first_version, MAX(version) AS latest_version FROM model_versions
		WHERE model_id IN ` + in + ` AND status = ? AND current_stage <> ? GROUP BY model_id, current_stage`
	args := append(append(make([]any, 0, len(ids)+2), ids...), StatusReady, stageDeleted)
	var vs []ModelVersion
	err := s.db.EachRow(ctx, `SELECT `+versionColumns+` FROM (`+perStage+`) l
		JOIN model_versions mv ON mv.model_id = l.model_id AND mv.version = l.latest_version
		JOIN registered_models rm ON rm.model_id = mv.model_id
		ORDER BY mv.model_id, l.first_version`, args, func(rows *sql.Rows) error {
		v, err := scanVersion(rows)
		vs = append(vs, v)
		return err
	})
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	type key struct{ id, version int64 }
	index := make(map[key]int, len(vs))
	for i, v := range vs {
		index[key{v.modelID, v.Version}] = i
	}
	err = s.db.EachRow(ctx, `SELECT t.model_id, t.version, t.key, t.value FROM (`+perStage+`) l
		JOIN model_version_tags t ON t.model_id = l.model_id AND t.version = l.latest_version
		ORDER BY t.model_id, t.version, t.key`, args, func(rows *sql.Rows) error {
		var k key
		var t Tag
		if err := rows.Scan(&k.id, &k.version, &t.Key, &t.Value); err != nil {
			return err
		}
		if i, ok := index[k]; ok {
			vs[i].Tags = append(vs[i].Tags, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]ModelVersion)
	for _, v := range vs {
		out[v.modelID] = append(out[v.modelID], v)
	}
	return out, nil
}
