package datasets

import (
	"context"
	"math"

	"github.com/slipwayml/slipway/internal/datasets/profile"
)

// Diff is what changed from one version of a dataset to another.
type Diff struct {
	Name       string       `json:"name"`
	From       Version      `json:"from"`
	To         Version      `json:"to"`
	Added      []File       `json:"added"`
	Removed    []File       `json:"removed"`
	Changed    []FileChange `json:"changed"`
	Unchanged  int          `json:"unchanged"`
	SizeChange int64        `json:"size_change"`
	// Tables compares the profiles of tabular files present in both
	// versions with different content.
	Tables []TableDiff `json:"tables"`
}

// FileChange is a path whose content differs between the versions.
type FileChange struct {
	Path       string `json:"path"`
	FromDigest string `json:"from_digest"`
	ToDigest   string `json:"to_digest"`
	FromSize   int64  `json:"from_size"`
	ToSize     int64  `json:"to_size"`
}

// TableDiff compares two profiles of one tabular file.
type TableDiff struct {
	Path           string         `json:"path"`
	FromRows       int64          `json:"from_rows"`
	ToRows         int64          `json:"to_rows"`
	AddedColumns   []string       `json:"added_columns"`
	RemovedColumns []string       `json:"removed_columns"`
	TypeChanges    []TypeChange   `json:"type_changes"`
	Shifts         []ColumnChange `json:"shifts"`
}

// TypeChange is a column whose inferred type changed.
type TypeChange struct {
	Column string `json:"column"`
	From   string `json:"from"`
	To     string `json:"to"`
}

// ColumnChange compares one column's statistics. MeanShift is the change in
// mean in units of the old standard deviation, the first thing to look at
// for drift; quantile changes are new minus old.
type ColumnChange struct {
	Column          string             `json:"column"`
	FromMean        *float64           `json:"from_mean,omitempty"`
	ToMean          *float64           `json:"to_mean,omitempty"`
	MeanShift       *float64           `json:"mean_shift_std,omitempty"`
	FromStd         *float64           `json:"from_std,omitempty"`
	ToStd           *float64           `json:"to_std,omitempty"`
	FromMissingRate float64            `json:"from_missing_rate"`
	ToMissingRate   float64            `json:"to_missing_rate"`
	FromDistinct    int64              `json:"from_distinct"`
	ToDistinct      int64              `json:"to_distinct"`
	QuantileChanges map[string]float64 `json:"quantile_changes,omitempty"`
	// TopAdded and TopRemoved are values that entered or left the top
	// categories: how a categorical column's drift first shows.
	TopAdded   []string `json:"top_added,omitempty"`
	TopRemoved []string `json:"top_removed,omitempty"`
}

// Diff compares version from with version to of dataset name (0: latest).
func (s *Service) Diff(ctx context.Context, name string, from, to int64) (Diff, error) {
	a, b, err := s.versionPair(ctx, name, from, to)
	if err != nil {
		return Diff{}, err
	}
	return DiffVersions(a, b), nil
}

// DiffVersions compares two versions loaded with their files and profiles.
func DiffVersions(a, b Version) Diff {
	d := Diff{Name: b.Name, Added: []File{}, Removed: []File{}, Changed: []FileChange{}, Tables: []TableDiff{},
		SizeChange: b.TotalSize - a.TotalSize}
	old := make(map[string]File, len(a.Files))
	for _, f := range a.Files {
		old[f.Path] = f
	}
	for _, f := range b.Files {
		o, ok := old[f.Path]
		switch {
		case !ok:
			d.Added = append(d.Added, f)
		case o.Digest != f.Digest:
			d.Changed = append(d.Changed, FileChange{Path: f.Path, FromDigest: o.Digest, ToDigest: f.Digest, FromSize: o.Size, ToSize: f.Size})
			if pa, pb := a.Profiles[f.Path], b.Profiles[f.Path]; pa != nil && pb != nil {
				d.Tables = append(d.Tables, DiffProfiles(f.Path, pa, pb))
			}
		default:
			d.Unchanged++
		}
		delete(old, f.Path)
	}
	for _, f := range a.Files {
		if _, gone := old[f.Path]; gone {
			d.Removed = append(d.Removed, f)
		}
	}
	d.From, d.To = summary(a), summary(b)
	return d
}

func summary(v Version) Version {
	v.Files, v.Profiles = nil, nil
	return v
}

// DiffProfiles compares two profiles of the file at path.
func DiffProfiles(path string, a, b *profile.Profile) TableDiff {
	t := TableDiff{Path: path, FromRows: a.Rows, ToRows: b.Rows,
		AddedColumns: []string{}, RemovedColumns: []string{}, TypeChanges: []TypeChange{}, Shifts: []ColumnChange{}}
	old := make(map[string]*profile.Column, len(a.Columns))
	for i := range a.Columns {
		old[a.Columns[i].Name] = &a.Columns[i]
	}
	for i := range b.Columns {
		c := &b.Columns[i]
		o, ok := old[c.Name]
		if !ok {
			t.AddedColumns = append(t.AddedColumns, c.Name)
			continue
		}
		delete(old, c.Name)
		if o.Type != c.Type {
			t.TypeChanges = append(t.TypeChanges, TypeChange{Column: c.Name, From: o.Type, To: c.Type})
		}
		ch := ColumnChange{Column: c.Name, FromMean: o.Mean, ToMean: c.Mean, FromStd: o.Std, ToStd: c.Std,
			FromMissingRate: o.MissingRate, ToMissingRate: c.MissingRate, FromDistinct: o.Distinct, ToDistinct: c.Distinct}
		if o.Mean != nil && c.Mean != nil && o.Std != nil && *o.Std > 0 {
			shift := (*c.Mean - *o.Mean) / *o.Std
			ch.MeanShift = &shift
		}
		for k, qa := range o.Quantiles {
			if qb, ok := c.Quantiles[k]; ok {
				if ch.QuantileChanges == nil {
					ch.QuantileChanges = map[string]float64{}
				}
				ch.QuantileChanges[k] = qb - qa
			}
		}
		ch.TopAdded, ch.TopRemoved = topChanges(o.Top, c.Top)
		if changed(ch) {
			t.Shifts = append(t.Shifts, ch)
		}
	}
	for i := range a.Columns {
		if _, gone := old[a.Columns[i].Name]; gone {
			t.RemovedColumns = append(t.RemovedColumns, a.Columns[i].Name)
		}
	}
	return t
}

// changed reports whether any statistic moved; identical columns are left
// out of a diff.
func changed(c ColumnChange) bool {
	if !sameFloat(c.FromMean, c.ToMean) || !sameFloat(c.FromStd, c.ToStd) ||
		c.FromMissingRate != c.ToMissingRate || c.FromDistinct != c.ToDistinct {
		return true
	}
	if len(c.TopAdded) > 0 || len(c.TopRemoved) > 0 {
		return true
	}
	for _, v := range c.QuantileChanges {
		if v != 0 {
			return true
		}
	}
	return false
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b || math.Abs(*a-*b) <= 1e-12*math.Max(math.Abs(*a), math.Abs(*b))
}

func topChanges(a, b []profile.Category) (added, removed []string) {
	in := func(cs []profile.Category, v string) bool {
		for _, c := range cs {
			if c.Value == v {
				return true
			}
		}
		return false
	}
	for _, c := range b {
		if !in(a, c.Value) {
			added = append(added, c.Value)
		}
	}
	for _, c := range a {
		if !in(b, c.Value) {
			removed = append(removed, c.Value)
		}
	}
	return added, removed
}
