package client

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Data versions live on Slipway's native API (/api/v1), not MLflow's; these
// methods need a Slipway server. Errors from it come back as *APIError with
// Code set to the MLflow name of the same condition (RESOURCE_DOES_NOT_EXIST
// for not_found, ...), so IsNotFound and friends work for both APIs.

// DataFile is one file of a data version.
type DataFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"` // SHA-256, lowercase hex
	Size   int64  `json:"size"`
}

// VersionedDataset is a named series of data versions (not to be confused
// with Dataset, the MLflow record of data a run used).
type VersionedDataset struct {
	Name           string       `json:"name"`
	LatestVersion  int64        `json:"latest_version"`
	CreationTime   int64        `json:"creation_time"`
	LastUpdateTime int64        `json:"last_update_time"`
	Latest         *DataVersion `json:"latest,omitempty"`
}

// DataVersion is one immutable version of a dataset. Files and Profiles
// are present when the version was fetched with details.
type DataVersion struct {
	Name         string `json:"name"`
	Version      int64  `json:"version"`
	Digest       string `json:"digest"`
	FileCount    int64  `json:"file_count"`
	TotalSize    int64  `json:"total_size"`
	Message      string `json:"message,omitempty"`
	CreatedBy    string `json:"created_by,omitempty"`
	CreationTime int64  `json:"creation_time"`
	// RunID is the run that produced the version, if one was named.
	RunID    string                   `json:"run_id,omitempty"`
	Files    []DataFile               `json:"files,omitempty"`
	Profiles map[string]*TableProfile `json:"profiles,omitempty"`
}

// TableProfile is the schema and statistics of one CSV or Parquet file.
type TableProfile struct {
	Format  string          `json:"format"`
	Rows    int64           `json:"rows"`
	Columns []ColumnProfile `json:"columns"`
}

// ColumnProfile is one column's type and statistics; see docs/data.md for
// which are exact and which estimated.
type ColumnProfile struct {
	Name           string             `json:"name"`
	Type           string             `json:"type"` // integer, float, boolean, string, datetime, empty
	Count          int64              `json:"count"`
	Missing        int64              `json:"missing"`
	MissingRate    float64            `json:"missing_rate"`
	Min            *float64           `json:"min,omitempty"`
	Max            *float64           `json:"max,omitempty"`
	Mean           *float64           `json:"mean,omitempty"`
	Std            *float64           `json:"std,omitempty"`
	Quantiles      map[string]float64 `json:"quantiles,omitempty"`
	QuantilesExact bool               `json:"quantiles_exact,omitempty"`
	MinText        string             `json:"min_text,omitempty"`
	MaxText        string             `json:"max_text,omitempty"`
	Distinct       int64              `json:"distinct"`
	DistinctExact  bool               `json:"distinct_exact"`
	Top            []Category         `json:"top,omitempty"`
	TopExact       bool               `json:"top_exact,omitempty"`
}

// Category is a value and how many rows hold it.
type Category struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// DataCommit is the request that creates a data version.
type DataCommit struct {
	Files    []DataFile               `json:"files"`
	Profiles map[string]*TableProfile `json:"profiles,omitempty"`
	Message  string                   `json:"message,omitempty"`
	// RunID names the run that produced the data, for lineage.
	RunID string `json:"run_id,omitempty"`
}

// ObjectRef names a content-addressed object.
type ObjectRef struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// DataDiff is what changed between two versions of a dataset.
type DataDiff struct {
	Name       string           `json:"name"`
	From       DataVersion      `json:"from"`
	To         DataVersion      `json:"to"`
	Added      []DataFile       `json:"added"`
	Removed    []DataFile       `json:"removed"`
	Changed    []DataFileChange `json:"changed"`
	Unchanged  int              `json:"unchanged"`
	SizeChange int64            `json:"size_change"`
	Tables     []TableDiff      `json:"tables"`
}

// DataFileChange is a path whose content differs.
type DataFileChange struct {
	Path       string `json:"path"`
	FromDigest string `json:"from_digest"`
	ToDigest   string `json:"to_digest"`
	FromSize   int64  `json:"from_size"`
	ToSize     int64  `json:"to_size"`
}

// TableDiff compares the profiles of one tabular file.
type TableDiff struct {
	Path           string `json:"path"`
	FromRows       int64  `json:"from_rows"`
	ToRows         int64  `json:"to_rows"`
	AddedColumns   []string
	RemovedColumns []string
	TypeChanges    []struct {
		Column string `json:"column"`
		From   string `json:"from"`
		To     string `json:"to"`
	} `json:"type_changes"`
	Shifts []ColumnShift `json:"shifts"`
}

// ColumnShift compares one column's statistics; MeanShift is the change
// in mean in units of the old standard deviation.
type ColumnShift struct {
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
	TopAdded        []string           `json:"top_added,omitempty"`
	TopRemoved      []string           `json:"top_removed,omitempty"`
}

// UnmarshalJSON reads the snake_case column lists.
func (t *TableDiff) UnmarshalJSON(b []byte) error {
	type plain TableDiff
	var aux struct {
		plain
		AddedColumns   []string `json:"added_columns"`
		RemovedColumns []string `json:"removed_columns"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*t = TableDiff(aux.plain)
	t.AddedColumns, t.RemovedColumns = aux.AddedColumns, aux.RemovedColumns
	return nil
}

const v1Prefix = "/api/v1/"

// v1 calls the native API and decodes the JSON response into out.
func (c *Client) v1(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encoding %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.sendV1(ctx, method, path, query, body, "application/json")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return 0, fmt.Errorf("reading %s response from %s: %w", path, c.base, err)
	}
	return resp.StatusCode, nil
}

// sendV1 is send for the native API, whose error envelope differs.
func (c *Client) sendV1(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	return c.roundTrip(ctx, method, v1Prefix+path, query, body, contentType, readV1Error)
}

// v1Codes maps native error codes to the MLflow names APIError uses.
var v1Codes = map[string]string{
	"invalid_argument":    CodeInvalidParameterValue,
	"not_found":           CodeResourceDoesNotExist,
	"already_exists":      CodeResourceAlreadyExists,
	"failed_precondition": CodeInvalidState,
	"permission_denied":   CodePermissionDenied,
	"unauthenticated":     CodeUnauthenticated,
	"resource_exhausted":  CodeResourceExhausted,
	"internal":            CodeInternalError,
}

func readV1Error(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var native struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &native) == nil && native.Error != nil {
		return &APIError{StatusCode: resp.StatusCode, Code: v1Codes[native.Error.Code], Message: native.Error.Message}
	}
	// Authentication failures answer in MLflow's shape on every route.
	return readError(&http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(bytes.NewReader(raw))})
}

// ListDatasets returns every dataset, by name, each with a summary of its
// latest version.
func (c *Client) ListDatasets(ctx context.Context) ([]VersionedDataset, error) {
	var all []VersionedDataset
	token := ""
	for {
		var page struct {
			Datasets []VersionedDataset `json:"datasets"`
			Next     string             `json:"next_page_token"`
		}
		q := url.Values{}
		if token != "" {
			q.Set("page_token", token)
		}
		if _, err := c.v1(ctx, "GET", "datasets", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Datasets...)
		if page.Next == "" {
			return all, nil
		}
		if page.Next == token {
			return nil, errRepeatedToken
		}
		token = page.Next
	}
}

// GetDataset returns one dataset.
func (c *Client) GetDataset(ctx context.Context, name string) (*VersionedDataset, error) {
	var d VersionedDataset
	if _, err := c.v1(ctx, "GET", "datasets/"+url.PathEscape(name), nil, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ListDataVersions returns a dataset's versions, newest first, without
// files or profiles.
func (c *Client) ListDataVersions(ctx context.Context, name string) ([]DataVersion, error) {
	var out struct {
		Versions []DataVersion `json:"versions"`
	}
	if _, err := c.v1(ctx, "GET", "datasets/"+url.PathEscape(name)+"/versions", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

// GetDataVersion returns version n of a dataset (0: the latest); with
// details, its files and profiles too.
func (c *Client) GetDataVersion(ctx context.Context, name string, n int64, details bool) (*DataVersion, error) {
	var v DataVersion
	q := url.Values{"details": {strconv.FormatBool(details)}}
	if _, err := c.v1(ctx, "GET", "datasets/"+url.PathEscape(name)+"/versions/"+versionRef(n), q, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func versionRef(n int64) string {
	if n == 0 {
		return "latest"
	}
	return strconv.FormatInt(n, 10)
}

// DiffDataVersions compares version from with version to (0: latest).
func (c *Client) DiffDataVersions(ctx context.Context, name string, from, to int64) (*DataDiff, error) {
	var d DataDiff
	q := url.Values{"from": {versionRef(from)}, "to": {versionRef(to)}}
	if _, err := c.v1(ctx, "GET", "datasets/"+url.PathEscape(name)+"/diff", q, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// MissingObjects returns the digests among objs the server does not hold.
func (c *Client) MissingObjects(ctx context.Context, objs []ObjectRef) ([]string, error) {
	var out struct {
		Missing []string `json:"missing"`
	}
	if _, err := c.v1(ctx, "POST", "objects/missing", nil, map[string]any{"objects": objs}, &out); err != nil {
		return nil, err
	}
	return out.Missing, nil
}

// UploadObject sends size bytes from body as the object with digest. The
// server verifies the digest as the body streams in and stores nothing on
// mismatch. stored is false when the server already had the object.
func (c *Client) UploadObject(ctx context.Context, digest string, size int64, body io.Reader) (stored bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "PUT", c.base+v1Prefix+"objects/sha256/"+url.PathEscape(digest), body)
	if err != nil {
		return false, err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, readV1Error(resp)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusCreated, nil
}

// DownloadObject opens the object with digest. The caller closes it and
// should verify the digest of what it reads.
func (c *Client) DownloadObject(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, err := c.sendV1(ctx, "GET", "objects/sha256/"+url.PathEscape(digest), nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CommitDataVersion creates the next version of a dataset from a manifest
// whose objects are all on the server. created is false, and the version
// returned is the latest, when the content equals the latest version's.
func (c *Client) CommitDataVersion(ctx context.Context, name string, commit DataCommit) (*DataVersion, bool, error) {
	var out struct {
		Version DataVersion `json:"version"`
		Created bool        `json:"created"`
	}
	if _, err := c.v1(ctx, "POST", "datasets/"+url.PathEscape(name)+"/versions", nil, commit, &out); err != nil {
		return nil, false, err
	}
	return &out.Version, out.Created, nil
}

// PushStats says what a push sent.
type PushStats struct {
	Objects       int   // distinct objects in the version
	Uploaded      int   // objects the server did not have
	UploadedBytes int64 // their total size
}

// Objects up to batchObjectSize are uploaded in batches of at most
// batchObjects objects and batchBytes bytes, one request per batch: for a
// tree of many small files, a request per object cost more than the files.
const (
	batchObjectSize = 1 << 20
	batchObjects    = 1000
	batchBytes      = 16 << 20
)

// PushDataVersion uploads the objects of commit that the server lacks,
// reading each through open, then commits the version. Small objects go in
// batches, large ones alone; parallel uploads (8 if 0 or less) run at a
// time. Nothing is committed unless every upload succeeded.
func (c *Client) PushDataVersion(ctx context.Context, name string, commit DataCommit, parallel int,
	open func(DataFile) (io.ReadCloser, error)) (*DataVersion, bool, PushStats, error) {
	var st PushStats
	byDigest := map[string]DataFile{}
	refs := make([]ObjectRef, 0, len(commit.Files))
	for _, f := range commit.Files {
		if _, ok := byDigest[f.Digest]; !ok {
			byDigest[f.Digest] = f
			refs = append(refs, ObjectRef{Digest: f.Digest, Size: f.Size})
		}
	}
	st.Objects = len(refs)
	missing, err := c.MissingObjects(ctx, refs)
	if err != nil {
		return nil, false, st, err
	}
	var units [][]DataFile
	var batch []DataFile
	var batchSize int64
	for _, d := range missing {
		f := byDigest[d]
		if f.Size > batchObjectSize {
			units = append(units, []DataFile{f})
			continue
		}
		if len(batch) == batchObjects || batchSize+f.Size > batchBytes {
			units = append(units, batch)
			batch, batchSize = nil, 0
		}
		batch = append(batch, f)
		batchSize += f.Size
	}
	if len(batch) > 0 {
		units = append(units, batch)
	}
	if parallel <= 0 {
		parallel = 8
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	var sent atomic.Int64
	for _, u := range units {
		g.Go(func() error {
			if len(u) == 1 && u[0].Size > batchObjectSize {
				if err := c.uploadFile(gctx, u[0], open); err != nil {
					return err
				}
			} else if err := c.UploadObjects(gctx, u, open); err != nil {
				return err
			}
			for _, f := range u {
				sent.Add(f.Size)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, st, err
	}
	st.Uploaded, st.UploadedBytes = len(missing), sent.Load()
	v, created, err := c.CommitDataVersion(ctx, name, commit)
	return v, created, st, err
}

func (c *Client) uploadFile(ctx context.Context, f DataFile, open func(DataFile) (io.ReadCloser, error)) error {
	r, err := open(f)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := c.UploadObject(ctx, f.Digest, f.Size, r); err != nil {
		return fmt.Errorf("uploading %s: %w", f.Path, err)
	}
	return nil
}

// UploadObjects sends files, read through open, in one request as a tar
// stream whose entries are named by their digests. The server verifies
// each object as it would one sent alone. Each file may be at most 4 MiB
// and a batch at most 10,000 files.
func (c *Client) UploadObjects(ctx context.Context, files []DataFile, open func(DataFile) (io.ReadCloser, error)) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeObjectsTar(pw, files, open)) }()
	resp, err := c.sendV1(ctx, "POST", "objects/batch", nil, pr, "application/x-tar")
	// Unblock the writer if the request ended before reading it all.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func writeObjectsTar(w io.Writer, files []DataFile, open func(DataFile) (io.ReadCloser, error)) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		err := func() error {
			r, err := open(f)
			if err != nil {
				return err
			}
			defer r.Close()
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Digest, Size: f.Size, Mode: 0o644}); err != nil {
				return err
			}
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("reading %s: %w", f.Path, err)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// ParseDataRef splits "NAME", "NAME@latest", "NAME@v3" or "NAME@3" into a
// name and a version (0 for latest).
func ParseDataRef(ref string) (string, int64, error) {
	name, v, ok := strings.Cut(ref, "@")
	if name == "" {
		return "", 0, fmt.Errorf("%q: a dataset name is required before \"@\"", ref)
	}
	if !ok || v == "latest" {
		return name, 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(v, "v"), 10, 64)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%q: the version must be v1, v2, ... or latest", ref)
	}
	return name, n, nil
}
