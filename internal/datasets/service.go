package datasets

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayml/slipway/internal/audit"
	"github.com/slipwayml/slipway/internal/blob"
	"github.com/slipwayml/slipway/internal/datasets/profile"
	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/store"
)

// statParallelism bounds concurrent existence checks: enough to hide S3
// round trips, few enough not to trip its rate limits.
const statParallelism = 32

// Service is the data-versions domain over the metadata store and the
// blob store.
type Service struct {
	db    *store.DB
	blobs *blob.Store
	audit *audit.Log
	// Now is the clock; tests replace it.
	Now func() time.Time

	// verified holds digests this process stored (and hashed) since the
	// last commit cleared them, so a commit right after an upload need not
	// ask the blob store again. Bounded by maxVerified.
	mu       sync.Mutex
	verified map[string]int64
}

// maxVerified bounds the memory of recently verified uploads (about 100
// bytes each); past it the set starts over, which costs only blob-store
// existence checks at commit.
const maxVerified = 2_000_000

// New returns a Service.
func New(db *store.DB, blobs *blob.Store) *Service {
	return &Service{db: db, blobs: blobs, audit: audit.New(db), Now: time.Now, verified: map[string]int64{}}
}

// Missing returns the digests among objs that are not known to be stored
// with the given size, each once, in the order first listed. Known means
// in the catalog (objects of committed versions, verified on upload) or
// uploaded to this server since; asking costs one indexed query per 500
// objects, not one blob-store request per object.
func (s *Service) Missing(ctx context.Context, objs []ObjectRef) ([]string, error) {
	if len(objs) > MaxFiles {
		return nil, errs.Invalid("objects: %d objects; at most %d are allowed in one request", len(objs), MaxFiles)
	}
	uniq := make([]ObjectRef, 0, len(objs))
	seen := make(map[string]struct{}, len(objs))
	for i, o := range objs {
		if err := ValidateDigest(fmt.Sprintf("objects[%d].digest", i), o.Digest); err != nil {
			return nil, err
		}
		if o.Size < 0 {
			return nil, errs.Invalid("objects[%d].size %d: must not be negative", i, o.Size)
		}
		if _, ok := seen[o.Digest]; !ok {
			seen[o.Digest] = struct{}{}
			uniq = append(uniq, o)
		}
	}
	known, err := s.known(ctx, uniq)
	if err != nil {
		return nil, err
	}
	missing := []string{}
	for i, o := range uniq {
		if !known[i] {
			missing = append(missing, o.Digest)
		}
	}
	return missing, nil
}

// known reports, per object, whether the catalog or this process's recent
// uploads vouch for it with its size.
func (s *Service) known(ctx context.Context, objs []ObjectRef) ([]bool, error) {
	out := make([]bool, len(objs))
	sizes := make(map[string]int64, len(objs))
	for start := 0; start < len(objs); start += catalogChunk {
		chunk := objs[start:min(start+catalogChunk, len(objs))]
		args := make([]any, len(chunk))
		for i, o := range chunk {
			args[i] = o.Digest
		}
		rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT digest, size FROM data_objects WHERE digest IN (?`+
			strings.Repeat(", ?", len(chunk)-1)+`)`), args...)
		if err != nil {
			return nil, errs.Wrap(err, "reading the object catalog")
		}
		for rows.Next() {
			var d string
			var n int64
			if err := rows.Scan(&d, &n); err != nil {
				rows.Close()
				return nil, errs.Wrap(err, "reading the object catalog")
			}
			sizes[d] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, errs.Wrap(err, "reading the object catalog")
		}
	}
	s.mu.Lock()
	for i, o := range objs {
		n, ok := sizes[o.Digest]
		if !ok {
			n, ok = s.verified[o.Digest]
		}
		out[i] = ok && n == o.Size
	}
	s.mu.Unlock()
	return out, nil
}

// catalogChunk digests go in one IN (...) query; the statement text is
// then one of at most catalogChunk distinct strings, which db.Q caches.
const catalogChunk = 500

// present reports, per object, whether the store holds it with its size.
func (s *Service) present(ctx context.Context, objs []ObjectRef) ([]bool, error) {
	out := make([]bool, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statParallelism)
	for i, o := range objs {
		g.Go(func() error {
			e, err := s.blobs.Stat(gctx, ObjectKey(o.Digest))
			switch {
			case errs.Is(err, errs.NotFound):
				return nil
			case err != nil:
				return err
			}
			out[i] = !e.IsDir && e.Size == o.Size
			return nil
		})
	}
	return out, g.Wait()
}

// PutObject stores the content of r as the object with digest. The body
// is hashed as it streams into the store and the write is aborted, leaving
// nothing behind, if it does not hash to digest (or, when size >= 0, has
// another size). Storing an object again is harmless: the content is the
// same, so no existence check is paid for on this hot path (clients ask
// Missing first).
func (s *Service) PutObject(ctx context.Context, digest string, size int64, r io.Reader) (stored bool, err error) {
	if err := ValidateDigest("digest", digest); err != nil {
		return false, err
	}
	vr := &verifyingReader{r: r, h: sha256.New(), digest: digest, size: size}
	if _, err := s.blobs.Put(ctx, ObjectKey(digest), vr); err != nil {
		return false, err
	}
	s.mu.Lock()
	if len(s.verified) >= maxVerified {
		s.verified = map[string]int64{}
	}
	s.verified[digest] = vr.n
	s.mu.Unlock()
	return true, nil
}

// verifyingReader fails the final read, instead of returning io.EOF, when
// the content does not match what it claims to be; blob.Store.Put then
// aborts the write.
type verifyingReader struct {
	r      io.Reader
	h      hash.Hash
	digest string
	size   int64
	n      int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, errs.Invalid("body is longer than the %d bytes announced", v.size)
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			return n, errs.Invalid("body has %d bytes, not the %d announced", v.n, v.size)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			return n, errs.Invalid("body does not match digest %s (its SHA-256 is %s); nothing was stored", v.digest, got)
		}
	}
	return n, err
}

// copyBufs are the buffers WriteTo streams through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// WriteTo makes io.Copy stream through a pooled buffer. Without it the blob
// writer's ReadFrom allocates a multi-megabyte buffer per object, which
// dominated the cost of storing small files.
func (v *verifyingReader) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := v.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// OpenObject opens the object with digest for reading.
func (s *Service) OpenObject(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	if err := ValidateDigest("digest", digest); err != nil {
		return nil, 0, err
	}
	r, n, err := s.blobs.Get(ctx, ObjectKey(digest))
	if errs.Is(err, errs.NotFound) {
		return nil, 0, errs.NotFoundf("object %s not found", digest)
	}
	return r, n, err
}

// errUnchanged rolls back a commit whose content is the latest version's.
var errUnchanged = errors.New("unchanged")

// Commit creates the next version of dataset name (creating the dataset
// on its first version) from c. Every object the manifest names must
// already be in the store with the listed size, else nothing is written
// and the error is FailedPrecondition. If the content is that of the
// latest version, no version is created: Commit returns the latest one and
// created=false.
func (s *Service) Commit(ctx context.Context, name string, c Commit, createdBy string) (Version, bool, error) {
	if err := ValidateName(name); err != nil {
		return Version{}, false, err
	}
	if err := ValidateFiles(c.Files); err != nil {
		return Version{}, false, err
	}
	if len(c.Message) > MaxMessage {
		return Version{}, false, errs.Invalid("message: %d bytes; at most %d are allowed", len(c.Message), MaxMessage)
	}
	paths := make(map[string]bool, len(c.Files))
	for _, f := range c.Files {
		paths[f.Path] = true
	}
	profiles := make(map[string][]byte, len(c.Profiles))
	for p, prof := range c.Profiles {
		if !paths[p] {
			return Version{}, false, errs.Invalid("profiles[%q]: no file with that path in files", p)
		}
		if prof == nil {
			return Version{}, false, errs.Invalid("profiles[%q]: must be a profile object, not null", p)
		}
		if err := prof.Validate(); err != nil {
			return Version{}, false, errs.Invalid("profiles[%q]: %v", p, err)
		}
		b, err := json.Marshal(prof)
		if err != nil {
			return Version{}, false, errs.Invalid("profiles[%q]: %v", p, err)
		}
		profiles[p] = b
	}

	if err := ValidateRunID(c.RunID); err != nil {
		return Version{}, false, err
	}
	v := Version{Name: name, Digest: VersionDigest(c.Files), FileCount: int64(len(c.Files)),
		Message: c.Message, CreatedBy: createdBy, CreationTime: s.Now().UnixMilli(), RunID: c.RunID}
	for _, f := range c.Files {
		v.TotalSize += f.Size
	}
	// Cheap check first: committing the latest content again is common
	// (a re-run pipeline) and needs no object checks.
	if latest, err := s.Version(ctx, name, 0, false); err == nil && latest.Digest == v.Digest {
		return latest, false, nil
	}

	refs := make([]ObjectRef, 0, len(c.Files))
	seen := make(map[string]bool, len(c.Files))
	for _, f := range c.Files {
		if !seen[f.Digest] {
			seen[f.Digest] = true
			refs = append(refs, ObjectRef{f.Digest, f.Size})
		}
	}
	// Objects neither catalogued nor uploaded here recently (another
	// server took them, say) are looked up in the blob store itself.
	known, err := s.known(ctx, refs)
	if err != nil {
		return Version{}, false, err
	}
	var unknown []ObjectRef
	for i, ok := range known {
		if !ok {
			unknown = append(unknown, refs[i])
		}
	}
	present, err := s.present(ctx, unknown)
	if err != nil {
		return Version{}, false, err
	}
	var missing []string
	for i, ok := range present {
		if !ok {
			missing = append(missing, unknown[i].Digest)
		}
	}
	if len(missing) > 0 {
		return Version{}, false, errs.New(errs.FailedPrecondition,
			"%d of the %d objects this version names are not in the object store (first: %s); upload them to /api/v1/objects/sha256/{digest}, then commit again",
			len(missing), len(refs), missing[0])
	}

	files := slices.Clone(c.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var latest Version
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO data_datasets (name, latest_version, creation_time, last_update_time)
			VALUES (?, 0, ?, ?) ON CONFLICT DO NOTHING`), name, v.CreationTime, v.CreationTime); err != nil {
			return err
		}
		// The update takes the row lock on PostgreSQL, so concurrent commits
		// to one dataset number their versions one after the other.
		if err := tx.QueryRowContext(ctx, s.db.Q(`UPDATE data_datasets SET latest_version = latest_version + 1, last_update_time = ?
			WHERE name = ? RETURNING latest_version`), v.CreationTime, name).Scan(&v.Version); err != nil {
			return err
		}
		if v.Version > 1 {
			var err error
			if latest, err = scanVersion(tx.QueryRowContext(ctx, s.db.Q(versionSelect+` WHERE name = ? AND version = ?`), name, v.Version-1)); err != nil {
				return err
			}
			if latest.Digest == v.Digest {
				return errUnchanged
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO data_versions
			(name, version, digest, file_count, total_size, message, created_by, creation_time, run_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			name, v.Version, v.Digest, v.FileCount, v.TotalSize, v.Message, v.CreatedBy, v.CreationTime, v.RunID); err != nil {
			return err
		}
		if err := s.insertFiles(ctx, tx, name, v.Version, files); err != nil {
			return err
		}
		if err := s.catalog(ctx, tx, refs); err != nil {
			return err
		}
		for _, f := range files {
			if b, ok := profiles[f.Path]; ok {
				if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO data_profiles (name, version, path, profile) VALUES (?, ?, ?, ?)`),
					name, v.Version, f.Path, string(b)); err != nil {
					return err
				}
			}
		}
		after := map[string]any{"digest": v.Digest, "file_count": v.FileCount, "total_size": v.TotalSize, "message": v.Message}
		if v.RunID != "" {
			after["run_id"] = v.RunID
		}
		return s.audit.Record(ctx, tx, audit.Change{Time: v.CreationTime, Action: "dataset_version.create",
			Target: audit.DatasetVersion(name, v.Version), After: after})
	})
	if errors.Is(err, errUnchanged) {
		return latest, false, nil
	}
	if err != nil {
		return Version{}, false, errs.Wrap(err, "committing dataset version")
	}
	return v, true, nil
}

// filesPerInsert rows go in one multi-row INSERT: a round trip per file
// would dominate a 100,000-file commit on PostgreSQL. 500 rows of 5
// parameters stay well under both dialects' parameter limits.
const filesPerInsert = 500

var bulkInsertFiles = func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO data_files (name, version, path, digest, size) VALUES `)
	for i := range filesPerInsert {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	return b.String()
}()

func (s *Service) insertFiles(ctx context.Context, tx *sql.Tx, name string, version int64, files []File) error {
	args := make([]any, 0, 5*filesPerInsert)
	for len(files) >= filesPerInsert {
		args = args[:0]
		for _, f := range files[:filesPerInsert] {
			args = append(args, name, version, f.Path, f.Digest, f.Size)
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(bulkInsertFiles), args...); err != nil {
			return err
		}
		files = files[filesPerInsert:]
	}
	if len(files) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, s.db.Q(`INSERT INTO data_files (name, version, path, digest, size) VALUES (?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, f := range files {
		if _, err := stmt.ExecContext(ctx, name, version, f.Path, f.Digest, f.Size); err != nil {
			return err
		}
	}
	return nil
}

// catalog records objects a version names, all checked present.
func (s *Service) catalog(ctx context.Context, tx *sql.Tx, refs []ObjectRef) error {
	for start := 0; start < len(refs); start += catalogChunk {
		chunk := refs[start:min(start+catalogChunk, len(refs))]
		args := make([]any, 0, 2*len(chunk))
		for _, r := range chunk {
			args = append(args, r.Digest, r.Size)
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO data_objects (digest, size) VALUES (?, ?)`+
			strings.Repeat(", (?, ?)", len(chunk)-1)+` ON CONFLICT DO NOTHING`), args...); err != nil {
			return err
		}
	}
	return nil
}

const versionSelect = `SELECT name, version, digest, file_count, total_size, message, created_by, creation_time, run_id FROM data_versions`

type rowScanner interface{ Scan(...any) error }

func scanVersion(r rowScanner) (Version, error) {
	var v Version
	err := r.Scan(&v.Name, &v.Version, &v.Digest, &v.FileCount, &v.TotalSize, &v.Message, &v.CreatedBy, &v.CreationTime, &v.RunID)
	return v, err
}

// Get returns a dataset with a summary of its latest version.
func (s *Service) Get(ctx context.Context, name string) (Dataset, error) {
	if err := ValidateName(name); err != nil {
		return Dataset{}, err
	}
	var d Dataset
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT name, latest_version, creation_time, last_update_time
		FROM data_datasets WHERE name = ?`), name).Scan(&d.Name, &d.LatestVersion, &d.CreationTime, &d.LastUpdateTime)
	if errors.Is(err, sql.ErrNoRows) {
		return Dataset{}, errs.NotFoundf("dataset %q not found", name)
	}
	if err != nil {
		return Dataset{}, errs.Wrap(err, "reading dataset")
	}
	if d.LatestVersion > 0 {
		v, err := s.Version(ctx, name, d.LatestVersion, false)
		if err != nil {
			return Dataset{}, err
		}
		d.Latest = &v
	}
	return d, nil
}

// List returns up to limit datasets ordered by name, starting after the
// name after (keyset paging), and the token for the next page ("" at the
// end).
func (s *Service) List(ctx context.Context, after string, limit int) ([]Dataset, string, error) {
	if limit == 0 {
		limit = MaxListResults
	}
	if limit < 0 || limit > MaxListResults {
		return nil, "", errs.Invalid("max_results %d: must be from 1 to %d", limit, MaxListResults)
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT d.name, d.latest_version, d.creation_time, d.last_update_time,
			v.name, v.version, v.digest, v.file_count, v.total_size, v.message, v.created_by, v.creation_time
		FROM data_datasets d JOIN data_versions v ON v.name = d.name AND v.version = d.latest_version
		WHERE d.name > ? ORDER BY d.name LIMIT ?`), after, limit+1)
	if err != nil {
		return nil, "", errs.Wrap(err, "listing datasets")
	}
	defer rows.Close()
	out := []Dataset{}
	for rows.Next() {
		var d Dataset
		var v Version
		if err := rows.Scan(&d.Name, &d.LatestVersion, &d.CreationTime, &d.LastUpdateTime,
			&v.Name, &v.Version, &v.Digest, &v.FileCount, &v.TotalSize, &v.Message, &v.CreatedBy, &v.CreationTime); err != nil {
			return nil, "", errs.Wrap(err, "listing datasets")
		}
		d.Latest = &v
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", errs.Wrap(err, "listing datasets")
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Name
	}
	return out, next, nil
}

// Versions lists a dataset's versions, newest first, without files.
func (s *Service) Versions(ctx context.Context, name string) ([]Version, error) {
	if _, err := s.Get(ctx, name); err != nil {
		return nil, err
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(versionSelect+` WHERE name = ? ORDER BY version DESC`), name)
	if err != nil {
		return nil, errs.Wrap(err, "listing versions")
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, errs.Wrap(err, "listing versions")
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(err, "listing versions")
	}
	return out, nil
}

// Version returns version n of a dataset (0: the latest); with details, its
// files (sorted by path) and profiles too.
func (s *Service) Version(ctx context.Context, name string, n int64, details bool) (Version, error) {
	if err := ValidateName(name); err != nil {
		return Version{}, err
	}
	if n < 0 {
		return Version{}, errs.Invalid("version %d: must be 1 or more (0 for the latest)", n)
	}
	var v Version
	var err error
	if n == 0 {
		v, err = scanVersion(s.db.Read.QueryRowContext(ctx, s.db.Q(versionSelect+` WHERE name = ? ORDER BY version DESC LIMIT 1`), name))
	} else {
		v, err = scanVersion(s.db.Read.QueryRowContext(ctx, s.db.Q(versionSelect+` WHERE name = ? AND version = ?`), name, n))
	}
	if errors.Is(err, sql.ErrNoRows) {
		if n == 0 {
			return Version{}, errs.NotFoundf("dataset %q not found", name)
		}
		return Version{}, errs.NotFoundf("dataset version %s@v%d not found", name, n)
	}
	if err != nil {
		return Version{}, errs.Wrap(err, "reading dataset version")
	}
	if !details {
		return v, nil
	}
	if v.Files, err = s.files(ctx, name, v.Version); err != nil {
		return Version{}, err
	}
	if v.Profiles, err = s.profiles(ctx, name, v.Version); err != nil {
		return Version{}, err
	}
	return v, nil
}

func (s *Service) files(ctx context.Context, name string, version int64) ([]File, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT path, digest, size FROM data_files
		WHERE name = ? AND version = ? ORDER BY path`), name, version)
	if err != nil {
		return nil, errs.Wrap(err, "reading version files")
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.Path, &f.Digest, &f.Size); err != nil {
			return nil, errs.Wrap(err, "reading version files")
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.Wrap(err, "reading version files")
	}
	// Sorted in Go: the dialects' default collations order text differently.
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func (s *Service) profiles(ctx context.Context, name string, version int64) (map[string]*profile.Profile, error) {
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT path, profile FROM data_profiles WHERE name = ? AND version = ?`), name, version)
	if err != nil {
		return nil, errs.Wrap(err, "reading version profiles")
	}
	defer rows.Close()
	out := map[string]*profile.Profile{}
	for rows.Next() {
		var path, raw string
		if err := rows.Scan(&path, &raw); err != nil {
			return nil, errs.Wrap(err, "reading version profiles")
		}
		var p profile.Profile
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, errs.Wrap(err, "decoding profile of "+path)
		}
		out[path] = &p
	}
	return out, errs.Wrap(rows.Err(), "reading version profiles")
}

// File returns one file of a version by path.
func (s *Service) File(ctx context.Context, name string, version int64, path string) (File, error) {
	v, err := s.Version(ctx, name, version, false)
	if err != nil {
		return File{}, err
	}
	f := File{Path: path}
	err = s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT digest, size FROM data_files WHERE name = ? AND version = ? AND path = ?`),
		name, v.Version, path).Scan(&f.Digest, &f.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, errs.NotFoundf("file %q not found in %s@v%d", path, name, v.Version)
	}
	if err != nil {
		return File{}, errs.Wrap(err, "reading version file")
	}
	return f, nil
}

// ByDigest returns the versions, of any dataset, whose digest is digest;
// lineage links MLflow dataset inputs to data versions this way.
func (s *Service) ByDigest(ctx context.Context, digest string) ([]Version, error) {
	if err := ValidateDigest("digest", digest); err != nil {
		return nil, err
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(versionSelect+` WHERE digest = ? ORDER BY name, version`), digest)
	if err != nil {
		return nil, errs.Wrap(err, "finding versions by digest")
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, errs.Wrap(err, "finding versions by digest")
		}
		out = append(out, v)
	}
	return out, errs.Wrap(rows.Err(), "finding versions by digest")
}

// versionPair loads two versions with details concurrently, for Diff.
func (s *Service) versionPair(ctx context.Context, name string, from, to int64) (a, b Version, err error) {
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = s.Version(ctx, name, from, true) }()
	go func() { defer wg.Done(); b, errB = s.Version(ctx, name, to, true) }()
	wg.Wait()
	if errA != nil {
		return a, b, errA
	}
	return a, b, errB
}
