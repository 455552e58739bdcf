package runs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/slipwayml/slipway/internal/errs"
)

// MaxLogChunk bounds one read of a step's log.
const MaxLogChunk = 1 << 20

// LogChunk is a piece of a step's log from Offset, and whether the log is
// complete (the step has ended) so that a follower can stop at its end.
type LogChunk struct {
	Data     []byte
	Offset   int64
	Complete bool
}

// ReadLog returns up to MaxLogChunk bytes of a step's log from offset:
// from the artifact store once the step has ended, from the file being
// written while it runs (on the server running it).
func (s *Service) ReadLog(ctx context.Context, runID, step string, offset int64) (LogChunk, error) {
	if offset < 0 {
		return LogChunk{}, errs.Invalid("offset: %d must be 0 or more", offset)
	}
	run, err := s.GetRun(ctx, runID)
	if err != nil {
		return LogChunk{}, err
	}
	var st *Step
	for i := range run.Steps {
		if run.Steps[i].Name == step {
			st = &run.Steps[i]
		}
	}
	if st == nil {
		if len(run.Steps) == 0 && !run.Done() {
			return LogChunk{Offset: offset}, nil // not started yet
		}
		return LogChunk{}, errs.NotFoundf("pipeline run %s has no step %q", runID, step)
	}
	chunk := LogChunk{Offset: offset}
	var r io.ReadCloser
	switch {
	case st.logKey != "":
		chunk.Complete = true
		if r, _, err = s.blobs.Get(ctx, st.logKey); err != nil {
			return chunk, err
		}
	case st.Status == StepRunning || st.Status == StepPending:
		f, err := os.Open(filepath.Join(s.runDir(runID), step+".log"))
		if err != nil {
			return chunk, nil // not written yet, or run by another server
		}
		r = f
	default:
		chunk.Complete = true // ended without a log: cached, skipped
		return chunk, nil
	}
	defer r.Close()
	if seeker, ok := r.(io.Seeker); ok {
		if _, err := seeker.Seek(offset, io.SeekStart); err != nil {
			return chunk, err
		}
	} else if _, err := io.CopyN(io.Discard, r, offset); err != nil && err != io.EOF {
		return chunk, err
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, MaxLogChunk); err != nil && err != io.EOF {
		return chunk, err
	}
	chunk.Data = buf.Bytes()
	if chunk.Complete && int64(buf.Len()) == MaxLogChunk {
		chunk.Complete = false // more to read
	}
	return chunk, nil
}
