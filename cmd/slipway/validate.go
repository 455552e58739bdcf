package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/datasets/validate"
	"github.com/slipwayml/slipway/internal/errs"
)

func newDataValidateCmd() *cobra.Command {
	var (
		reference, reportPath string
		o                     = validate.DefaultOptions()
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "validate DATA --reference data:NAME@vN",
		Short: "Check data against a reference version's schema and profile; fail on breaks",
		Long: `Profile DATA and compare it with the profile stored with a reference data
version, the built-in data check of a pipeline. DATA is a CSV or Parquet
file, a directory of them, or a data version (data:NAME@vN or
data:NAME@latest, whose stored profiles are used as they are).

It fails, listing every violation on its own line with the column, the rule
and both values, when:
  column_missing  a column of the reference is not in the data
  type            a column's type changed (integers where the reference has
                  floats are fine; a column with no values at all is left
                  to missing_rate)
  missing_rate    a column's share of missing values is above the
                  reference's by more than --max-missing-increase (absolute)
  range           more than --max-out-of-range (1%) of a numeric column's
                  values lie below, or above, the reference's [min, max]
                  widened on each side by --range-slack times max - min
                  (measured by the data's 1st and 99th percentiles; 0
                  fails on a single value outside)
  categories      with --strict-categories, a text or boolean column holds
                  values the reference does not (checked where the
                  reference's profile lists all its values: 10 or fewer)
  rows            the data has no rows
  table_missing   a table of the reference has no counterpart in the data
A column (or table) the reference does not have is a warning, not a failure.

Tables are matched by their path in the version or below the directory; a
reference and data with one table each are compared whatever their names.

Exits 0 when there is no violation, 2 when there is one (or on a usage
error), 1 when the server cannot be reached. --json prints the report as
JSON; --report FILE also writes it to FILE. In a pipeline step
(MLFLOW_RUN_ID set) the counts are logged to the step's run as metrics
(validation_violations, validation_warnings, validation_columns_checked,
validation_passed) and the report as validation/report.json.`,
		Example: `  slipway data validate new.csv --reference data:wine@v1
  slipway data validate ./batches/2026-11 --reference data:wine@v3 --max-missing-increase 0.01 --strict-categories
  slipway data validate data:wine@latest --reference data:wine@v1 --report validation.json`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if err := o.Check(); err != nil {
				return err
			}
			if !strings.HasPrefix(reference, "data:") {
				if reference == "" {
					return errs.Invalid("--reference is required: the data version to validate against, data:NAME@vN")
				}
				return errs.Invalid("--reference %q: must be a data version, data:NAME@vN", reference)
			}
			tmp, err := os.MkdirTemp("", "slipway-validate-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			refLabel, refProfiles, err := versionProfiles(ctx, c, "--reference", reference, filepath.Join(tmp, "reference"))
			if err != nil {
				return err
			}
			if len(refProfiles) == 0 {
				return errs.New(errs.FailedPrecondition, "--reference %s has no CSV or Parquet file to validate against", refLabel)
			}
			dataLabel, dataProfiles := args[0], map[string]*profile.Profile(nil)
			if strings.HasPrefix(args[0], "data:") {
				dataLabel, dataProfiles, err = versionProfiles(ctx, c, "DATA", args[0], filepath.Join(tmp, "data"))
			} else {
				dataProfiles, err = localProfiles(args[0])
			}
			if err != nil {
				return err
			}
			if len(dataProfiles) == 0 {
				return errs.Invalid("DATA %s has no CSV or Parquet file (.csv, .parquet, .pq) to validate", dataLabel)
			}
			rep := validationReport{Data: dataLabel, Reference: refLabel, Report: validate.Compare(refProfiles, dataProfiles, o)}
			if reportPath != "" {
				if err := writeJSONFile("--report", reportPath, rep); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				rep.print(out)
			}
			if err := logValidation(ctx, c, rep, args[0], reference); err != nil {
				return err
			}
			if !rep.Passed {
				return errs.New(errs.FailedPrecondition, "%s failed validation against %s: %s", dataLabel, refLabel, plural(len(rep.Violations), "violation"))
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&reference, "reference", "", "the data version to validate against, data:NAME@vN")
	f.Float64Var(&o.MaxMissingIncrease, "max-missing-increase", validate.DefaultMaxMissingIncrease, "how far a column's missing rate may rise above the reference's (absolute, 0 to 1)")
	f.Float64Var(&o.RangeSlack, "range-slack", validate.DefaultRangeSlack, "widen each numeric column's reference [min, max] on both sides by this share of max - min")
	f.Float64Var(&o.MaxOutOfRange, "max-out-of-range", validate.DefaultMaxOutOfRange, "share of a numeric column's values allowed outside the widened range on each side: 0, 0.01 or 0.05")
	f.BoolVar(&o.StrictCategories, "strict-categories", false, "fail on text and boolean values the reference does not have")
	f.StringVar(&reportPath, "report", "", "also write the report to this file as JSON")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// validationReport is validate's report with what was compared.
type validationReport struct {
	Data      string `json:"data"`
	Reference string `json:"reference"`
	*validate.Report
}

func (r validationReport) print(out interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(out, "%s against %s: %s, %s checked\n", r.Data, r.Reference, plural(len(r.Tables), "table"), plural(r.ColumnsChecked(), "column"))
	for _, f := range r.Violations {
		fmt.Fprintf(out, "FAIL  %s\n", f)
	}
	for _, f := range r.Warnings {
		fmt.Fprintf(out, "warn  %s\n", f)
	}
	if r.Passed {
		fmt.Fprintf(out, "passed: no violations, %s\n", plural(len(r.Warnings), "warning"))
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// versionProfiles returns the profiles of a data version's CSV and Parquet
// files by path, and the version's name as data:NAME@vN. Profiles stored
// with the version are used as they are; a file stored without one (added
// with --no-profile) is downloaded into dir and profiled here.
func versionProfiles(ctx context.Context, c *client.Client, what, ref, dir string) (string, map[string]*profile.Profile, error) {
	name, n, err := parseDataRef(strings.TrimPrefix(ref, "data:"))
	if err != nil {
		return "", nil, errs.Invalid("%s %s", what, errs.Message(err))
	}
	v, err := c.GetDataVersion(ctx, name, n, true)
	if err != nil {
		return "", nil, err
	}
	label := fmt.Sprintf("data:%s@v%d", v.Name, v.Version)
	out := map[string]*profile.Profile{}
	var unprofiled []client.DataFile
	for _, f := range v.Files {
		if profile.Format(f.Path) == "" {
			continue
		}
		stored, ok := v.Profiles[f.Path]
		if !ok || stored == nil {
			unprofiled = append(unprofiled, f)
			continue
		}
		var p profile.Profile
		if err := convert(stored, &p); err != nil {
			return "", nil, err
		}
		out[f.Path] = &p
	}
	if len(unprofiled) > 0 {
		if err := download(ctx, c, dir, unprofiled, 4); err != nil {
			return "", nil, err
		}
		for _, f := range unprofiled {
			p, err := profile.File(filepath.Join(dir, filepath.FromSlash(f.Path)))
			if err != nil {
				return "", nil, errs.Invalid("%s %s: %s cannot be profiled: %v", what, label, f.Path, err)
			}
			out[f.Path] = p
		}
	}
	return label, out, nil
}

// localProfiles profiles a CSV or Parquet file (by its base name) or every
// such file below a directory (by its path relative to it, with /).
func localProfiles(root string) (map[string]*profile.Profile, error) {
	fi, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errs.Invalid("DATA %s: no such file or directory (or give a data version, data:NAME@vN)", root)
		}
		return nil, errs.Invalid("DATA %s: %v", root, err)
	}
	out := map[string]*profile.Profile{}
	add := func(path, rel string) error {
		p, err := profile.File(path)
		if err != nil {
			return errs.Invalid("DATA %s: %s cannot be profiled: %v", root, rel, err)
		}
		out[rel] = p
		return nil
	}
	if !fi.IsDir() {
		if profile.Format(root) == "" {
			return nil, errs.Invalid("DATA %s: not a CSV or Parquet file (by its extension: .csv, .parquet, .pq)", root)
		}
		return out, add(root, filepath.Base(root))
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return errs.Invalid("DATA %s: %v", root, err)
		}
		if d.IsDir() || profile.Format(p) == "" {
			return nil
		}
		// Links to files count, as data add follows them; links to
		// directories do not.
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return add(p, filepath.ToSlash(rel))
	})
	return out, err
}

// logValidation logs the counts and the report to the step's run, when
// the command runs as a pipeline step (MLFLOW_RUN_ID).
func logValidation(ctx context.Context, c *client.Client, rep validationReport, dataRef, reference string) error {
	run, err := stepRun(ctx, c)
	if err != nil || run == nil {
		return err
	}
	passed := 0.0
	if rep.Passed {
		passed = 1
	}
	metrics := map[string]float64{
		"validation_violations":      float64(len(rep.Violations)),
		"validation_warnings":        float64(len(rep.Warnings)),
		"validation_columns_checked": float64(rep.ColumnsChecked()),
		"validation_passed":          passed,
	}
	if err := run.logBatch(ctx, nil, metrics, 0); err != nil {
		return err
	}
	if err := run.logData(ctx, dataRef, "validation"); err != nil {
		return err
	}
	if err := run.logData(ctx, reference, "reference"); err != nil {
		return err
	}
	var raw strings.Builder
	if err := writeJSON(&raw, rep); err != nil {
		return err
	}
	return run.upload(ctx, "validation/report.json", raw.String())
}
