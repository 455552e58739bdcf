package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models/modeldir"
	"github.com/slipwayml/slipway/internal/registry"
)

// registeredVersion is what 'models register --out' writes and
// 'models promote --version-file' reads.
type registeredVersion struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	RunID   string `json:"run_id"`
	Source  string `json:"source"`
}

func newModelsRegisterCmd() *cobra.Command {
	var (
		outPath, experiment string
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "register NAME MODEL_DIR",
		Short: "Register a local MLflow model directory as the next version of a model, with the run that produced it",
		Long: `Register MODEL_DIR, an MLflow model directory such as 'slipway train -o DIR'
writes, as the next version of NAME (creating the registered model if
needed). The version is registered the way 'slipway train --register' and
mlflow.register_model register: from the producing run's artifacts
(source runs:/RUN_ID/PATH, with that run_id), which the server copies into
registry storage and hashes. Lineage then leads from the version to its
training run and that run's data.

The run is the one MLmodel names as run_id (slipway train writes it; so
does MLflow), and its artifacts at MLmodel's artifact_path (model) must
hold the same files as MODEL_DIR: the sizes are compared before, and the
SHA-256 of every registered file after registration (a version whose files
differ is deleted again). A directory whose MLmodel names no run is first
logged as the artifacts of a run: the pipeline step's run when
MLFLOW_RUN_ID is set, else a new run in --experiment.

--out FILE writes {"name", "version", "run_id", "source"} as JSON, which
'slipway models promote NAME --version-file FILE' reads, so a later
pipeline step can promote what this one registered.`,
		Example: `  slipway train --data data:credit@latest --target default -o model
  slipway models register credit model --out registered.json
  slipway models promote credit --version-file registered.json --to production`,
		Args: cobra.ExactArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, dir := args[0], args[1]
			local, meta, err := readModelDir(dir)
			if err != nil {
				return err
			}
			runID, artifactPath := meta.RunID, meta.ArtifactPath
			logged := ""
			if runID == "" {
				if runID, err = logModelDir(ctx, c, dir, experiment); err != nil {
					return err
				}
				artifactPath, logged = "model", runID
			} else if err := checkRunModel(ctx, c, dir, local, runID, artifactPath); err != nil {
				return err
			}
			v, err := registerRunModel(ctx, c, name, runID, artifactPath)
			if err != nil {
				return err
			}
			if err := checkManifest(ctx, c, v, dir, local); err != nil {
				if derr := c.DeleteModelVersion(context.WithoutCancel(ctx), v.Name, v.Version); derr != nil {
					return fmt.Errorf("%w (and deleting the version failed: %v)", err, derr)
				}
				return err
			}
			n, err := strconv.ParseInt(v.Version, 10, 64)
			if err != nil {
				return fmt.Errorf("the server answered version %q, not a number", v.Version)
			}
			rec := registeredVersion{Name: v.Name, Version: n, RunID: v.RunID, Source: v.Source}
			if outPath != "" {
				if err := writeJSONFile("--out", outPath, rec); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, rec)
			}
			if logged != "" {
				fmt.Fprintf(out, "%s/MLmodel names no run_id: logged the model to run %s\n", dir, logged)
			}
			fmt.Fprintf(out, "registered %s from %s (%d files verified)\n", versionRef(v), v.Source, len(local))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&outPath, "out", "", `write {"name", "version", "run_id", "source"} to this file as JSON`)
	f.StringVar(&experiment, "experiment", "models", "where to log a model whose MLmodel names no run (ignored when MLFLOW_RUN_ID names the run)")
	f.BoolVar(&asJSON, "json", false, `print {"name", "version", "run_id", "source"}`)
	return cmd
}

// localFile is one file of a model directory.
type localFile struct {
	size   int64
	sha256 string
}

// mlmodelMeta is what register reads from MLmodel.
type mlmodelMeta struct {
	RunID        string `yaml:"run_id"`
	ArtifactPath string `yaml:"artifact_path"`
}

// readModelDir hashes every file of a model directory, by its path
// relative to dir with /, and reads MLmodel's run_id and artifact_path.
func readModelDir(dir string) (map[string]localFile, mlmodelMeta, error) {
	var meta mlmodelMeta
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, meta, errs.Invalid("MODEL_DIR %s: no such directory", dir)
	case err != nil:
		return nil, meta, errs.Invalid("MODEL_DIR %s: %v", dir, err)
	case !fi.IsDir():
		return nil, meta, errs.Invalid("MODEL_DIR %s: not a directory; give the MLflow model directory (slipway train -o DIR writes one)", dir)
	}
	raw, err := os.ReadFile(filepath.Join(dir, modeldir.MLmodelFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, meta, errs.Invalid("MODEL_DIR %s has no %s file: it is not an MLflow model directory (slipway train -o DIR writes one)", dir, modeldir.MLmodelFile)
	}
	if err != nil {
		return nil, meta, errs.Invalid("MODEL_DIR %s: %v", dir, err)
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, meta, errs.Invalid("MODEL_DIR %s: %s is not valid YAML: %v", dir, modeldir.MLmodelFile, err)
	}
	meta.ArtifactPath = strings.Trim(meta.ArtifactPath, "/")
	if meta.ArtifactPath == "" {
		meta.ArtifactPath = "model"
	}
	files := map[string]localFile{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = localFile{size: n, sha256: hex.EncodeToString(h.Sum(nil))}
		return nil
	})
	if err != nil {
		return nil, meta, errs.Invalid("MODEL_DIR %s: %v", dir, err)
	}
	return files, meta, nil
}

// checkRunModel makes sure the run MLmodel names exists and logged the
// same files (by path and size) at artifactPath, before a version is
// registered from there.
func checkRunModel(ctx context.Context, c *client.Client, dir string, local map[string]localFile, runID, artifactPath string) error {
	run, err := c.GetRun(ctx, runID)
	if client.IsNotFound(err) || isInvalid(err) {
		return errs.New(errs.FailedPrecondition, "MODEL_DIR %s: its MLmodel names run_id %s, which the server at %s does not have; register on the server that tracked the training", dir, runID, c.URL())
	}
	if err != nil {
		return err
	}
	if run.Info.LifecycleStage == "deleted" {
		return errs.New(errs.FailedPrecondition, "MODEL_DIR %s: its run %s is deleted; restore it to register its model", dir, runID)
	}
	remote := map[string]int64{}
	if err := listRunTree(ctx, c, runID, artifactPath, remote); err != nil {
		return err
	}
	if len(remote) == 0 {
		return errs.New(errs.FailedPrecondition, "MODEL_DIR %s: run %s has no files under %s/, so there is nothing of it to register; was the model logged to the run?", dir, runID, artifactPath)
	}
	var diffs []string
	for _, p := range sortedKeys(local) {
		size, ok := remote[p]
		switch {
		case !ok:
			diffs = append(diffs, p+" is not in the run")
		case size != local[p].size:
			diffs = append(diffs, fmt.Sprintf("%s has %d bytes here and %d in the run", p, local[p].size, size))
		}
	}
	for _, p := range sortedKeys(remote) {
		if _, ok := local[p]; !ok {
			diffs = append(diffs, p+" is only in the run")
		}
	}
	if len(diffs) > 0 {
		return errs.New(errs.FailedPrecondition, "MODEL_DIR %s differs from what run %s logged at %s/: %s; register the files the run logged (or train again)",
			dir, runID, artifactPath, strings.Join(firstN(diffs, 5), "; "))
	}
	return nil
}

// listRunTree adds the files below dir of a run's artifacts to sizes, by
// their paths relative to dir.
func listRunTree(ctx context.Context, c *client.Client, runID, dir string, sizes map[string]int64) error {
	var walk func(rel string) error
	walk = func(rel string) error {
		p := dir
		if rel != "" {
			p += "/" + rel
		}
		l, err := c.ListRunArtifacts(ctx, runID, p)
		if err != nil {
			return err
		}
		for _, f := range l.Files {
			child := strings.TrimPrefix(strings.TrimPrefix(f.Path, dir), "/")
			if child == "" || child == rel || strings.Contains("/"+child+"/", "/../") {
				continue
			}
			if f.IsDir {
				if err := walk(child); err != nil {
					return err
				}
				continue
			}
			sizes[child] = f.FileSize
		}
		return nil
	}
	return walk("")
}

// logModelDir logs a model directory with no run as the artifacts of a
// run (the step's, or a new one) under model/, and returns the run's id.
func logModelDir(ctx context.Context, c *client.Client, dir, experiment string) (string, error) {
	run, err := startRun(ctx, c, experiment, "", "models register")
	if err != nil {
		return "", err
	}
	err = func() error {
		existing := map[string]int64{}
		if err := listRunTree(ctx, c, run.ID(), "model", existing); err != nil {
			return err
		}
		if len(existing) > 0 {
			return errs.New(errs.FailedPrecondition, "MODEL_DIR %s/MLmodel names no run, and run %s already has files under model/; register from a run that logged this model", dir, run.ID())
		}
		return run.uploadDir(ctx, dir, "model")
	}()
	return run.ID(), run.finish(ctx, err)
}

// checkManifest compares the registry's manifest of a new version, the
// SHA-256 of every file the server copied, with the local files, so that
// the version holds exactly MODEL_DIR.
func checkManifest(ctx context.Context, c *client.Client, v *client.ModelVersion, dir string, local map[string]localFile) error {
	uri, err := c.GetModelVersionDownloadURI(ctx, v.Name, v.Version)
	if err != nil {
		return err
	}
	base, ok := strings.CutSuffix(uri, "/files")
	if !ok {
		return fmt.Errorf("version %s: download URI %q is not a directory of files", versionRef(v), uri)
	}
	body, err := c.DownloadArtifactFrom(ctx, base, registry.ManifestName)
	if err != nil {
		return err
	}
	defer body.Close()
	var m registry.Manifest
	if err := json.NewDecoder(body).Decode(&m); err != nil {
		return fmt.Errorf("reading the manifest of %s: %w", versionRef(v), err)
	}
	var diffs []string
	seen := map[string]bool{}
	for _, f := range m.Files {
		seen[f.Path] = true
		l, ok := local[f.Path]
		switch {
		case !ok:
			diffs = append(diffs, f.Path+" is not in MODEL_DIR")
		case l.sha256 != f.SHA256 || l.size != f.Size:
			diffs = append(diffs, f.Path+" differs (SHA-256 "+shortDigest(l.sha256)+" here, "+shortDigest(f.SHA256)+" registered)")
		}
	}
	for _, p := range sortedKeys(local) {
		if !seen[p] {
			diffs = append(diffs, p+" was not registered")
		}
	}
	if len(diffs) > 0 {
		return errs.New(errs.FailedPrecondition, "%s registered files that differ from MODEL_DIR %s: %s; the version was deleted again",
			versionRef(v), dir, strings.Join(firstN(diffs, 5), "; "))
	}
	return nil
}

func firstN(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(xs[:n:n], fmt.Sprintf("and %d more", len(xs)-n))
}

// readVersionFile reads what 'models register --out' wrote. The version
// may be a number or a string of digits, as MLflow writes versions.
func readVersionFile(path string) (registeredVersion, error) {
	var rv registeredVersion
	raw, err := os.ReadFile(path)
	if err != nil {
		return rv, errs.Invalid("--version-file: %v", err)
	}
	var doc struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version"`
		RunID   string          `json:"run_id"`
		Source  string          `json:"source"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return rv, errs.Invalid("--version-file %s: not a JSON object: %v", path, err)
	}
	rv = registeredVersion{Name: doc.Name, RunID: doc.RunID, Source: doc.Source}
	v := strings.Trim(string(doc.Version), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case doc.Name == "":
		return rv, errs.Invalid(`--version-file %s: field "name" is missing or empty; want {"name": ..., "version": N} as 'slipway models register --out' writes`, path)
	case len(doc.Version) == 0:
		return rv, errs.Invalid(`--version-file %s: field "version" is missing; want {"name": ..., "version": N} as 'slipway models register --out' writes`, path)
	case err != nil || n < 1:
		return rv, errs.Invalid(`--version-file %s: field "version" is %s; it must be a version number, 1 or more`, path, doc.Version)
	}
	rv.Version = n
	return rv, nil
}
