// Command databench measures data versions the way a user meets them: it
// builds the slipway binary, starts `slipway server` on a loopback port with
// a temporary data folder, and times the CLI.
//
//   - `slipway data add` of a directory of many small files (default
//     100,000), then re-adding it unchanged, beside plain `sha256sum` over
//     the same files in the same run (one process, and one per core through
//     xargs -P): hashing is the floor any content-addressed tool sits on, so
//     the ratio says how much Slipway adds to it.
//   - profiling a CSV of 1,000,000 rows and 50 columns in a child process,
//     reporting wall time and the child's peak resident memory.
//
// Usage:
//
//	go run ./bench/databench                 # full run, a few minutes
//	go run ./bench/databench -files 10000 -rows 100000   # quick
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slipwayml/slipway/internal/datasets/profile"
)

func main() {
	files := flag.Int("files", 100000, "small files in the tree to add")
	rows := flag.Int("rows", 1000000, "rows of the CSV to profile")
	cols := flag.Int("cols", 50, "columns of the CSV to profile")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	profileOnly := flag.String("profile-only", "", "internal: profile this CSV and exit (run as a child to measure its memory)")
	flag.Parse()
	if *profileOnly != "" {
		f, err := os.Open(*profileOnly)
		check(err)
		p, err := profile.CSV(bufio.NewReaderSize(f, 1<<20))
		check(err)
		fmt.Println(p.Rows, len(p.Columns))
		return
	}

	tmp, err := os.MkdirTemp("", "databench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	fmt.Printf("# databench: %s/%s, %d CPUs, Go %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	bin := filepath.Join(tmp, "slipway")
	run("go", "build", "-o", bin, "./cmd/slipway")
	port := freePort()
	server := exec.Command(bin, "server", "--data-dir", filepath.Join(tmp, "server"), "--port", strconv.Itoa(port), "--log-level", "warn")
	server.Stderr = os.Stderr
	check(server.Start())
	defer func() { server.Process.Signal(syscall.SIGTERM); server.Wait() }()
	waitFor(port)
	env := append(os.Environ(), fmt.Sprintf("SLIPWAY_URL=http://127.0.0.1:%d", port), "SLIPWAY_CACHE_DIR="+filepath.Join(tmp, "cache"))

	// --- Many small files ----------------------------------------------------
	tree := filepath.Join(tmp, "tree")
	size := makeTree(tree, *files)
	fmt.Printf("## add %d small files (%.1f MiB)\n\n", *files, float64(size)/(1<<20))
	// Every contestant reads the freshly written tree from the page cache,
	// as a user's second command would.
	sha1 := timeIt(func() { shell(fmt.Sprintf("cd %s && find . -type f -print0 | xargs -0 sha256sum > /dev/null", tree)) })
	shaN := timeIt(func() {
		shell(fmt.Sprintf("cd %s && find . -type f -print0 | xargs -0 -n 1000 -P %d sha256sum > /dev/null", tree, runtime.NumCPU()))
	})
	add := timeIt(func() { cli(bin, env, "data", "add", "tree", tree) })
	readd := timeIt(func() { cli(bin, env, "data", "add", "tree", tree) })
	// Change one file: one object uploaded, one file hashed.
	check(os.WriteFile(filepath.Join(tree, "d000", "f000000.bin"), []byte("changed"), 0o644))
	oneChange := timeIt(func() { cli(bin, env, "data", "add", "tree", tree) })

	fmt.Println("| step | time | vs sha256sum (1 process) | vs sha256sum (-P " + strconv.Itoa(runtime.NumCPU()) + ") | target |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	fmt.Printf("| sha256sum, 1 process | %s | 1.00 | | |\n", secs(sha1))
	fmt.Printf("| sha256sum, xargs -P %d | %s | %.2f | 1.00 | |\n", runtime.NumCPU(), secs(shaN), shaN.Seconds()/sha1.Seconds())
	fmt.Printf("| `slipway data add` (first: hash, upload, commit) | %s | %.2f | %.2f | < 30 s |\n", secs(add), add.Seconds()/sha1.Seconds(), add.Seconds()/shaN.Seconds())
	fmt.Printf("| `slipway data add` again, unchanged | %s | %.2f | %.2f | < 3 s |\n", secs(readd), readd.Seconds()/sha1.Seconds(), readd.Seconds()/shaN.Seconds())
	fmt.Printf("| `slipway data add` after changing one file | %s | %.2f | %.2f | |\n\n", secs(oneChange), oneChange.Seconds()/sha1.Seconds(), oneChange.Seconds()/shaN.Seconds())

	// --- Profiling a wide CSV -------------------------------------------------
	csvPath := filepath.Join(tmp, "wide.csv")
	csvSize := makeCSV(csvPath, *rows, *cols)
	fmt.Printf("## profile a CSV of %d rows x %d columns (%.0f MiB)\n\n", *rows, *cols, float64(csvSize)/(1<<20))
	self, err := os.Executable()
	check(err)
	var rss int64
	prof := timeIt(func() {
		c := exec.Command(self, "-profile-only", csvPath)
		c.Stderr = os.Stderr
		check(c.Run())
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss * 1024 // kilobytes on Linux
		}
	})
	catTime := timeIt(func() { shell("cat " + csvPath + " > /dev/null") })
	fmt.Println("| step | time | peak RSS | target |")
	fmt.Println("| --- | --- | --- | --- |")
	fmt.Printf("| read the file (`cat`, page cache) | %s | | |\n", secs(catTime))
	fmt.Printf("| profile (schema, stats, quantiles, distinct, top) | %s | %.0f MiB | < 5 s, bounded |\n", secs(prof), float64(rss)/(1<<20))
}

// makeTree writes n files of 100 to 4,000 random bytes, 1,000 per folder,
// and returns their total size.
func makeTree(dir string, n int) int64 {
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 4096)
	var total int64
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			check(os.MkdirAll(d, 0o755))
		}
		sz := 100 + r.IntN(3900)
		for j := range sz {
			buf[j] = byte(r.Uint32())
		}
		check(os.WriteFile(filepath.Join(d, fmt.Sprintf("f%06d.bin", i)), buf[:sz], 0o644))
		total += int64(sz)
	}
	return total
}

// makeCSV writes a table whose columns cycle through the kinds a profile
// treats differently: integers, floats with missing values, low-cardinality
// strings, booleans, high-cardinality ids and dates.
func makeCSV(path string, rows, cols int) int64 {
	f, err := os.Create(path)
	check(err)
	w := bufio.NewWriterSize(f, 1<<20)
	for c := range cols {
		if c > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(w, "c%d", c)
	}
	w.WriteByte('\n')
	r := rand.New(rand.NewPCG(1, 1))
	cats := []string{"red", "green", "blue", "cyan", "magenta", "yellow", "black"}
	var b []byte
	for i := range rows {
		b = b[:0]
		for c := range cols {
			if c > 0 {
				b = append(b, ',')
			}
			switch c % 6 {
			case 0:
				b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
			case 1:
				if r.IntN(20) != 0 {
					b = strconv.AppendFloat(b, r.NormFloat64()*100, 'f', 3, 64)
				}
			case 2:
				b = append(b, cats[r.IntN(len(cats))]...)
			case 3:
				b = strconv.AppendBool(b, r.IntN(3) == 0)
			case 4:
				b = append(b, 'u')
				b = strconv.AppendInt(b, int64(i*cols+c), 36)
			case 5:
				b = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24))*time.Hour).AppendFormat(b, "2006-01-02")
			}
		}
		b = append(b, '\n')
		w.Write(b)
	}
	check(w.Flush())
	check(f.Close())
	fi, err := os.Stat(path)
	check(err)
	return fi.Size()
}

func cli(bin string, env []string, args ...string) {
	c := exec.Command(bin, args...)
	c.Env = env
	out, err := c.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway %s: %v\n%s", strings.Join(args, " "), err, out)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "  $ slipway %s\n  %s", strings.Join(args[:2], " "), strings.ReplaceAll(string(out), "\n", "\n  "))
	fmt.Fprintln(os.Stderr)
}

func run(name string, args ...string) {
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	check(c.Run())
}

func shell(script string) { run("bash", "-c", script) }

func timeIt(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(port int) {
	for range 200 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "server did not start")
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "databench:", err)
		os.Exit(1)
	}
}
