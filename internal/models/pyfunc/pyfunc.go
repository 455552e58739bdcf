// Package pyfunc serves MLflow python_function models (a scikit-learn
// pickle, or a model with its own loader module) through managed Python
// worker processes: Slipway starts them, checks their health, restarts
// them with backoff when they exit or hang, and drains them on Close.
//
// The workers run the server's Python interpreter with its packages; a
// model's conda or virtualenv environment in MLmodel is not created.
package pyfunc

import (
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayml/slipway/internal/errs"
	"github.com/slipwayml/slipway/internal/models"
)

//go:embed worker.py
var workerScript string

var _ models.Model = (*Model)(nil)

// PythonEnv names the environment variable with the default interpreter.
const PythonEnv = "SLIPWAY_PYTHON"

// Options configure the workers of a model. Zero values take defaults.
type Options struct {
	// Python is the interpreter the workers run: it needs numpy, pandas
	// and the model's own packages. Default: $SLIPWAY_PYTHON, else
	// python3 on PATH.
	Python string
	// Workers is the number of worker processes; each scores one request
	// at a time. Default 1.
	Workers int
	// RequestTimeout bounds both the wait for a free worker and the
	// worker's answer; a worker that does not answer in time is killed
	// and replaced. Default 30s.
	RequestTimeout time.Duration
	// LoadTimeout bounds a worker's start and model load. Default 2m.
	LoadTimeout time.Duration
	// HealthInterval is how often an idle worker is pinged. Default 5s.
	HealthInterval time.Duration
	// HealthTimeout is how long a ping may take. Default 5s.
	HealthTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart, which
	// doubles after each failure. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// HealthyAfter is how long a worker must stay up for the backoff to
	// start again from MinBackoff. Default 30s.
	HealthyAfter time.Duration
	// StopGrace is how long Close waits after closing a worker's stdin
	// before SIGTERM, and after SIGTERM before SIGKILL. Default 5s.
	StopGrace time.Duration
	// Env is added to the server's environment for the workers
	// (KEY=value), e.g. OMP_NUM_THREADS=1.
	Env []string
	// Logger receives worker events and their stderr. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Python == "" {
		o.Python = os.Getenv(PythonEnv)
	}
	if o.Python == "" {
		o.Python = "python3"
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, 30*time.Second)
	def(&o.LoadTimeout, 2*time.Minute)
	def(&o.HealthInterval, 5*time.Second)
	def(&o.HealthTimeout, 5*time.Second)
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 10*time.Second)
	def(&o.HealthyAfter, 30*time.Second)
	def(&o.StopGrace, 5*time.Second)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrClosed is returned for requests that arrive once Close has begun.
var ErrClosed = errors.New("the Python model is shutting down and takes no new requests")

// ErrRestarting is returned, wrapped with the reason, for requests that
// arrive while no worker is up.
var ErrRestarting = errors.New("the Python worker is restarting")

// ErrBusy is returned, wrapped, for requests that waited RequestTimeout
// for a free worker.
var ErrBusy = errors.New("no Python worker was free")

// Model is a python_function model served by worker processes. It is
// safe for concurrent use.
type Model struct {
	dir       string
	opts      Options
	log       *slog.Logger
	sig       models.Signature
	nin, nout int
	initFrame []byte

	// idle holds the workers free to take a request. A worker that dies
	// while idle stays until it is taken (and dropped) or purged.
	idle  chan *proc
	up    atomic.Int32
	procs []atomic.Pointer[proc] // each slot's current worker, nil while down

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	down     chan struct{} // closed and replaced each time a worker goes down
	stats    Stats

	stop      chan struct{} // closed to end the supervisors
	stopOnce  sync.Once
	grace     atomic.Int64 // StopGrace, or less once Close has run out of time
	superv    sync.WaitGroup
	closeDone chan struct{}
}

// Stats describe a model's workers for health reporting.
type Stats struct {
	// Workers is the number of workers configured; Ready how many are up.
	Workers, Ready int
	// Restarts counts workers started to replace one that exited, hung,
	// failed a health check or failed to start.
	Restarts int64
	// PIDs are the process ids of the workers that are up.
	PIDs []int
	// LastError is why a worker last went down or failed to start, and
	// LastErrorAt when; empty if none has.
	LastError   string
	LastErrorAt time.Time
}

// Open reads the MLmodel of dir, starts the workers and waits until each
// has loaded the model. A model that fails to load is an error carrying
// the Python exception.
func Open(dir string, opts Options) (*Model, error) {
	opts = opts.withDefaults()
	sp, sig, err := readMLmodel(dir)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 5, 5+len(js))
	binary.LittleEndian.PutUint32(frame, uint32(1+len(js)))
	frame[4] = opInit
	frame = append(frame, js...)
	m := &Model{
		dir: dir, opts: opts, log: opts.Logger.With("model", dir), sig: sig,
		nin: len(sig.Inputs), nout: len(sig.Outputs), initFrame: frame,
		idle: make(chan *proc, 2*opts.Workers), down: make(chan struct{}),
		stop: make(chan struct{}), closeDone: make(chan struct{}),
		procs: make([]atomic.Pointer[proc], opts.Workers),
	}
	m.stats.Workers = opts.Workers
	m.grace.Store(int64(opts.StopGrace))

	procs := make([]*proc, opts.Workers)
	errs := make([]error, opts.Workers)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = m.start(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range procs {
			if p != nil {
				p.shutdown(opts.StopGrace)
			}
		}
		return nil, fmt.Errorf("%s: %w", dir, firstErr(errs))
	}
	for i, p := range procs {
		m.ready(p)
		m.superv.Add(1)
		go m.supervise(i, p)
	}
	m.log.Info("python model loaded", "workers", opts.Workers, "python", opts.Python)
	return m, nil
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Model) start(slot int) (*proc, error) {
	o := m.opts
	o.Logger = m.log
	return start(slot, &o, m.initFrame, m.stop)
}

// Signature implements models.Model: the MLmodel's input columns, and its
// output columns (one "prediction" when it declares none).
func (m *Model) Signature() models.Signature { return m.sig }

// NumFeatures implements models.Model.
func (m *Model) NumFeatures() int { return m.nin }

// NumOutputs implements models.Model.
func (m *Model) NumOutputs() int { return m.nout }

// Predict implements models.Model: the rows go to one worker as one
// DataFrame.
func (m *Model) Predict(x, out []float32) error {
	if len(x)%m.nin != 0 {
		return fmt.Errorf("input has %d values, not a whole number of rows of %d features", len(x), m.nin)
	}
	rows := len(x) / m.nin
	if len(out) < rows*m.nout {
		return fmt.Errorf("output has room for %d values; %d rows need %d", len(out), rows, rows*m.nout)
	}
	if rows == 0 {
		return nil
	}
	return m.do(x, rows, out)
}

// PredictRow implements models.Model.
func (m *Model) PredictRow(row, out []float32) error {
	if len(row) != m.nin {
		return fmt.Errorf("row has %d values; the model has %d features", len(row), m.nin)
	}
	if len(out) < m.nout {
		return fmt.Errorf("output has room for %d values; the model predicts %d", len(out), m.nout)
	}
	return m.do(row, 1, out)
}

func (m *Model) do(x []float32, rows int, out []float32) error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return ErrClosed
	}
	m.inflight.Add(1)
	m.mu.Unlock()
	defer m.inflight.Done()
	p, err := m.acquire()
	if err != nil {
		return coded(err)
	}
	p.mu.Lock()
	err = p.predict(x, rows, m.nout, out, m.opts.RequestTimeout)
	p.mu.Unlock()
	if p.alive() && p.stopped.Load() == nil {
		m.idle <- p
	}
	return coded(err)
}

// coded gives a failed request the code and caller-safe message the
// inference protocols answer with; the full error, with process ids and
// the worker's output, stays inside for the server's log. The model's own
// exception is the request's problem (400, as MLflow's scoring server
// answers); a worker that died or is restarting is temporary (503); no
// free worker is overload (429).
func coded(err error) error {
	var me *ModelError
	var we *WorkerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &me):
		return &errs.Error{Code: errs.InvalidArgument, Message: me.Error(), Err: err}
	case errors.As(err, &we):
		return &errs.Error{Code: errs.FailedPrecondition, Message: "the model's Python worker " + we.Summary + "; a new worker is starting", Err: err}
	case errors.Is(err, ErrRestarting):
		return &errs.Error{Code: errs.FailedPrecondition, Message: "the model's Python worker is restarting; try again shortly", Err: err}
	case errors.Is(err, ErrClosed):
		return &errs.Error{Code: errs.FailedPrecondition, Message: ErrClosed.Error(), Err: err}
	case errors.Is(err, ErrBusy):
		return &errs.Error{Code: errs.ResourceExhausted, Message: err.Error(), Err: err}
	}
	return err
}

// acquire takes a free worker, waiting up to RequestTimeout for one; it
// fails at once while no worker is up, rather than queue behind restarts.
func (m *Model) acquire() (*proc, error) {
	var timeout <-chan time.Time
	for {
		if m.up.Load() == 0 {
			return nil, m.restarting()
		}
		select {
		case p := <-m.idle:
			if p.alive() {
				return p, nil
			}
			continue
		default:
		}
		if timeout == nil {
			t := time.NewTimer(m.opts.RequestTimeout)
			defer t.Stop()
			timeout = t.C
		}
		m.mu.Lock()
		down := m.down
		m.mu.Unlock()
		select {
		case p := <-m.idle:
			if p.alive() {
				return p, nil
			}
		case <-down:
		case <-m.stop:
			return nil, ErrClosed
		case <-timeout:
			return nil, fmt.Errorf("%w: all %d stayed busy for %s", ErrBusy, m.opts.Workers, m.opts.RequestTimeout)
		}
	}
}

func (m *Model) restarting() error {
	m.mu.Lock()
	last := m.stats.LastError
	m.mu.Unlock()
	if last == "" {
		return ErrRestarting
	}
	return fmt.Errorf("%w after: %s", ErrRestarting, last)
}

// ready makes a loaded worker available, first dropping dead workers
// from idle so that it never fills.
func (m *Model) ready(p *proc) {
	var keep []*proc
	for drained := false; !drained; {
		select {
		case q := <-m.idle:
			if q.alive() {
				keep = append(keep, q)
			}
		default:
			drained = true
		}
	}
	for _, q := range append(keep, p) {
		m.idle <- q
	}
	m.procs[p.slot].Store(p)
	m.up.Add(1)
}

// supervise watches slot's worker p and replaces it whenever it goes
// down, until Close.
func (m *Model) supervise(slot int, p *proc) {
	defer m.superv.Done()
	backoff := m.opts.MinBackoff
	for {
		if p != nil {
			reason := m.watch(p)
			go p.release()
			if reason == "" {
				m.procs[slot].Store(nil)
				m.up.Add(-1)
				return
			}
			m.wentDown(slot, reason, true)
			if time.Since(p.started) >= m.opts.HealthyAfter {
				backoff = m.opts.MinBackoff
			}
			p = nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-m.stop:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, m.opts.MaxBackoff)
		m.mu.Lock()
		m.stats.Restarts++
		m.mu.Unlock()
		np, err := m.start(slot)
		if err != nil {
			select {
			case <-m.stop:
				return
			default:
			}
			m.wentDown(slot, "restart failed: "+err.Error(), false)
			continue
		}
		m.log.Info("python worker restarted", "worker", slot, "pid", np.cmd.Process.Pid)
		m.ready(np)
		p = np
	}
}

// watch pings p while it is idle and returns why it went down, or "" once
// Close has stopped it.
func (m *Model) watch(p *proc) string {
	tick := time.NewTicker(m.opts.HealthInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return m.downReason(p)
		case <-m.stop:
			p.shutdown(time.Duration(m.grace.Load()))
			return ""
		case <-tick.C:
			// A busy worker is covered by its request's timeout.
			if !p.mu.TryLock() {
				continue
			}
			err := p.ping(m.opts.HealthTimeout)
			p.mu.Unlock()
			if err != nil {
				p.kill("it failed a health check")
				<-p.done
				return err.Error()
			}
		}
	}
}

func (m *Model) downReason(p *proc) string {
	select {
	case <-p.stderrDone:
	case <-time.After(500 * time.Millisecond):
	}
	msg := fmt.Sprintf("python worker %d (pid %d) exited (%s)", p.slot, p.cmd.Process.Pid, p.exit)
	if why := p.stopped.Load(); why != nil {
		msg = fmt.Sprintf("python worker %d (pid %d) was stopped because %s (%s)", p.slot, p.cmd.Process.Pid, *why, p.exit)
	}
	if lines := p.tail.lines(); len(lines) > 0 {
		msg += "; last stderr: " + lines[len(lines)-1]
	}
	return msg
}

// wentDown records why a worker is down (taking it out of the count of
// those up, if it was) and wakes requests waiting for a worker, so that
// they fail fast if none is left. The reason is recorded before the
// count drops, so that a request that finds none up can say why.
func (m *Model) wentDown(slot int, reason string, wasUp bool) {
	m.log.Warn("python worker down", "worker", slot, "reason", reason)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.LastError, m.stats.LastErrorAt = reason, time.Now()
	if wasUp {
		m.procs[slot].Store(nil)
		m.up.Add(-1)
	}
	close(m.down)
	m.down = make(chan struct{})
}

// Stats reports the workers' state.
func (m *Model) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Ready = int(m.up.Load())
	for i := range m.procs {
		if p := m.procs[i].Load(); p != nil {
			s.PIDs = append(s.PIDs, p.cmd.Process.Pid)
		}
	}
	return s
}

// Close drains the model: new requests fail with ErrClosed, requests in
// flight finish until ctx ends, then each worker's stdin is closed, and
// it is sent SIGTERM and then SIGKILL if it has not exited after
// StopGrace. It returns ctx's error if requests were still in flight.
func (m *Model) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		m.inflight.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		// The requests left will fail as their workers stop; there is no
		// time left to wait for workers to finish politely either.
		m.grace.Store(int64(100 * time.Millisecond))
		err = fmt.Errorf("closing the Python model: requests still in flight: %w", ctx.Err())
	}
	m.stopOnce.Do(func() {
		close(m.stop)
		go func() {
			m.superv.Wait()
			close(m.closeDone)
		}()
	})
	<-m.closeDone
	return err
}
