package blob

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayml/slipway/internal/errs"
)

type rootCase struct {
	location string
	key      string // the key when accepted
	refusal  string // part of the message when refused
}

func checkRootKey(t *testing.T, s *Store, cases []rootCase) {
	t.Helper()
	for _, c := range cases {
		key, err := s.RootKey(c.location)
		switch {
		case c.refusal == "" && (err != nil || key != c.key):
			t.Errorf("RootKey(%q) = %q, %v; want %q", c.location, key, err, c.key)
		case c.refusal != "" && (!errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), c.refusal)):
			t.Errorf("RootKey(%q) = %q, %v; want InvalidArgument containing %q", c.location, key, err, c.refusal)
		}
	}
}

func TestRootKeyLocal(t *testing.T) {
	// The store is opened at a symbolic link to the real folder, as when
	// the configured root is on a linked volume: both spellings of the
	// root are accepted. Beside the root, a folder whose name starts with
	// the root's and one outside it; inside, a link leading out.
	base := t.TempDir()
	root := filepath.Join(base, "artifacts")
	for _, d := range []string{root + "-evil/1", base + "/other", root + "/1/abc/artifacts/model"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(base+"/other/secret", []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base+"/other", root+"/1/escape"); err != nil {
		t.Fatal(err)
	}
	link := base + "/link"
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outside := "not inside the server's artifact root"
	checkRootKey(t, s, []rootCase{
		{location: root + "/1/abc/artifacts/model", key: "1/abc/artifacts/model"},
		{location: root + "/1/abc/artifacts/model/", key: "1/abc/artifacts/model"},
		{location: "file://" + root + "/1/abc/artifacts/model", key: "1/abc/artifacts/model"},
		{location: "FILE://localhost" + root + "/1/x", key: "1/x"},
		{location: "file:" + root + "/1/x", key: "1/x"},
		{location: "file://" + root + "/1/a%20b", key: "1/a b"},
		{location: link + "/1/x", key: "1/x"},
		{location: "file://" + link + "/1/x", key: "1/x"},
		{location: link + "/1/escape/secret", refusal: "symbolic link"},
		{location: link + "-evil/1", refusal: outside},
		{location: root + "/1/not-yet-there", key: "1/not-yet-there"},

		{location: root, refusal: "names the whole artifact root"},
		{location: root + "/", refusal: "names the whole artifact root"},
		{location: "file://" + root, refusal: "names the whole artifact root"},
		{location: root + "-evil/1", refusal: outside},
		{location: base + "/other/secret", refusal: outside},
		{location: "/etc/passwd", refusal: outside},
		{location: "//" + root + "/1/x", refusal: outside},
		{location: root + "/1/escape/secret", refusal: "symbolic link"},
		{location: root + "/1/escape", refusal: "symbolic link"},
		{location: root + "/1/../../other/secret", refusal: `".."`},
		{location: root + "/1/./x", refusal: `".."`},
		{location: root + "//1/x", refusal: "must be relative"},
		{location: root + "/1//x", refusal: "empty segments"},
		{location: root + "/1/%2e%2e/%2e%2e/other/secret", refusal: "percent-encoded"},
		{location: "file://" + root + "/1/%2e%2e/%2e%2e/other/secret", refusal: `".."`},
		{location: "file://" + root + "%2f..%2fother/secret", refusal: `".."`},
		{location: "file://" + root + "/1/%252e%252e/x", refusal: "percent-encoded"},
		{location: "file://" + root + "/1/%zz", refusal: "file:///absolute/path"},
		{location: "file://evil.example" + root + "/1/x", refusal: "file:///absolute/path"},
		{location: "file:relative/x", refusal: "file:///absolute/path"},
		{location: "file://" + root + "/1/x?/../../other", refusal: "file:///absolute/path"},
		{location: "file://" + root + "/1/x#/../../other", refusal: "file:///absolute/path"},
		{location: root + "/1/x?/../../other", refusal: `"?" or "#"`},
		{location: root + "/1/x;/../../other", refusal: `";"`},
		{location: root + `/1/..\..\other`, refusal: "backslashes"},
		{location: root + "/1/\u2025/other", refusal: "NFKC"},
		{location: root + "/1/\uff0e\uff0e/other", refusal: "NFKC"},
		{location: root + "/1/x\x00", refusal: "NUL"},
		{location: "s3://bucket/1/x", refusal: outside},
		{location: "relative/1/x", refusal: "not an absolute location"},
		{location: "mlflow-artifacts:/1/x", refusal: "not an absolute location"},
	})
}

func TestRootKeyS3(t *testing.T) {
	cases := func(bucket string) []rootCase {
		outside := "not inside the server's artifact root"
		return []rootCase{
			{location: "s3://" + bucket + "/root/sub/1/abc/artifacts/model", key: "1/abc/artifacts/model"},
			{location: "S3://" + bucket + "/root/sub/1/x/", key: "1/x"},

			{location: "s3://" + bucket + "/root/sub", refusal: "names the whole artifact root"},
			{location: "s3://" + bucket + "/root/sub/", refusal: "names the whole artifact root"},
			{location: "s3://" + bucket + "/root/sub-evil/1/x", refusal: outside},
			{location: "s3://" + bucket + "/root/1/x", refusal: outside},
			{location: "s3://" + bucket + "//root/sub/1/x", refusal: outside},
			{location: "s3://other-bucket/root/sub/1/x", refusal: outside},
			{location: "s3://" + bucket + ".evil/root/sub/1/x", refusal: outside},
			{location: "s3://" + strings.ToUpper(bucket) + "/root/sub/1/x", refusal: outside},
			{location: "s3://user@" + bucket + "/root/sub/1/x", refusal: outside},
			{location: "s3://" + bucket + ":9000/root/sub/1/x", refusal: outside},
			{location: "s3://" + bucket + "/root/sub/../x", refusal: `".."`},
			{location: "s3://" + bucket + "/root/sub/1/%2e%2e/x", refusal: "percent-encoded"},
			{location: "s3://" + bucket + "/root/sub/1/x?versionId=1", refusal: `"?" or "#"`},
			{location: "s3://" + bucket + "/root/sub/1/x;y", refusal: `";"`},
			{location: "s3://" + bucket + "/root/sub//x", refusal: "must be relative"},
			{location: "s3://" + bucket + "/root/sub/1//x", refusal: "empty segments"},
			{location: "/root/sub/1/x", refusal: outside},
			{location: "file:///root/sub/1/x", refusal: outside},
		}
	}
	// RootKey reads only where the store is rooted, so the rules are
	// checked on every run; against a real bucket when there is one.
	t.Run("rules", func(t *testing.T) {
		checkRootKey(t, &Store{s3Bucket: "models", s3Prefix: "root/sub"}, cases("models"))
	})
	t.Run("bucket", func(t *testing.T) {
		s := openS3TestStore(t)
		checkRootKey(t, s, cases(s.s3Bucket))
	})
}
