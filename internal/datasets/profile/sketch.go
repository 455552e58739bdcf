package profile

import (
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// kll is a KLL quantile sketch (Karnin, Lang, Liberty 2016) in the simple
// form of the authors' reference code: a stack of compactors whose
// capacities shrink by 2/3 per level below the top. An item at level h
// stands for 2^h inputs. With k=256 the sketch holds about 3k = 768
// floats, and the rank error of a quantile is below about 1% of n with
// high probability. The coin that picks which half of a compacted pair
// survives comes from a fixed-seed generator, so a file always yields the
// same profile.
type kll struct {
	k       int
	levels  [][]float64
	caps    []int // capacity of each level, recomputed when the stack grows
	size    int
	maxSize int
	n       int64
	rng     uint64
}

const kllK = 256

func newKLL() *kll {
	s := &kll{k: kllK, rng: 0x9E3779B97F4A7C15}
	s.grow()
	return s
}

func (s *kll) capacity(h int) int {
	depth := len(s.levels) - h - 1
	return int(math.Ceil(math.Pow(2.0/3.0, float64(depth))*float64(s.k))) + 1
}

func (s *kll) grow() {
	s.levels = append(s.levels, nil)
	s.caps = s.caps[:0]
	s.maxSize = 0
	for h := range s.levels {
		s.caps = append(s.caps, s.capacity(h))
		s.maxSize += s.caps[h]
	}
}

func (s *kll) add(v float64) {
	s.levels[0] = append(s.levels[0], v)
	s.size++
	s.n++
	if s.size >= s.maxSize {
		s.compress()
	}
}

func (s *kll) coin() int {
	// xorshift64: cheap, deterministic, good enough for a fair coin.
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return int(s.rng >> 63)
}

func (s *kll) compress() {
	for h := 0; h < len(s.levels); h++ {
		if len(s.levels[h]) < s.caps[h] {
			continue
		}
		if h+1 >= len(s.levels) {
			s.grow()
		}
		l := s.levels[h]
		slices.Sort(l)
		keep := len(l) % 2 // an odd item out stays at this level
		for i := keep + s.coin(); i < len(l); i += 2 {
			s.levels[h+1] = append(s.levels[h+1], l[i])
		}
		s.size -= len(l) - keep - len(l[keep:])/2
		s.levels[h] = l[:keep]
		return
	}
}

// quantiles returns the value at each rank q*n, q in qs.
func (s *kll) quantiles(qs []float64) []float64 {
	type item struct {
		v float64
		w int64
	}
	var items []item
	for h, l := range s.levels {
		for _, v := range l {
			items = append(items, item{v, int64(1) << h})
		}
	}
	out := make([]float64, len(qs))
	if len(items) == 0 {
		return out
	}
	sort.Slice(items, func(i, j int) bool { return items[i].v < items[j].v })
	var total int64
	for _, it := range items {
		total += it.w
	}
	for i, q := range qs {
		target := q * float64(total)
		var cum int64
		out[i] = items[len(items)-1].v
		for _, it := range items {
			cum += it.w
			if float64(cum) >= target {
				out[i] = it.v
				break
			}
		}
	}
	return out
}

// exactQuantiles sorts vs and interpolates linearly between closest ranks,
// which is what pandas and numpy do by default.
func exactQuantiles(vs []float64, qs []float64) []float64 {
	slices.Sort(vs)
	out := make([]float64, len(qs))
	if len(vs) == 0 {
		return out
	}
	for i, q := range qs {
		pos := q * float64(len(vs)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(vs)-1)
		frac := pos - float64(lo)
		out[i] = vs[lo] + (vs[hi]-vs[lo])*frac
	}
	return out
}

// hll is a HyperLogLog distinct counter with 2^14 one-byte registers
// (16 KiB), standard error 1.04/sqrt(2^14) = 0.81%, with linear counting
// for small cardinalities. Inputs are 64-bit hashes.
type hll struct {
	reg [1 << hllP]uint8
}

const hllP = 14

func (h *hll) add(x uint64) {
	idx := x >> (64 - hllP)
	w := x<<hllP | 1<<(hllP-1)
	r := uint8(bits.LeadingZeros64(w) + 1)
	if r > h.reg[idx] {
		h.reg[idx] = r
	}
}

func (h *hll) estimate() int64 {
	const m = float64(1 << hllP)
	sum, zeros := 0.0, 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}

// misraGries keeps approximate heavy hitters in bounded space: counts are
// lower bounds, each short by at most n/(capacity+1). A value's text is
// kept only once it is seen twice: in a column of mostly unique values
// (ids) that saves an allocation per row, and a value seen once is never a
// heavy hitter worth naming.
type misraGries struct {
	capacity int
	counts   map[uint64]mgEntry
}

type mgEntry struct {
	value string
	count int64
}

type category struct {
	value string
	count int64
}

const mgCapacity = 256

// newMisraGries starts from exact counts: keeping the top capacity entries
// less the next-largest count is the state the algorithm could have
// reached, so its error bound holds from here on.
func newMisraGries(exact map[uint64]*category) *misraGries {
	all := make([]*category, 0, len(exact))
	keys := make(map[*category]uint64, len(exact))
	for k, c := range exact {
		all = append(all, c)
		keys[c] = k
	}
	sortCategories(all)
	var cut int64
	if len(all) > mgCapacity {
		cut = all[mgCapacity].count
		all = all[:mgCapacity]
	}
	mg := &misraGries{capacity: mgCapacity, counts: make(map[uint64]mgEntry, mgCapacity)}
	for _, c := range all {
		if c.count > cut {
			mg.counts[keys[c]] = mgEntry{value: c.value, count: c.count - cut}
		}
	}
	return mg
}

// add counts value; it may live in a reused buffer and is copied if kept.
func (m *misraGries) add(key uint64, value string) {
	if e, ok := m.counts[key]; ok {
		e.count++
		if e.value == "" {
			e.value = strings.Clone(value)
		}
		m.counts[key] = e
		return
	}
	if len(m.counts) < m.capacity {
		m.counts[key] = mgEntry{count: 1}
		return
	}
	for k, e := range m.counts {
		if e.count == 1 {
			delete(m.counts, k)
		} else {
			e.count--
			m.counts[k] = e
		}
	}
}

// top returns the counted values that have a known text.
func (m *misraGries) top() []*category {
	var out []*category
	for _, e := range m.counts {
		if e.value != "" {
			out = append(out, &category{value: e.value, count: e.count})
		}
	}
	return out
}

// sortCategories orders by count, most first, then by value so that ties
// come out the same every time.
func sortCategories(cs []*category) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].count != cs[j].count {
			return cs[i].count > cs[j].count
		}
		return cs[i].value < cs[j].value
	})
}

// mix64 is SplitMix64's finaliser: it spreads the bits of a float's
// representation well enough for HyperLogLog.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
