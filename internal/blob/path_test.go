package blob

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slipwayml/slipway/internal/errs"
)

// Each row is one attack class; rule is a fragment of the message that must
// name why the path was refused.
var badKeys = []struct {
	name, path, rule string
}{
	{"parent segment", "..", `".."`},
	{"leading traversal", "../etc/passwd", `".."`},
	{"traversal in the middle", "a/../../b", `".."`},
	{"trailing parent", "a/..", `".."`},
	{"dot segment", "a/./b", `"."`},
	{"leading dot segment", "./a", `"."`},
	{"triple dot (Windows trims dots)", "a/.../b", "all-dot"},
	{"absolute posix", "/etc/passwd", "relative"},
	{"network path with slashes", "//server/share/x", "relative"},
	{"root only", "/", "relative"},
	{"empty segment", "a//b", "empty segments"},
	{"only slashes", "//", "relative"},
	{"windows drive with backslash", `C:\Windows\win.ini`, "backslash"},
	{"windows drive with slash", "C:/Windows/win.ini", "drive letter"},
	{"windows drive relative", "c:win.ini", "drive letter"},
	{"UNC path", `\\server\share\x`, "backslash"},
	{"backslash traversal (CVE-2023-2780)", `a\..\..\etc\passwd`, "backslash"},
	{"NUL byte", "model.pkl\x00.txt", "NUL"},
	{"newline", "a\nb", "control"},
	{"carriage return", "a\rb", "control"},
	{"DEL", "a\x7fb", "control"},
	{"invalid UTF-8", "a\xffb", "UTF-8"},
	{"encoded dots (CVE-2023-6909)", "%2e%2e/%2e%2e/etc/passwd", "percent-encoded"},
	{"encoded dots upper case", "%2E%2E%2Fetc", "percent-encoded"},
	{"encoded dots mixed case", "%2e%2E/x", "percent-encoded"},
	{"double encoded dots", "%252e%252e/etc/passwd", "percent-encoded"},
	{"encoded slash", "a%2fb", "percent-encoded"},
	{"encoded slash upper case", "..%2F..%2Fetc", "percent-encoded"},
	{"encoded backslash", "a%5c..%5cb", "percent-encoded"},
	{"encoded NUL", "a%00b", "percent-encoded"},
	{"IIS unicode escape", "%u002e%u002e/etc", "percent-encoded"},
	{"overlong UTF-8 dot", "%c0%ae%c0%ae/etc", "percent-encoded"},
	{"query", "model.pkl?x=1", `"?"`},
	{"fragment (CVE-2024-3848)", "x#/../../etc/passwd", `"#"`},
	{"file URI (CVE-2024-1483)", "file:///etc/passwd", "scheme"},
	{"file URI one slash", "file:/etc/passwd", "scheme"},
	{"s3 URI", "s3://bucket/key", "scheme"},
	{"http URI", "http://evil/x", "scheme"},
	{"artifact URI as a key", "mlflow-artifacts:/1/x", "scheme"},
	{"fullwidth dots", "\uff0e\uff0e/etc/passwd", "NFKC"},
	{"two dot leader", "\u2025/etc/passwd", "NFKC"},
	{"fullwidth slash", "a\uff0f..\uff0fb", "NFKC"},
	{"fullwidth backslash", "a\uff3cb", "NFKC"},
	{"fullwidth percent escape", "\uff05\uff12\uff45", "NFKC"},
	{"division slash", "a\u2215b", "look-alike"},
	{"fraction slash", "a\u2044b", "look-alike"},
	{"key too long", strings.Repeat("a", MaxKeyLen+1), "at most"},
	{"name too long", strings.Repeat("a", 256) + "/x", "longer than"},
}

var goodKeys = []struct {
	path, want string
}{
	{"model.pkl", "model.pkl"},
	{"a/b/c/d.txt", "a/b/c/d.txt"},
	{"dir/", "dir"},
	{"my model/data file.csv", "my model/data file.csv"},
	{"données/模型.json", "données/模型.json"},
	{"emoji 😀.txt", "emoji 😀.txt"},
	{"model.v1.json", "model.v1.json"},
	{".hidden", ".hidden"},
	{"a/.hidden/b", "a/.hidden/b"},
	{"..hidden", "..hidden"},
	{"a..b/c..", "a..b/c.."},
	{"2024-01-01T10:00:00.json", "2024-01-01T10:00:00.json"},
	{"runs/10:00.json", "runs/10:00.json"},
	{"accuracy 100%.png", "accuracy 100%.png"},
	{"50%-done.txt", "50%-done.txt"},
	{"a;b.txt", "a;b.txt"},
	{"报告：结果.txt", "报告：结果.txt"},
	{"报告．txt", "报告．txt"},
	{"~/x", "~/x"},
	{strings.Repeat("a", 255), strings.Repeat("a", 255)},
	{"", ""},
}

func TestCleanKeyRefusesAttacks(t *testing.T) {
	for _, tc := range badKeys {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanKey(tc.path)
			if err == nil {
				t.Fatalf("CleanKey(%q) = %q, want an error", tc.path, got)
			}
			if !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("CleanKey(%q): code %v, want InvalidArgument", tc.path, errs.CodeOf(err))
			}
			if msg := errs.Message(err); !strings.Contains(msg, tc.rule) {
				t.Fatalf("CleanKey(%q): message %q does not name the rule %q", tc.path, msg, tc.rule)
			}
		})
	}
}

func TestCleanKeyAcceptsValidPaths(t *testing.T) {
	for _, tc := range goodKeys {
		got, err := CleanKey(tc.path)
		if err != nil {
			t.Errorf("CleanKey(%q): %v", tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("CleanKey(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestResolveLocation(t *testing.T) {
	good := []struct{ loc, want string }{
		{"mlflow-artifacts:/1/abc/artifacts/model", "1/abc/artifacts/model"},
		{"MLFLOW-ARTIFACTS:/1/abc/artifacts", "1/abc/artifacts"},
		{"mlflow-artifacts:/1/abc/artifacts/my model/模型/", "1/abc/artifacts/my model/模型"},
		{"1/abc/artifacts/model", "1/abc/artifacts/model"},
	}
	for _, tc := range good {
		got, err := ResolveLocation(tc.loc)
		if err != nil || got != tc.want {
			t.Errorf("ResolveLocation(%q) = %q, %v; want %q", tc.loc, got, err, tc.want)
		}
	}
	bad := []struct{ name, loc, rule string }{
		{"file URI (CVE-2024-1483)", "file:///etc/passwd", "scheme"},
		{"file URI with host", "file://localhost/etc/passwd", "scheme"},
		{"absolute path (CVE-2023-1177)", "/etc/passwd", "relative"},
		{"double slash (CVE-2023-6977)", "//proc/self/root", "relative"},
		{"other scheme", "s3://bucket/key", "scheme"},
		{"http URI with fragment (CVE-2024-1483)", "http:///#/../../../etc/", `"#"`},
		{"runs URI", "runs:/0123/model", "scheme"},
		{"models URI", "models:/m/1", "scheme"},
		{"traversal", "mlflow-artifacts:/../etc", `".."`},
		{"traversal after a dir", "mlflow-artifacts:/1/abc/../../../etc", `".."`},
		{"encoded traversal (CVE-2023-6909)", "mlflow-artifacts:/1/%2e%2e/%2e%2e/x", "percent-encoded"},
		{"double encoded traversal", "mlflow-artifacts:/1/%252e%252e/x", "percent-encoded"},
		{"query (CVE-2024-1560)", "mlflow-artifacts:/1/x?/../../etc", `"?"`},
		{"fragment (CVE-2024-3848)", "mlflow-artifacts:/1/x#/../../etc", `"#"`},
		{"path parameters (CVE-2024-1593)", "mlflow-artifacts:/1/x;/../../etc", `";"`},
		{"host part", "mlflow-artifacts://evil:5000/1/x", "host part"},
		{"empty host", "mlflow-artifacts:///etc/passwd", "host part"},
		{"no slash", "mlflow-artifacts:1/x", "mlflow-artifacts:/<path>"},
		{"whole store", "mlflow-artifacts:/", "below the artifact root"},
		{"empty", "", "below the artifact root"},
		{"scheme only", "mlflow-artifacts:", "mlflow-artifacts:/<path>"},
		{"drive letter", `C:\x`, "backslash"},
		{"UNC", `\\server\share`, "backslash"},
		{"backslash traversal", `mlflow-artifacts:/1/..\..\x`, "backslash"},
		{"NUL", "mlflow-artifacts:/1/x\x00", "NUL"},
		{"fullwidth dots", "mlflow-artifacts:/1/\uff0e\uff0e/x", "NFKC"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveLocation(tc.loc)
			if err == nil {
				t.Fatalf("ResolveLocation(%q) = %q, want an error", tc.loc, got)
			}
			if !errs.Is(err, errs.InvalidArgument) || !strings.Contains(errs.Message(err), tc.rule) {
				t.Fatalf("ResolveLocation(%q): %v (code %v), want InvalidArgument naming %q", tc.loc, err, errs.CodeOf(err), tc.rule)
			}
		})
	}
}

func TestIsWithin(t *testing.T) {
	for _, tc := range []struct {
		key, dir string
		want     bool
	}{
		{"1/abc/artifacts/model", "1/abc/artifacts", true},
		{"1/abc/artifacts", "1/abc/artifacts", true},
		{"1/abcd/artifacts", "1/abc", false},
		{"1", "1/abc", false},
		{"anything", "", true},
	} {
		if got := IsWithin(tc.key, tc.dir); got != tc.want {
			t.Errorf("IsWithin(%q, %q) = %v, want %v", tc.key, tc.dir, got, tc.want)
		}
	}
}

// FuzzCleanKey checks the properties the rest of Slipway relies on for any
// input CleanKey accepts.
func FuzzCleanKey(f *testing.F) {
	for _, tc := range badKeys {
		f.Add(tc.path)
	}
	for _, tc := range goodKeys {
		f.Add(tc.path)
	}
	f.Fuzz(func(t *testing.T, p string) {
		k, err := CleanKey(p)
		if err != nil {
			if !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("CleanKey(%q): code %v, want InvalidArgument", p, errs.CodeOf(err))
			}
			return
		}
		if k == "" {
			if p != "" {
				t.Fatalf("CleanKey(%q) accepted as the root", p)
			}
			return
		}
		if path.Clean(k) != k || !filepath.IsLocal(k) || !utf8.ValidString(k) {
			t.Fatalf("CleanKey(%q) = %q: not a clean local path", p, k)
		}
		for s := k; ; {
			for seg := range strings.SplitSeq(s, "/") {
				if seg == ".." {
					t.Fatalf("CleanKey(%q) = %q: decodes to a traversal", p, k)
				}
			}
			d, err := url.PathUnescape(s)
			if err != nil || d == s {
				break
			}
			s = d
		}
	})
}
