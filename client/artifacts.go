package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ArtifactListing is the content of one artifact directory. RootURI is the
// run's artifact URI; file paths are relative to it.
type ArtifactListing struct {
	RootURI string     `json:"root_uri,omitempty"`
	Files   []FileInfo `json:"files"`
}

// ListRunArtifacts lists the directory path (empty for the root) of a
// run's artifacts. It is not recursive: directories appear as entries with
// IsDir set.
func (c *Client) ListRunArtifacts(ctx context.Context, runID, path string) (*ArtifactListing, error) {
	q := url.Values{"run_id": {runID}}
	if path != "" {
		q.Set("path", path)
	}
	var out ArtifactListing
	if err := c.call(ctx, "GET", "artifacts/list", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadArtifact stores body as the artifact path of a run, streaming it
// through the server's artifact proxy; an existing file is replaced. It
// looks up the run's artifact URI first: callers that hold it already can
// use UploadArtifactTo and save the round trip.
func (c *Client) UploadArtifact(ctx context.Context, runID, path string, body io.Reader) error {
	run, err := c.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	return c.UploadArtifactTo(ctx, run.Info.ArtifactURI, path, body)
}

// UploadArtifactTo stores body at path below artifactURI, an
// "mlflow-artifacts:/..." location such as RunInfo.ArtifactURI. body is
// streamed, never held in memory; when it is a *bytes.Reader,
// *bytes.Buffer or *strings.Reader its length is sent up front.
func (c *Client) UploadArtifactTo(ctx context.Context, artifactURI, path string, body io.Reader) error {
	if path == "" {
		return fmt.Errorf("upload to %s: an artifact path is required", artifactURI)
	}
	p, err := proxyPath(artifactURI, path)
	if err != nil {
		return err
	}
	if body == nil {
		body = strings.NewReader("")
	}
	resp, err := c.send(ctx, "PUT", p, nil, body, "application/octet-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// DownloadArtifact opens the artifact path of a run for reading. The
// caller must close the reader; the body streams from the server as it is
// read.
func (c *Client) DownloadArtifact(ctx context.Context, runID, path string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", "/get-artifact", url.Values{"run_id": {runID}, "path": {path}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DownloadArtifactFrom opens the file at path below artifactURI (an
// "mlflow-artifacts:/..." location) for reading. The caller must close it.
func (c *Client) DownloadArtifactFrom(ctx context.Context, artifactURI, path string) (io.ReadCloser, error) {
	p, err := proxyPath(artifactURI, path)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, "GET", p, nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// proxyPath maps an artifact URI and a path below it to the escaped URL
// path of the artifact proxy. Only mlflow-artifacts URIs go through the
// proxy; others (s3://, file:) name storage the client would have to reach
// itself, which this SDK does not do.
func proxyPath(artifactURI, path string) (string, error) {
	const scheme = "mlflow-artifacts:"
	if len(artifactURI) < len(scheme) || !strings.EqualFold(artifactURI[:len(scheme)], scheme) {
		return "", fmt.Errorf("artifact URI %q is not served by the artifact proxy (want %s/...)", artifactURI, scheme)
	}
	rest := artifactURI[len(scheme):]
	if host, ok := strings.CutPrefix(rest, "//"); ok {
		// mlflow-artifacts://host:port/path names the server too; the path is
		// what matters to the server this client talks to.
		_, after, _ := strings.Cut(host, "/")
		rest = after
	}
	// The server decides what else is a safe artifact path. Dot segments
	// must be caught here: HTTP routers and proxies clean them out of the
	// URL (Go's ServeMux answers 307 with the cleaned path, which the
	// transport follows), so the upload would land somewhere else instead
	// of being refused.
	key := strings.Trim(rest, "/")
	if path != "" {
		for _, s := range strings.Split(strings.TrimSuffix(path, "/"), "/") {
			if s == "" || s == "." || s == ".." {
				return "", fmt.Errorf("invalid artifact path %q: must be relative, without empty, \".\" or \"..\" segments", path)
			}
		}
		key += "/" + path
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return artifactPrefix + "/" + strings.Join(segs, "/"), nil
}

// ListArtifactsAt lists the directory dir below artifactURI (an
// "mlflow-artifacts:/..." location) through the artifact proxy. Paths in
// the listing are names within dir; it is not recursive.
func (c *Client) ListArtifactsAt(ctx context.Context, artifactURI, dir string) ([]FileInfo, error) {
	p, err := proxyPath(artifactURI, dir)
	if err != nil {
		return nil, err
	}
	key := strings.TrimPrefix(p, artifactPrefix+"/")
	if unescaped, err := url.PathUnescape(key); err == nil {
		key = unescaped
	}
	resp, err := c.send(ctx, "GET", artifactPrefix, url.Values{"path": {key}}, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the listing of %s: %w", key, err)
	}
	return out.Files, nil
}

// DownloadTree copies every file below artifactURI into the local folder
// dir, keeping the tree's layout, and returns the files' paths relative
// to dir. The server verifies registered model versions as it sends them.
func (c *Client) DownloadTree(ctx context.Context, artifactURI, dir string) ([]string, error) {
	var files []string
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := c.ListArtifactsAt(ctx, artifactURI, rel)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Path
			if i := strings.LastIndex(name, "/"); i >= 0 {
				name = name[i+1:]
			}
			if name == "" || name == "." || name == ".." {
				return fmt.Errorf("listing of %s/%s names an invalid entry %q", artifactURI, rel, e.Path)
			}
			child := name
			if rel != "" {
				child = rel + "/" + name
			}
			if e.IsDir {
				if err := walk(child); err != nil {
					return err
				}
				continue
			}
			if err := c.downloadFile(ctx, artifactURI, child, filepath.Join(dir, filepath.FromSlash(child))); err != nil {
				return err
			}
			files = append(files, child)
		}
		return nil
	}
	return files, walk("")
}

func (c *Client) downloadFile(ctx context.Context, artifactURI, rel, dst string) error {
	body, err := c.DownloadArtifactFrom(ctx, artifactURI, rel)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("downloading %s: %w", rel, err)
	}
	return f.Close()
}
