package pyfunc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Frames, both ways: a little-endian uint32 length, then that many bytes,
// the first of which says what the frame is. Binary float32 rows keep a
// one-row round trip to a few microseconds of protocol work.
const (
	opInit    = 'I' // -> JSON spec; answered by statusReady or statusErr
	opPing    = 'H' // -> nothing; answered by opPing
	opPredict = 'P' // -> uint32 rows, rows*cols float32; answered by statusOK or statusErr

	statusReady = 'R' // <- JSON about the interpreter
	statusOK    = 'O' // <- uint32 rows, uint32 cols, rows*cols float32
	statusErr   = 'E' // <- UTF-8 message: the Python exception's last line
)

// maxMessage bounds the error text read from a worker.
const maxMessage = 64 << 10

// stderrLines is how many of a worker's last stderr lines an error quotes.
const stderrLines = 8

// proc is one running worker process. One call at a time talks to it.
type proc struct {
	slot int
	cmd  *exec.Cmd
	in   *os.File // the worker's stdin
	out  *os.File // the worker's stdout
	r    *bufio.Reader
	log  *slog.Logger

	mu   sync.Mutex // held for a whole call
	wbuf []byte
	hdr  [13]byte

	done       chan struct{} // closed once the process has exited
	exit       string        // how it exited; set before done is closed
	stderrDone chan struct{}
	tail       tail
	// stopped is why Slipway stopped the worker, when it did.
	stopped atomic.Pointer[string]
	started time.Time
}

// start runs the worker script under python and sends it the init frame;
// it returns once the model is loaded, or with the reason it was not.
func start(slot int, o *Options, initFrame []byte, stop <-chan struct{}) (*proc, error) {
	cmd := exec.Command(o.Python, "-u", "-c", workerScript)
	cmd.Env = append(os.Environ(), o.Env...)
	sysProcAttr(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	// The child holds its own copies of these ends; ours would keep the
	// pipes open after it exits and hide its death from reads.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting the Python worker: %w (set SLIPWAY_PYTHON to an interpreter with the model's packages)", err)
	}
	p := &proc{
		slot: slot, cmd: cmd, in: inW, out: outR, r: bufio.NewReaderSize(outR, 64<<10),
		log:  o.Logger.With("worker", slot, "pid", cmd.Process.Pid),
		done: make(chan struct{}), stderrDone: make(chan struct{}), started: time.Now(),
	}
	go p.readStderr(errR)
	go func() {
		err := cmd.Wait()
		switch {
		case cmd.ProcessState != nil:
			p.exit = cmd.ProcessState.String()
		case err != nil:
			p.exit = err.Error()
		}
		close(p.done)
	}()

	loaded := make(chan struct{})
	defer close(loaded)
	go func() {
		select {
		case <-stop:
			p.kill("Slipway is closing the model")
		case <-loaded:
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.call(initFrame, o.LoadTimeout, "load the model", func(status byte, n int) error {
		switch status {
		case statusErr:
			return p.modelError(n)
		case statusReady:
		default:
			return p.unexpected(status)
		}
		info, err := p.readMessage(n)
		if err == nil {
			p.log.Debug("python worker ready", "info", info)
		}
		return err
	})
	if err != nil {
		p.kill("it failed to load the model")
		<-p.done
		var me *ModelError
		if errors.As(err, &me) {
			return nil, fmt.Errorf("loading the model in Python: %s", me.Message)
		}
		return nil, err
	}
	return p, nil
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill stops the worker at once, remembering why for the errors that
// follow. Closing our pipe ends unblocks a call even when a child of the
// worker still holds them open.
func (p *proc) kill(why string) {
	p.stopped.CompareAndSwap(nil, &why)
	if p.alive() {
		signalGroup(p.cmd.Process, true)
	}
	p.in.Close()
	p.out.Close()
}

// release closes our ends of a dead worker's pipes once no call is
// reading them, so that an answer written just before the exit is not
// lost.
func (p *proc) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.in.Close()
	p.out.Close()
}

// shutdown asks the worker to finish (end of stdin), then terminates it,
// then kills it, waiting grace between the steps.
func (p *proc) shutdown(grace time.Duration) {
	why := "Slipway closed the model"
	p.stopped.CompareAndSwap(nil, &why)
	p.in.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		signalGroup(p.cmd.Process, false)
		t.Reset(grace)
		select {
		case <-p.done:
		case <-t.C:
			p.kill(why)
			<-p.done
		}
	}
	p.out.Close()
}

// call sends one frame and hands the answer's status and remaining
// length to read. It fails, and kills the worker, when the answer takes
// longer than timeout; what a failed call returns names what happened to
// the worker. The caller holds p.mu.
func (p *proc) call(frame []byte, timeout time.Duration, what string, read func(status byte, n int) error) error {
	timer := time.AfterFunc(timeout, func() {
		p.kill(fmt.Sprintf("it did not %s within %s", what, timeout))
	})
	defer timer.Stop()
	if _, err := p.in.Write(frame); err != nil {
		return p.failure(what, err)
	}
	if _, err := io.ReadFull(p.r, p.hdr[:5]); err != nil {
		return p.failure(what, err)
	}
	n := int(binary.LittleEndian.Uint32(p.hdr[:4]))
	if n < 1 {
		p.kill("it broke the protocol")
		return p.failure(what, errors.New("empty frame"))
	}
	err := read(p.hdr[4], n-1)
	var (
		pe protocolError
		me *ModelError
		oe outputError
	)
	switch {
	case err == nil, errors.As(err, &me), errors.As(err, &oe):
		// The exchange completed and the worker can take the next one.
		return err
	case errors.As(err, &pe):
		p.kill("it broke the protocol: " + pe.msg)
	}
	return p.failure(what, err)
}

// outputError is an answer of the wrong shape: the exchange completed,
// but the prediction cannot be used.
type outputError struct{ msg string }

func (e outputError) Error() string { return e.msg }

// protocolError is an answer that leaves the stream unusable.
type protocolError struct{ msg string }

func (e protocolError) Error() string { return e.msg }

func (p *proc) unexpected(status byte) error {
	return protocolError{fmt.Sprintf("unexpected answer %q", status)}
}

// readMessage reads an n-byte text payload, keeping at most maxMessage.
func (p *proc) readMessage(n int) (string, error) {
	keep := min(n, maxMessage)
	buf := make([]byte, keep)
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return "", err
	}
	if _, err := io.CopyN(io.Discard, p.r, int64(n-keep)); err != nil {
		return "", err
	}
	return strings.ToValidUTF8(string(buf), "?"), nil
}

// modelError reads a statusErr payload into the error a caller sees.
func (p *proc) modelError(n int) error {
	msg, err := p.readMessage(n)
	if err != nil {
		return err
	}
	return &ModelError{Message: msg}
}

// failure explains a call that could not complete: the worker exited,
// was stopped, or closed its stdout. It waits briefly for the exit and the
// last stderr lines so that the error can quote them.
func (p *proc) failure(what string, cause error) error {
	p.log.Debug("python worker call failed", "cause", cause)
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill("it stopped answering")
		<-p.done
	}
	select {
	case <-p.stderrDone:
	case <-time.After(500 * time.Millisecond):
	}
	var summary string
	if why := p.stopped.Load(); why != nil {
		summary = fmt.Sprintf("was stopped because %s (%s)", *why, p.exit)
	} else {
		summary = fmt.Sprintf("exited (%s) while trying to %s", p.exit, what)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "python worker %d (pid %d) %s", p.slot, p.cmd.Process.Pid, summary)
	if lines := p.tail.lines(); len(lines) > 0 {
		fmt.Fprintf(&b, "; last stderr: %s", strings.Join(lines, " | "))
	}
	return &WorkerError{msg: b.String(), Summary: summary}
}

// ping checks that the worker answers. The caller holds p.mu.
func (p *proc) ping(timeout time.Duration) error {
	frame := append(p.wbuf[:0], 1, 0, 0, 0, opPing)
	return p.call(frame, timeout, "answer a health check", func(status byte, n int) error {
		if status != opPing || n != 0 {
			return p.unexpected(status)
		}
		return nil
	})
}

// predict scores rows of x (cols values each) into out (nout values
// each). The caller holds p.mu.
func (p *proc) predict(x []float32, rows, nout int, out []float32, timeout time.Duration) error {
	size := 5 + 4*len(x)
	if size > math.MaxUint32 {
		return fmt.Errorf("a batch of %d rows is too large for one request; split it", rows)
	}
	if cap(p.wbuf) < 4+size {
		p.wbuf = make([]byte, 4+size)
	}
	w := p.wbuf[:4+size]
	binary.LittleEndian.PutUint32(w, uint32(size))
	w[4] = opPredict
	binary.LittleEndian.PutUint32(w[5:], uint32(rows))
	for i, v := range x {
		binary.LittleEndian.PutUint32(w[9+4*i:], math.Float32bits(v))
	}
	return p.call(w, timeout, "score a request", func(status byte, n int) error {
		switch status {
		case statusErr:
			return p.modelError(n)
		case statusOK:
		default:
			return p.unexpected(status)
		}
		if n < 8 {
			return protocolError{"short answer"}
		}
		if _, err := io.ReadFull(p.r, p.hdr[5:13]); err != nil {
			return err
		}
		gotRows := int(binary.LittleEndian.Uint32(p.hdr[5:9]))
		gotCols := int(binary.LittleEndian.Uint32(p.hdr[9:13]))
		if n-8 != 4*gotRows*gotCols {
			return protocolError{fmt.Sprintf("answer of %d bytes for %d×%d values", n, gotRows, gotCols)}
		}
		if gotRows != rows || gotCols != nout {
			if _, err := io.CopyN(io.Discard, p.r, int64(n-8)); err != nil {
				return err
			}
			return outputError{fmt.Sprintf("the model predicted %d values per row for %d rows; its signature declares %d outputs, and the request has %d rows", gotCols, gotRows, nout, rows)}
		}
		// The request is written, so its buffer can take the answer.
		if cap(p.wbuf) < n-8 {
			p.wbuf = make([]byte, n-8)
		}
		b := p.wbuf[:n-8]
		if _, err := io.ReadFull(p.r, b); err != nil {
			return err
		}
		for i := range rows * nout {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return nil
	})
}

// readStderr logs what the worker and its model print, keeping the last
// lines for errors.
func (p *proc) readStderr(r *os.File) {
	defer close(p.stderrDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		p.log.Info("python worker stderr", "line", line)
	}
}

// tail keeps the last stderrLines lines.
type tail struct {
	mu  sync.Mutex
	buf []string
}

func (t *tail) add(line string) {
	const maxLen = 400
	if len(line) > maxLen {
		line = strings.ToValidUTF8(line[:maxLen], "") + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == stderrLines {
		copy(t.buf, t.buf[1:])
		t.buf = t.buf[:stderrLines-1]
	}
	t.buf = append(t.buf, line)
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}

// ModelError is an exception the model raised for a request; the worker
// that ran it is still up.
type ModelError struct {
	// Message is the exception's last traceback line, e.g.
	// "ValueError: could not convert string to float".
	Message string
}

func (e *ModelError) Error() string { return "the model raised " + e.Message }

// WorkerError is a request or load that failed because its worker
// exited, hung or broke the protocol; Slipway replaces the worker.
type WorkerError struct {
	msg string
	// Summary says what happened to the worker without its process id or
	// output, for callers: "exited (exit status 3) while trying to score a request".
	Summary string
}

func (e *WorkerError) Error() string { return e.msg }
