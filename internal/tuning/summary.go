package tuning

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Summary is a finished (or stopped) search.
type Summary struct {
	// Strategy is the strategy's Name.
	Strategy string
	// Params are the searched parameters' names, in the space's order.
	Params []string
	// Rungs is the number of rungs planned: 1 for grid and random search.
	Rungs int
	// Metric and HigherIsBetter are what trials were ranked by, from the
	// first trial that succeeded.
	Metric         string
	HigherIsBetter bool
	// Trials are every launched trial, by index.
	Trials []TrialRecord
	// BestIndex is the best trial's index, -1 when none succeeded: the
	// best of the highest rung any trial succeeded in, since a score after
	// more rounds is the one to trust.
	BestIndex int
}

// Best is the best trial, nil when none succeeded. Its Artifact is the
// only one the summary keeps.
func (s *Summary) Best() *TrialRecord {
	if s.BestIndex < 0 {
		return nil
	}
	return &s.Trials[s.BestIndex]
}

// Count is the number of trials that ended with status.
func (s *Summary) Count(status Status) int {
	n := 0
	for _, t := range s.Trials {
		if t.Status == status {
			n++
		}
	}
	return n
}

// Markdown renders the search for people: a line on the best trial, then
// one row per trial. The CLI prints it and logs it with the parent run.
func (s *Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Tuning: %s\n\n", strings.ReplaceAll(s.Strategy, "_", " "))
	fmt.Fprintf(&b, "%d trials: %d succeeded, %d failed, %d cancelled.", len(s.Trials), s.Count(Succeeded), s.Count(Failed), s.Count(Cancelled))
	if s.Rungs > 1 {
		fmt.Fprintf(&b, " %d rungs.", s.Rungs)
	}
	b.WriteString("\n\n")
	if best := s.Best(); best != nil {
		dir := "lower"
		if s.HigherIsBetter {
			dir = "higher"
		}
		fmt.Fprintf(&b, "Best: trial %d, %s %s (%s is better)", best.Index, s.Metric, num(best.Score), dir)
		if best.Resource > 0 {
			fmt.Fprintf(&b, " after %d rounds", best.Resource)
		}
		b.WriteString(", with ")
		for i, p := range s.Params {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%s", p, best.Params[p])
		}
		b.WriteString(".\n\n")
	}
	rungs, rounds := s.Rungs > 1, false
	for _, t := range s.Trials {
		rounds = rounds || t.Resource > 0
	}
	head := []string{"trial"}
	if rungs {
		head = append(head, "config", "rung")
	}
	if rounds {
		head = append(head, "rounds")
	}
	head = append(head, s.Params...)
	head = append(head, metricHeader(s.Metric), "status", "time")
	row(&b, head...)
	b.WriteString("|" + strings.Repeat(" --- |", len(head)) + "\n")
	for _, t := range s.Trials {
		cells := []string{strconv.Itoa(t.Index)}
		if rungs {
			cells = append(cells, strconv.Itoa(t.Config), strconv.Itoa(t.Rung))
		}
		if rounds {
			cells = append(cells, strconv.Itoa(t.Resource))
		}
		for _, p := range s.Params {
			cells = append(cells, t.Params[p])
		}
		score, status := "", string(t.Status)
		switch {
		case t.Status == Succeeded:
			score = num(t.Score)
			if t.Index == s.BestIndex {
				cells[0] = "**" + cells[0] + "**"
				score = "**" + score + "**"
				status = "best"
			}
		case t.Err != nil:
			status += ": " + t.Err.Error()
		}
		cells = append(cells, score, status, t.Duration.Round(time.Millisecond).String())
		row(&b, cells...)
	}
	return b.String()
}

func metricHeader(m string) string {
	if m == "" {
		return "score"
	}
	return m
}

func row(b *strings.Builder, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		c = strings.ReplaceAll(c, "|", `\|`)
		c = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(c)
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n")
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
