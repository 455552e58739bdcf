package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/tabular"
)

func newPredictCmd() *cobra.Command {
	var modelRef, dataRef, outPath, experiment string
	cmd := &cobra.Command{
		Use:   "predict --model MODEL --data DATA [--out FILE]",
		Short: "Score a CSV or Parquet file with a model, in Slipway's native runtime",
		Long: `Score every row of DATA with MODEL and write one CSV row of predictions per
input row (a "prediction" column, or one "probability_K" column per class).

MODEL is a registered version (models:/NAME/VERSION or models:/NAME@ALIAS,
downloaded from the server and verified), an MLflow model directory with an
xgboost flavor, or an XGBoost model file (.json or .ubj).

DATA is a CSV or Parquet file, a directory holding exactly one (as a
pipeline step receives its data inputs), or a data version (data:NAME@vN
or data:NAME@latest) holding one. Columns are matched to the model's features
by name; a missing column, or text where the model reads numbers, is an
error naming the column and row.

With --experiment, the scoring is also a run there (a batch-inference
record): the model and data as params, a data version as its dataset input,
the row count, and the predictions as predictions.csv. In a pipeline step
(MLFLOW_RUN_ID set), --experiment logs that record into the step's run
instead.`,
		Example: `  slipway predict --model models:/credit@production --data applicants.csv --out scores.csv
  slipway predict --model model.json --data data:credit@v3`,
		Args: cobra.NoArgs,
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			if modelRef == "" || dataRef == "" {
				return errs.Invalid("--model and --data are required")
			}
			start := time.Now()
			tmp, err := os.MkdirTemp("", "slipway-predict-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			modelPath, err := fetchModel(ctx, c, modelRef, filepath.Join(tmp, "model"))
			if err != nil {
				return err
			}
			opened, err := modeldir.Open(modelPath)
			if err != nil {
				return errs.Invalid("model %s: %v", modelRef, err)
			}
			dataPath, resolved, err := fetchData(ctx, c, dataRef, filepath.Join(tmp, "data"))
			if err != nil {
				return err
			}
			table, err := tabular.ReadFile(dataPath)
			if err != nil {
				return errs.Invalid("data %s: %v", dataRef, err)
			}
			x, err := table.Matrix(opened.Features)
			if err != nil {
				return errs.Invalid("data %s: %v", dataRef, err)
			}
			m := opened.Model
			preds := make([]float32, table.Rows*m.NumOutputs())
			if err := m.Predict(x, preds); err != nil {
				return err
			}
			var csvOut strings.Builder
			if err := writePredictions(&csvOut, m.Signature().Outputs, preds, m.NumOutputs()); err != nil {
				return err
			}
			if experiment != "" {
				run, err := logPredictions(ctx, c, experiment, modelRef, resolved, table.Rows, csvOut.String())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "logged as run %s\n", run)
			}
			out := cmd.OutOrStdout()
			if outPath != "" && outPath != "-" {
				f, err := os.Create(outPath)
				if err != nil {
					return errs.Invalid("--out: %v", err)
				}
				defer f.Close()
				out = f
			}
			if _, err := io.WriteString(out, csvOut.String()); err != nil {
				return err
			}
			if outPath != "" && outPath != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "scored %d rows with %s in %s -> %s\n", table.Rows, modelRef,
					time.Since(start).Round(time.Millisecond), outPath)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&modelRef, "model", "", "models:/NAME/VERSION, models:/NAME@ALIAS, a model directory or a model file")
	f.StringVar(&dataRef, "data", "", "a CSV or Parquet file (or a directory holding one), or data:NAME@vN")
	f.StringVarP(&outPath, "out", "o", "", "write predictions to this CSV file (default: standard output)")
	f.StringVar(&experiment, "experiment", "", "also record the scoring as a run in this experiment")
	return clientGroupFlags(cmd)
}

// clientGroupFlags gives a top-level client command the --url flag the
// command groups have.
func clientGroupFlags(cmd *cobra.Command) *cobra.Command {
	urlFlag(cmd.Flags())
	return cmd
}

func writePredictions(w io.Writer, outputs []models.Column, preds []float32, k int) error {
	cw := csv.NewWriter(w)
	header := make([]string, k)
	for i := range header {
		header[i] = outputs[i].Name
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	row := make([]string, k)
	for r := 0; r < len(preds)/k; r++ {
		for i := range row {
			row[i] = strconv.FormatFloat(float64(preds[r*k+i]), 'g', -1, 32)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// logPredictions records a batch scoring as a run.
func logPredictions(ctx context.Context, c *client.Client, experiment, modelRef, dataRef string, rows int, predictions string) (*trackedRun, error) {
	run, err := startRun(ctx, c, experiment, "", "predict")
	if err != nil {
		return nil, err
	}
	err = func() error {
		if err := run.logBatch(ctx, map[string]string{"model": modelRef, "data": dataRef}, map[string]float64{"rows": float64(rows)}, 0); err != nil {
			return err
		}
		if err := run.logData(ctx, dataRef, "inference"); err != nil {
			return err
		}
		return run.upload(ctx, "predictions.csv", predictions)
	}()
	return run, run.finish(ctx, err)
}

// fetchModel returns a local path for a model reference, downloading a
// registered version into dir.
func fetchModel(ctx context.Context, c *client.Client, ref, dir string) (string, error) {
	if !strings.HasPrefix(ref, "models:/") {
		if _, err := os.Stat(ref); err != nil {
			return "", errs.Invalid("--model %s: %v", ref, err)
		}
		return ref, nil
	}
	name, version, alias, err := splitModelRef(ref)
	if err != nil {
		return "", err
	}
	var mv *client.ModelVersion
	if alias != "" {
		mv, err = c.GetModelVersionByAlias(ctx, name, alias)
	} else {
		mv, err = c.GetModelVersion(ctx, name, version)
	}
	if err != nil {
		return "", err
	}
	uri, err := c.GetModelVersionDownloadURI(ctx, mv.Name, mv.Version)
	if err != nil {
		return "", err
	}
	files, err := c.DownloadTree(ctx, uri, dir)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", errs.New(errs.FailedPrecondition, "%s has no files", ref)
	}
	return dir, nil
}

// fetchData returns a local path for a data reference, downloading the one
// tabular file of a data version into dir, and the reference with the
// version resolved (data:NAME@vN for data:NAME@latest). A local directory
// stands for the one CSV or Parquet file below it: a pipeline's runner
// hands a step its data inputs as directories.
func fetchData(ctx context.Context, c *client.Client, ref, dir string) (path, resolved string, err error) {
	if !strings.HasPrefix(ref, "data:") {
		fi, err := os.Stat(ref)
		if err != nil {
			return "", "", errs.Invalid("--data %s: %v", ref, err)
		}
		if !fi.IsDir() {
			return ref, ref, nil
		}
		var tables []string
		err = filepath.WalkDir(ref, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && profile.Format(p) != "" {
				tables = append(tables, p)
			}
			return err
		})
		if err != nil {
			return "", "", errs.Invalid("--data %s: %v", ref, err)
		}
		if len(tables) != 1 {
			return "", "", errs.Invalid("--data %s: the directory holds %d CSV or Parquet files; name a directory with exactly one, or the file", ref, len(tables))
		}
		return tables[0], ref, nil
	}
	name, n, err := parseDataRef(strings.TrimPrefix(ref, "data:"))
	if err != nil {
		return "", "", err
	}
	v, err := c.GetDataVersion(ctx, name, n, true)
	if err != nil {
		return "", "", err
	}
	resolved = fmt.Sprintf("data:%s@v%d", v.Name, v.Version)
	var tables []client.DataFile
	for _, f := range v.Files {
		switch strings.ToLower(filepath.Ext(f.Path)) {
		case ".csv", ".parquet", ".pq":
			tables = append(tables, f)
		}
	}
	if len(tables) != 1 {
		return "", "", errs.Invalid("%s: %s@v%d has %d CSV or Parquet files; name a version with exactly one", ref, v.Name, v.Version, len(tables))
	}
	if err := download(ctx, c, dir, tables, 1); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, filepath.FromSlash(tables[0].Path)), resolved, nil
}
