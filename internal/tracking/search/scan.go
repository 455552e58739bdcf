package search

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The scanner is driven by the parser rather than run ahead of it, because
// the same characters mean different things by position: "2" is a key
// segment in metrics.accuracy.2 and a number after a comparator, and a
// double-quoted text is a key in params."a b" and a value after "=".

type scanner struct {
	s string
	i int
}

func (p *scanner) eof() bool { return p.i >= len(p.s) }

// peek returns the rune at the cursor, or -1 at the end. Inputs are checked
// for valid UTF-8 before scanning, so decoding cannot go astray.
func (p *scanner) peek() rune {
	if p.i >= len(p.s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return r
}

func (p *scanner) peekAt(i int) rune {
	if i >= len(p.s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.s[i:])
	return r
}

func (p *scanner) skipSpace() {
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if !unicode.IsSpace(r) {
			return
		}
		p.i += n
	}
}

// isWordRune matches Python's \w, which is what sqlparse's names are made of.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isOpRune(r rune) bool { return strings.ContainsRune("<>=!~", r) }

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func (p *scanner) scanWord() string {
	start := p.i
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if !isWordRune(r) {
			break
		}
		p.i += n
	}
	return p.s[start:p.i]
}

// scanQuoted reads a quoted text starting at the cursor, which must be on
// the quote q. Single- and double-quoted texts follow sqlparse: a doubled
// quote or a backslash-quote does not end the text. Unlike MLflow, which
// keeps such escapes verbatim in the value, they are unescaped here (a
// doubled quote stands for one quote). Backticks have no escapes. ok is
// false when the text is not terminated; the cursor is then left unchanged.
func (p *scanner) scanQuoted(q byte) (content, raw string, ok bool) {
	start := p.i
	j := start + 1
	if q == '`' {
		end := strings.IndexByte(p.s[j:], '`')
		if end < 0 {
			return "", "", false
		}
		p.i = j + end + 1
		return p.s[j : j+end], p.s[start:p.i], true
	}
	var b strings.Builder
	for j < len(p.s) {
		c := p.s[j]
		switch {
		case c == q && j+1 < len(p.s) && p.s[j+1] == q,
			c == '\\' && j+1 < len(p.s) && p.s[j+1] == q:
			b.WriteByte(q)
			j += 2
		case c == q:
			p.i = j + 1
			return b.String(), p.s[start:p.i], true
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", "", false
}

// numberEnd returns the end of a number literal at i (optional minus,
// digits with an optional fraction or a bare fraction, optional exponent),
// or i when there is none. The exponent is consumed only when complete, so
// "1e" is the number 1 followed by a stray "e".
func (p *scanner) numberEnd(i int) int {
	j := i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	digits := 0
	for j < len(p.s) && isDigit(rune(p.s[j])) {
		j++
		digits++
	}
	if j < len(p.s) && p.s[j] == '.' {
		k := j + 1
		frac := 0
		for k < len(p.s) && isDigit(rune(p.s[k])) {
			k++
			frac++
		}
		if digits > 0 || frac > 0 {
			j = k
			digits += frac
		}
	}
	if digits == 0 {
		return i
	}
	if j < len(p.s) && (p.s[j] == 'e' || p.s[j] == 'E') {
		k := j + 1
		if k < len(p.s) && (p.s[k] == '-' || p.s[k] == '+') {
			k++
		}
		exp := 0
		for k < len(p.s) && isDigit(rune(p.s[k])) {
			k++
			exp++
		}
		if exp > 0 {
			j = k
		}
	}
	return j
}

// scanNumber reads a number at the cursor. ok is false when there is none or
// when it runs straight into a name, a dot or a quote ("5abc", "1.2.3"),
// which sqlparse would not read as a number either.
func (p *scanner) scanNumber() (text string, v float64, ok bool) {
	end := p.numberEnd(p.i)
	if end == p.i {
		return "", 0, false
	}
	if r := p.peekAt(end); isWordRune(r) || r == '.' || r == '\'' || r == '"' || r == '`' {
		return "", 0, false
	}
	text = p.s[p.i:end]
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		// Only range errors are possible for this syntax; Python's float()
		// gives the same ±inf (or 0) that ParseFloat returns with them.
		if ne, isNum := err.(*strconv.NumError); !isNum || ne.Err != strconv.ErrRange {
			return "", 0, false
		}
	}
	p.i = end
	return text, v, true
}

// tokenAt returns the text of the token starting at i, for error messages:
// a name, a quoted text (to the end of input if unterminated), a run of
// comparator characters, a number, or a single character.
func (p *scanner) tokenAt(i int) string {
	if i >= len(p.s) {
		return ""
	}
	q := &scanner{s: p.s, i: i}
	r := q.peek()
	switch {
	case r == '\'' || r == '"' || r == '`':
		if _, raw, ok := q.scanQuoted(byte(r)); ok {
			return raw
		}
		return p.s[i:]
	case isWordRune(r):
		if end := q.numberEnd(i); end > i && !isWordRune(q.peekAt(end)) {
			return p.s[i:end]
		}
		if _, raw, err := q.scanIdent(); err == nil {
			return raw
		}
		return p.s[i:q.i]
	case r == '-' || r == '.':
		if end := q.numberEnd(i); end > i {
			return p.s[i:end]
		}
	case isOpRune(r):
		for q.i < len(q.s) && isOpRune(q.peek()) {
			q.i++
		}
		return p.s[i:q.i]
	}
	_, n := utf8.DecodeRuneInString(p.s[i:])
	return p.s[i : i+n]
}

// identSeg is one dot-separated part of an identifier.
type identSeg struct {
	text  string // unquoted, unescaped
	raw   string // as typed
	quote byte   // 0 for a bare name, else '`' or '"'
}

// errTrailingDot reports an identifier that ends in a dot, such as
// "metrics." or "metrics. acc".
type errTrailingDot struct{ ident string }

func (e errTrailingDot) Error() string { return "trailing dot in " + e.ident }

// errUnterminated reports a quote or backtick that is never closed; from is
// where it opens.
type errUnterminated struct{ from int }

func (e errUnterminated) Error() string { return "unterminated quote" }

// scanIdent reads an identifier: names, backticked or double-quoted texts
// joined by dots with no space between them. It returns nil segments and a
// nil error when the cursor is not on anything that can start one.
func (p *scanner) scanIdent() (segs []identSeg, raw string, err error) {
	start := p.i
	for {
		r := p.peek()
		switch {
		case r == '`' || r == '"':
			text, rawq, ok := p.scanQuoted(byte(r))
			if !ok {
				return nil, "", errUnterminated{p.i}
			}
			segs = append(segs, identSeg{text: text, raw: rawq, quote: byte(r)})
		case isWordRune(r):
			w := p.scanWord()
			segs = append(segs, identSeg{text: w, raw: w})
		default:
			if len(segs) == 0 {
				return nil, "", nil
			}
			return nil, "", errTrailingDot{p.s[start:p.i]}
		}
		if p.i < len(p.s) && p.s[p.i] == '.' {
			p.i++
			continue
		}
		return segs, p.s[start:p.i], nil
	}
}
