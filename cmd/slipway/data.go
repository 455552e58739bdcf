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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayml/slipway/client"
	"github.com/slipwayml/slipway/internal/datasets"
	"github.com/slipwayml/slipway/internal/datasets/local"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
)

func newDataCmd() *cobra.Command {
	return clientGroup(&cobra.Command{
		Use:     "data",
		Aliases: []string{"datasets"},
		Short:   "Version datasets (files and directories) on a Slipway server",
		Long: `Version datasets on a Slipway server. Files are stored once by content
(SHA-256), whatever version or dataset names them; CSV and Parquet files
get a schema and a statistical profile, the baseline for drift checks.
A dataset version is named NAME@vN (NAME or NAME@latest for the newest).`,
	}, newDataAddCmd(), newDataListCmd(), newDataShowCmd(), newDataGetCmd(), newDataDiffCmd(), newDataValidateCmd())
}

func newDataAddCmd() *cobra.Command {
	var (
		message, runID string
		noProfile      bool
		parallel       int
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME PATH",
		Short: "Add a file or directory as the next version of a dataset",
		Long: `Add a file or a directory as the next version of dataset NAME. Files are
hashed locally (unchanged files are recognised from a local index of file
stats and not read again), only content the server lacks is uploaded, and
CSV and Parquet files are profiled here, where the data is. If the content
equals the latest version's, no version is created.

--run names the run that produced the data (a preparation job, say): lineage
then shows the version as produced by that run.`,
		Example: `  slipway data add churn ./data/churn
  slipway data add churn-train train.csv -m "September snapshot"
  slipway data add churn-features ./features --run 5f0c2d9e8a7b4c1d9e0f1a2b3c4d5e6f`,
		Args: cobra.ExactArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, root := args[0], args[1]
			if err := datasets.ValidateName(name); err != nil {
				return err
			}
			abs, err := filepath.Abs(root)
			if err != nil {
				return errs.Invalid("%s: %v", root, err)
			}
			start := time.Now()
			cache, err := local.CacheDir()
			var idx *local.Index
			if err == nil {
				idx = local.OpenIndex(cache, abs)
			}
			files, st, err := local.Scan(abs, idx)
			if errors.Is(err, fs.ErrNotExist) {
				return errs.Invalid("%s: no such file or directory", root)
			}
			if err != nil {
				return errs.Invalid("%v", err)
			}
			if len(files) == 0 {
				return errs.Invalid("%s: no files to add", root)
			}
			if err := idx.Save(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: could not save the file index (%v); the next add will hash again\n", err)
			}
			commit := client.DataCommit{Message: message, RunID: runID, Files: make([]client.DataFile, len(files))}
			manifest := make([]datasets.File, len(files))
			abspath := make(map[string]string, len(files))
			for i, f := range files {
				commit.Files[i] = client.DataFile{Path: f.Path, Digest: f.Digest, Size: f.Size}
				manifest[i] = datasets.File{Path: f.Path, Digest: f.Digest, Size: f.Size}
				abspath[f.Digest] = f.Abs
			}
			if err := datasets.ValidateFiles(manifest); err != nil {
				return err
			}
			digest := datasets.VersionDigest(manifest)
			// Unchanged content needs no upload, no profile and no commit.
			latest, err := c.GetDataVersion(ctx, name, 0, !noProfile)
			if err != nil && !client.IsNotFound(err) {
				return err
			}
			out := cmd.OutOrStdout()
			if latest != nil && latest.Digest == digest {
				if asJSON {
					return writeJSON(out, map[string]any{"version": latest, "created": false})
				}
				fmt.Fprintf(out, "%s@v%d already has this content (%d files, %s, digest %s); no new version\n",
					name, latest.Version, latest.FileCount, fmtBytes(latest.TotalSize), dataDigest(digest))
				return nil
			}
			if !noProfile {
				if commit.Profiles, err = profiles(files, latest, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			v, created, ps, err := c.PushDataVersion(ctx, name, commit, parallel, func(f client.DataFile) (io.ReadCloser, error) {
				return openVerified(abspath[f.Digest], f)
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(out, map[string]any{"version": v, "created": created,
					"uploaded_objects": ps.Uploaded, "uploaded_bytes": ps.UploadedBytes,
					"hashed_files": st.Hashed, "indexed_files": st.Cached})
			}
			if !created {
				fmt.Fprintf(out, "%s@v%d already has this content; no new version\n", name, v.Version)
				return nil
			}
			fmt.Fprintf(out, "added %s@v%d: %d files, %s, digest %s\n", name, v.Version, v.FileCount, fmtBytes(v.TotalSize), dataDigest(v.Digest))
			fmt.Fprintf(out, "  uploaded %d of %d objects (%s); hashed %d files, %d unchanged since last seen; %d profiled; %s\n",
				ps.Uploaded, ps.Objects, fmtBytes(ps.UploadedBytes), st.Hashed, st.Cached, len(commit.Profiles),
				time.Since(start).Round(time.Millisecond))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&message, "message", "m", "", "a note stored with the version")
	f.StringVar(&runID, "run", "", "the run that produced the data, recorded for lineage")
	f.BoolVar(&noProfile, "no-profile", false, "do not profile CSV and Parquet files")
	f.IntVar(&parallel, "parallel", 8, "concurrent uploads")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// profiles profiles the tabular files, reusing the latest version's
// profile for content it already had: profiling is the slow part of adding
// a large table, and the same bytes always give the same profile.
func profiles(files []local.File, latest *client.DataVersion, stderr io.Writer) (map[string]*client.TableProfile, error) {
	known := map[string]*client.TableProfile{}
	if latest != nil {
		byPath := map[string]string{}
		for _, f := range latest.Files {
			byPath[f.Path] = f.Digest
		}
		for p, prof := range latest.Profiles {
			if d, ok := byPath[p]; ok {
				known[d] = prof
			}
		}
	}
	out := map[string]*client.TableProfile{}
	for _, f := range files {
		if profile.Format(f.Path) == "" {
			continue
		}
		if p, ok := known[f.Digest]; ok {
			out[f.Path] = p
			continue
		}
		p, err := profile.File(f.Abs)
		if err != nil {
			fmt.Fprintf(stderr, "warning: %s is not profiled: %v\n", f.Path, err)
			continue
		}
		var cp client.TableProfile
		raw, err := json.Marshal(p)
		if err == nil {
			err = json.Unmarshal(raw, &cp)
		}
		if err != nil {
			return nil, err
		}
		out[f.Path] = &cp
		known[f.Digest] = &cp
	}
	return out, nil
}

// openVerified opens a file for upload and fails the read if the file no
// longer has the content it was hashed with; the server would refuse it
// anyway, but this names the file.
func openVerified(p string, f client.DataFile) (io.ReadCloser, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	return &checkedFile{f: fh, h: sha256.New(), want: f, path: p}, nil
}

type checkedFile struct {
	f *os.File
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	want client.DataFile
	path string
	n    int64
}

func (c *checkedFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF && (c.n != c.want.Size || hex.EncodeToString(c.h.Sum(nil)) != c.want.Digest) {
		return n, errs.New(errs.FailedPrecondition, "%s changed while it was being added; run the command again", c.path)
	}
	return n, err
}

func (c *checkedFile) Close() error { return c.f.Close() }

func newDataListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List datasets, or the versions of one",
		Args:  cobra.MaximumNArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				vs, err := c.ListDataVersions(ctx, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(out, map[string]any{"versions": vs})
				}
				w := newTable(out)
				tableRow(w, "VERSION", "FILES", "SIZE", "DIGEST", "CREATED", "BY", "MESSAGE")
				for _, v := range vs {
					tableRow(w, "v"+strconv.FormatInt(v.Version, 10), strconv.FormatInt(v.FileCount, 10), fmtBytes(v.TotalSize),
						dataDigest(v.Digest), fmtTime(v.CreationTime), v.CreatedBy, truncate(v.Message, 60))
				}
				return w.Flush()
			}
			ds, err := c.ListDatasets(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if ds == nil {
					ds = []client.VersionedDataset{}
				}
				return writeJSON(out, map[string]any{"datasets": ds})
			}
			w := newTable(out)
			tableRow(w, "NAME", "LATEST", "FILES", "SIZE", "DIGEST", "UPDATED")
			for _, d := range ds {
				files, size, digest := "-", "-", "-"
				if d.Latest != nil {
					files, size, digest = strconv.FormatInt(d.Latest.FileCount, 10), fmtBytes(d.Latest.TotalSize), dataDigest(d.Latest.Digest)
				}
				tableRow(w, d.Name, "v"+strconv.FormatInt(d.LatestVersion, 10), files, size, digest, fmtTime(d.LastUpdateTime))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func parseDataRef(ref string) (string, int64, error) {
	name, v, err := datasets.ParseRef(ref)
	if err != nil {
		return "", 0, errs.Invalid("%q: %s (write NAME, NAME@latest or NAME@v3)", ref, errs.Message(err))
	}
	return name, v, nil
}

func newDataShowCmd() *cobra.Command {
	var (
		asJSON, files bool
	)
	cmd := &cobra.Command{
		Use:   "show NAME[@vN]",
		Short: "Show a dataset version: files, schema and profile",
		Example: `  slipway data show churn
  slipway data show churn@v2 --files
  slipway data show churn@latest --json | jq '.profiles'`,
		Args: cobra.ExactArgs(1),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, n, err := parseDataRef(args[0])
			if err != nil {
				return err
			}
			v, err := c.GetDataVersion(ctx, name, n, true)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, v)
			}
			fmt.Fprintf(out, "%s@v%d\n", v.Name, v.Version)
			fmt.Fprintf(out, "digest:   %s\n", v.Digest)
			fmt.Fprintf(out, "files:    %d (%s)\n", v.FileCount, fmtBytes(v.TotalSize))
			fmt.Fprintf(out, "created:  %s", fmtTimeLong(v.CreationTime))
			if v.CreatedBy != "" {
				fmt.Fprintf(out, " by %s", v.CreatedBy)
			}
			fmt.Fprintln(out)
			if v.Message != "" {
				fmt.Fprintf(out, "message:  %s\n", v.Message)
			}
			if files {
				fmt.Fprintln(out)
				w := newTable(out)
				tableRow(w, "PATH", "SIZE", "DIGEST")
				for _, f := range v.Files {
					tableRow(w, f.Path, fmtBytes(f.Size), dataDigest(f.Digest))
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			paths := make([]string, 0, len(v.Profiles))
			for p := range v.Profiles {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				if err := printProfile(out, p, v.Profiles[p]); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version with its manifest and profiles as JSON")
	cmd.Flags().BoolVar(&files, "files", false, "list the files")
	return cmd
}

func printProfile(out io.Writer, path string, p *client.TableProfile) error {
	fmt.Fprintf(out, "\n%s (%s, %d rows, %d columns)\n", path, p.Format, p.Rows, len(p.Columns))
	w := newTable(out)
	tableRow(w, "COLUMN", "TYPE", "MISSING", "MIN", "MAX", "MEAN", "STD", "P50", "DISTINCT", "TOP")
	for _, c := range p.Columns {
		lo, hi := optNum(c.Min), optNum(c.Max)
		if c.MinText != "" {
			lo, hi = truncate(c.MinText, 24), truncate(c.MaxText, 24)
		}
		p50 := "-"
		if q, ok := c.Quantiles["p50"]; ok {
			p50 = fmtMetric(q)
		}
		distinct := strconv.FormatInt(c.Distinct, 10)
		if !c.DistinctExact {
			distinct = "~" + distinct
		}
		var top []string
		for i, t := range c.Top {
			if i == 3 {
				break
			}
			top = append(top, fmt.Sprintf("%s (%d)", truncate(t.Value, 16), t.Count))
		}
		tableRow(w, c.Name, c.Type, fmt.Sprintf("%.1f%%", 100*c.MissingRate), lo, hi, optNum(c.Mean), optNum(c.Std), p50, distinct, strings.Join(top, ", "))
	}
	return w.Flush()
}

func optNum(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmtMetric(*f)
}

func dataDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func newDataGetCmd() *cobra.Command {
	var (
		force    bool
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "get NAME[@vN] DEST",
		Short: "Download a dataset version into a directory",
		Long: `Download the files of a dataset version into directory DEST, at their
paths in the version. Every file is verified against its SHA-256 before it
is put in place. Files already in DEST with the right content are kept;
a file with other content is an error unless --force is given.`,
		Example: `  slipway data get churn@v2 ./data/churn`,
		Args:    cobra.ExactArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			name, n, err := parseDataRef(args[0])
			if err != nil {
				return err
			}
			dest := args[1]
			v, err := c.GetDataVersion(ctx, name, n, true)
			if err != nil {
				return err
			}
			// Look at every destination first, so that a conflict is found
			// before anything is written.
			var todo []client.DataFile
			kept := 0
			for _, f := range v.Files {
				p := filepath.Join(dest, filepath.FromSlash(f.Path))
				fi, err := os.Stat(p)
				switch {
				case errors.Is(err, fs.ErrNotExist):
					todo = append(todo, f)
					continue
				case err != nil:
					return errs.Invalid("%v", err)
				case fi.IsDir():
					return errs.New(errs.FailedPrecondition, "%s is a directory; the version has a file there", p)
				}
				if fi.Size() == f.Size {
					if d, err := local.HashFile(p); err == nil && d == f.Digest {
						kept++
						continue
					}
				}
				if !force {
					return errs.New(errs.FailedPrecondition, "%s exists with other content; pass --force to replace it", p)
				}
				todo = append(todo, f)
			}
			if err := download(ctx, c, dest, todo, parallel); err != nil {
				return err
			}
			var bytes int64
			for _, f := range todo {
				bytes += f.Size
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@v%d -> %s: %d files written (%s), %d already present\n",
				v.Name, v.Version, dest, len(todo), fmtBytes(bytes), kept)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace files in DEST that have other content")
	cmd.Flags().IntVar(&parallel, "parallel", 8, "concurrent downloads")
	return cmd
}

// download fetches files into dest, each to a temporary file that is
// renamed into place only once its digest checks out.
func download(ctx context.Context, c *client.Client, dest string, files []client.DataFile, parallel int) error {
	if parallel < 1 {
		parallel = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan client.DataFile)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range ch {
				if err := fetch(ctx, c, dest, f); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for _, f := range files {
		select {
		case ch <- f:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	return firstErr
}

func fetch(ctx context.Context, c *client.Client, dest string, f client.DataFile) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	p := filepath.Join(dest, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return errs.Invalid("%v", err)
	}
	body, err := c.DownloadObject(ctx, f.Digest)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), ".slipway-get-*")
	if err != nil {
		return errs.Invalid("%v", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s: %w", f.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.Digest {
		return errs.New(errs.Internal, "%s: the server sent content with SHA-256 %s (%d bytes), not %s (%d bytes); the stored object is damaged",
			f.Path, got, n, f.Digest, f.Size)
	}
	return os.Rename(tmp.Name(), p)
}

func newDataDiffCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff NAME@vA NAME@vB",
		Short: "Show files, schema and profile changes between two versions",
		Example: `  slipway data diff churn@v1 churn@v2
  slipway data diff churn@v1 churn@latest --json`,
		Args: cobra.ExactArgs(2),
		RunE: remote(func(ctx context.Context, cmd *cobra.Command, args []string, c *client.Client) error {
			a, from, err := parseDataRef(args[0])
			if err != nil {
				return err
			}
			b, to, err := parseDataRef(args[1])
			if err != nil {
				return err
			}
			if a != b {
				return errs.Invalid("diff compares two versions of one dataset; got %q and %q", a, b)
			}
			d, err := c.DiffDataVersions(ctx, a, from, to)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, d)
			}
			printDiff(out, d)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDiff(out io.Writer, d *client.DataDiff) {
	fmt.Fprintf(out, "%s@v%d -> %s@v%d: %d added, %d removed, %d changed, %d unchanged files (size %+d bytes)\n",
		d.Name, d.From.Version, d.Name, d.To.Version, len(d.Added), len(d.Removed), len(d.Changed), d.Unchanged, d.SizeChange)
	for _, f := range d.Added {
		fmt.Fprintf(out, "  + %s (%s)\n", f.Path, fmtBytes(f.Size))
	}
	for _, f := range d.Removed {
		fmt.Fprintf(out, "  - %s (%s)\n", f.Path, fmtBytes(f.Size))
	}
	for _, f := range d.Changed {
		fmt.Fprintf(out, "  ~ %s (%s -> %s)\n", f.Path, fmtBytes(f.FromSize), fmtBytes(f.ToSize))
	}
	for _, t := range d.Tables {
		fmt.Fprintf(out, "\n%s: rows %d -> %d\n", t.Path, t.FromRows, t.ToRows)
		for _, c := range t.AddedColumns {
			fmt.Fprintf(out, "  + column %s\n", c)
		}
		for _, c := range t.RemovedColumns {
			fmt.Fprintf(out, "  - column %s\n", c)
		}
		for _, c := range t.TypeChanges {
			fmt.Fprintf(out, "  ~ column %s: type %s -> %s\n", c.Column, c.From, c.To)
		}
		if len(t.Shifts) == 0 {
			continue
		}
		w := newTable(out)
		tableRow(w, "  COLUMN", "MEAN", "SHIFT (STD)", "STD", "MISSING", "P50", "DISTINCT", "TOP")
		for _, s := range t.Shifts {
			shift := "-"
			if s.MeanShift != nil {
				shift = fmt.Sprintf("%+.3f", *s.MeanShift)
			}
			p50 := "-"
			if q, ok := s.QuantileChanges["p50"]; ok {
				p50 = fmt.Sprintf("%+g", q)
			}
			tableRow(w, "  "+s.Column, arrow(s.FromMean, s.ToMean), shift, arrow(s.FromStd, s.ToStd),
				fmt.Sprintf("%.1f%% -> %.1f%%", 100*s.FromMissingRate, 100*s.ToMissingRate), p50,
				fmt.Sprintf("%d -> %d", s.FromDistinct, s.ToDistinct), topDelta(s.TopAdded, s.TopRemoved))
		}
		w.Flush()
	}
}

func arrow(a, b *float64) string {
	if a == nil && b == nil {
		return "-"
	}
	return optNum(a) + " -> " + optNum(b)
}

func topDelta(added, removed []string) string {
	var parts []string
	for _, v := range added {
		parts = append(parts, "+"+truncate(v, 16))
	}
	for _, v := range removed {
		parts = append(parts, "-"+truncate(v, 16))
	}
	return strings.Join(parts, " ")
}
