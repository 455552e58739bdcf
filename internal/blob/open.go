package blob

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/s3blob"

	"github.com/slipwayml/slipway/internal/errs"
)

// Options configures an S3 store; a local store takes none.
type Options struct {
	// Endpoint is the URL of an S3-compatible server such as MinIO, e.g.
	// "http://127.0.0.1:9000". Empty means AWS S3. Setting it also selects
	// path-style addressing (bucket in the path, not the host name), which
	// self-hosted servers expect.
	Endpoint string
	// Region defaults to AWS_REGION from the environment, then us-east-1.
	Region string
	// CreateBucket creates the bucket if it does not exist. Off by default:
	// production buckets are usually created, with their policies, by an
	// operator, and a typo should fail loudly rather than make a new bucket.
	CreateBucket bool
}

// defaultRegion is the region S3-compatible servers assume when none is set.
const defaultRegion = "us-east-1"

// Open opens the store at location:
//
//   - a folder path ("./artifacts", "/var/lib/slipway/artifacts") or
//     "file:///abs/path": a local folder, created if missing;
//   - "s3://bucket" or "s3://bucket/prefix": an S3 bucket, with everything
//     kept under prefix. Credentials come from the standard AWS chain
//     (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared config files,
//     instance roles).
//
// An S3 store checks at once that its bucket is reachable, so a bad
// configuration fails at startup rather than at the first upload.
func Open(ctx context.Context, location string, opts Options) (*Store, error) {
	switch {
	case location == "":
		return nil, errs.Invalid("artifact store location is required")
	case hasPrefixFold(location, "s3://"):
		return openS3(ctx, location, opts)
	}
	if opts.Endpoint != "" || opts.CreateBucket {
		return nil, errs.Invalid("artifact store %q: endpoint and create-bucket options apply only to s3:// locations", location)
	}
	dir := location
	if hasPrefixFold(location, "file:") {
		var err error
		if dir, err = fileURLPath(location); err != nil {
			return nil, err
		}
	} else if s, ok := schemePrefix(location); ok && len(s) > 1 {
		return nil, errs.Invalid("unsupported artifact store location %q: use a folder path, file:///path or s3://bucket/prefix", location)
	}
	return openLocal(location, dir)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// fileURLPath returns the folder a file: URL names.
func fileURLPath(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil {
		return "", errs.Invalid("invalid artifact store location %q: %v", location, err)
	}
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") || u.RawQuery != "" || u.Fragment != "" {
		return "", errs.Invalid("invalid artifact store location %q: must be file:///absolute/path", location)
	}
	p := u.Path
	if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' && p[2] == ':' {
		p = p[1:] // file:///C:/data names C:/data.
	}
	p = filepath.FromSlash(p)
	if !filepath.IsAbs(p) {
		return "", errs.Invalid("invalid artifact store location %q: must be file:///absolute/path", location)
	}
	return p, nil
}

func openLocal(location, dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errs.Wrap(err, "resolving artifact folder")
	}
	if err := os.MkdirAll(abs, 0o777); err != nil {
		return nil, errs.Wrap(err, "creating artifact folder "+abs)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		// No .attrs sidecar files: the folder holds exactly the user's files,
		// so it can be browsed, backed up or served by other tools as is.
		Metadata:  fileblob.MetadataDontWrite,
		NoTempDir: !canRenameFromTempDir(abs),
	})
	if err != nil {
		return nil, errs.Wrap(err, "opening artifact folder "+abs)
	}
	return &Store{bucket: b, localDir: abs, location: location}, nil
}

// canRenameFromTempDir reports whether a file written in os.TempDir can be
// renamed into dir. fileblob writes there and renames into place so that a
// crash never leaves partial files among the artifacts; when dir is on
// another file system (a container volume, say) the rename fails, and temp
// files have to be written next to their targets instead.
func canRenameFromTempDir(dir string) bool {
	f, err := os.CreateTemp("", ".slipway-probe-*")
	if err != nil {
		return false
	}
	src := f.Name()
	_ = f.Close()
	defer os.Remove(src)
	// The probe lands in the reserved folder so that a listing never sees it.
	reserved := filepath.Join(dir, UploadsDir)
	if err := os.MkdirAll(reserved, 0o777); err != nil {
		return false
	}
	defer os.Remove(reserved) // only if empty: uploads may be in flight.
	dst := filepath.Join(reserved, filepath.Base(src))
	if err := os.Rename(src, dst); err != nil {
		return false
	}
	_ = os.Remove(dst)
	return true
}

// bucketName follows S3's naming rules, checked here so that a typo gets a
// clear message instead of an opaque HTTP error.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func openS3(ctx context.Context, location string, opts Options) (*Store, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, errs.Invalid("invalid artifact store location %q: %v", location, err)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errs.Invalid("invalid artifact store location %q: must be s3://bucket/prefix (set the endpoint and credentials separately)", location)
	}
	bucket := u.Host
	if !bucketName.MatchString(bucket) {
		return nil, errs.Invalid("invalid artifact store location %q: bucket name must be 3-63 lowercase letters, digits, dots or hyphens", location)
	}
	prefix, err := CleanKey(strings.Trim(u.Path, "/"))
	if err != nil {
		return nil, errs.Invalid("invalid artifact store location %q: bad prefix: %s", location, errs.Message(err))
	}
	client, region, err := newS3Client(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := ensureBucket(ctx, client, bucket, region, opts.CreateBucket); err != nil {
		return nil, err
	}
	b, err := s3blob.OpenBucket(ctx, client, bucket, &s3blob.Options{
		RequestChecksumCalculation: client.Options().RequestChecksumCalculation,
	})
	if err != nil {
		return nil, errs.Wrap(err, "opening bucket "+bucket)
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return &Store{bucket: b, location: location, s3Bucket: bucket, s3Prefix: prefix}, nil
}

// newS3Client builds an S3 client from the standard AWS configuration chain
// and opts, and returns it with the region it uses.
func newS3Client(ctx context.Context, opts Options) (*s3.Client, string, error) {
	if opts.Endpoint != "" {
		e, err := url.Parse(opts.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, "", errs.Invalid("invalid S3 endpoint %q: must be an http:// or https:// URL", opts.Endpoint)
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", errs.Wrap(err, "loading AWS configuration")
	}
	region := opts.Region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		region = defaultRegion
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.Region = region
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true
			// The SDK's default CRC checksums on every request are rejected
			// by several S3-compatible servers
			// (https://github.com/aws/aws-sdk-go-v2/discussions/2960).
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return client, region, nil
}

// ensureBucket checks that bucket exists and is reachable, creating it if
// create is set.
func ensureBucket(ctx context.Context, client *s3.Client, bucket, region string, create bool) error {
	_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return errs.Wrap(err, "cannot access bucket "+bucket)
	}
	if !create {
		return errs.New(errs.FailedPrecondition, "bucket %q does not exist; create it first", bucket)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != defaultRegion {
		// us-east-1 is the one region S3 refuses as an explicit constraint.
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{
			LocationConstraint: s3types.BucketLocationConstraint(region),
		}
	}
	_, err = client.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return errs.Wrap(err, "creating bucket "+bucket)
	}
	return nil
}

// isNotFound reports a 404 from S3. HeadBucket has no body, so the status
// code is all there is to go on.
func isNotFound(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 404 {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchBucket")
}
