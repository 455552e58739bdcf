// Package registry is Slipway's model registry: registered models, their
// numbered versions, tags, aliases and legacy stages, with the behaviour of
// MLflow's registry (mlflow/protos/model_registry.proto and MLflow's SQL
// store) so that MLflow clients see what they expect. The transport lives in
// internal/api/mlflow.
//
// Unlike MLflow, a model version is immutable: at registration its files
// are copied from the source (which must be a location this server owns)
// into registry storage, and a manifest of their sizes and SHA-256 digests
// is kept in the database and beside the files as MANIFEST.json. Reads
// through the registry check files against the manifest, and Verify reports
// any change. Deleting the source run or its artifacts does not affect a
// registered version.
package registry

// Stages of MLflow's legacy stage workflow, spelled as MLflow spells them.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
	// stageDeleted marks a deleted version's row, which is kept so that its
	// number is never issued again (MLflow's STAGE_DELETED_INTERNAL).
	stageDeleted = "Deleted_Internal"
)

// Version statuses (MLflow's ModelVersionStatus).
const (
	StatusPending = "PENDING_REGISTRATION"
	StatusFailed  = "FAILED_REGISTRATION"
	StatusReady   = "READY"
)

// Tag is a key and value on a registered model or a model version.
type Tag struct {
	Key   string
	Value string
}

// Alias names a version of a registered model.
type Alias struct {
	Alias   string
	Version int64
}

// RegisteredModel is MLflow's RegisteredModel. Description is nil when it
// was never set, which MLflow's wire form leaves out.
type RegisteredModel struct {
	Name            string
	CreationTime    int64
	LastUpdatedTime int64
	Description     *string
	// LatestVersions holds the newest version in each stage.
	LatestVersions []ModelVersion
	Tags           []Tag
	Aliases        []Alias
}

// ModelVersion is MLflow's ModelVersion plus what immutability adds: where
// the files are kept and the digest of their manifest.
type ModelVersion struct {
	Name            string
	Version         int64
	CreationTime    int64
	LastUpdatedTime int64
	Description     *string
	UserID          *string
	CurrentStage    string
	Source          string
	RunID           *string
	RunLink         *string
	Status          string
	StatusMessage   string
	Tags            []Tag
	Aliases         []string
	// StorageLocation is where the version's files are served from, an
	// mlflow-artifacts:/registry/... URI; get-download-uri returns it.
	StorageLocation string
	// Digest is the SHA-256 of the version's manifest, a fingerprint of
	// all its files.
	Digest string

	modelID int64
}

// Manifest lists a version's files, relative to its storage location's
// files directory, in path order.
type Manifest struct {
	Files []ManifestFile `json:"files"`
}

// ManifestFile is one file of a version.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Report is the outcome of Verify.
type Report struct {
	Name    string
	Version int64
	Digest  string
	// Files is the number of files the manifest lists.
	Files int
	// Changed lists files whose size or digest differs from the manifest,
	// Missing those the manifest lists that are gone, Extra those present
	// that it does not list.
	Changed []FileChange
	Missing []string
	Extra   []string
	// ManifestFileIntact is false when MANIFEST.json beside the files no
	// longer matches the manifest the database holds.
	ManifestFileIntact bool
}

// FileChange is a file that differs from its manifest entry.
type FileChange struct {
	Path       string
	WantSize   int64
	GotSize    int64
	WantSHA256 string
	GotSHA256  string
}

// OK reports whether every file matches the manifest.
func (r Report) OK() bool {
	return len(r.Changed) == 0 && len(r.Missing) == 0 && len(r.Extra) == 0 && r.ManifestFileIntact
}
