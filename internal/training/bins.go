package training

import (
	"math"
)

// binType holds a bin number: a byte when every feature has at most 256
// bins (counting missing), else 16 bits.
type binType interface{ ~uint8 | ~uint16 }

// featureBins says how one feature's values become bins. A numeric value v
// falls in bin b when cuts[b-1] <= v < cuts[b], which is how XGBoost's
// hist method cuts features: splitting after bin b sends x < cuts[b] left,
// so cuts[b] is the split's threshold in the model. A category's bin is
// its code. Missing values have bin nbins.
type featureBins struct {
	categorical bool
	cuts        []float32
	cutKeys     []uint32 // floatKey of each cut
	// below is less than every training value: the threshold of a split
	// that sends only missing values left.
	below float32
	nbins int
}

// quantized is the data as bin numbers, laid out row by row (rows of nf
// bins), which is what histogram building reads.
type quantized[B binType] struct {
	rows, nf int
	bins     []B
	feats    []featureBins
	// offset is where each feature's bins start in a histogram; feature
	// j has nbins+1 slots, the last for missing values.
	offset []int32
	slots  int
}

// sketch computes every feature's bins and whether 16-bit bins are needed.
func sketch(d *Dataset, maxBin, workers int) ([]featureBins, bool) {
	nf := len(d.Columns)
	feats := make([]featureBins, nf)
	hasMissing := make([]bool, nf)
	wide := maxBin > 256
	for j := range nf {
		if !d.isCategorical(j) {
			continue
		}
		top := -1
		for _, v := range d.Columns[j] {
			if v != v {
				hasMissing[j] = true
			} else if int(v) > top {
				top = int(v)
			}
		}
		feats[j] = featureBins{categorical: true, nbins: top + 1}
		if need := top + 1 + 1; need > 256 {
			wide = true
		}
	}
	forEach(workers, nf, func(j int) {
		if d.isCategorical(j) {
			return
		}
		feats[j] = numericBins(d.Columns[j], d.Weights, maxBin, wide)
	})
	return feats, wide
}

// numericBins cuts one numeric column. With no more distinct values than
// bins, each value gets its own bin (the cuts are the values themselves, as
// in XGBoost); otherwise the cuts are weighted quantiles, picked as
// XGBoost picks them.
func numericBins(col, weights []float32, maxBin int, wide bool) featureBins {
	values, ws, missing := sortedValues(col, weights)
	limit := maxBin
	if missing && !wide {
		limit = min(limit, 255)
	}
	if len(values) == 0 {
		return featureBins{}
	}
	// Distinct values and their total weights.
	uniq := values[:0:0]
	var uw []float64
	for i, v := range values {
		w := 1.0
		if ws != nil {
			w = float64(ws[i])
		}
		if len(uniq) > 0 && uniq[len(uniq)-1] == v {
			uw[len(uw)-1] += w
			continue
		}
		uniq = append(uniq, v)
		uw = append(uw, w)
	}
	var cuts []float32
	if len(uniq) <= limit {
		cuts = append(cuts, uniq[1:]...)
	} else {
		cuts = pruneCuts(uniq, uw, limit)
	}
	top := float64(uniq[len(uniq)-1])
	cuts = append(cuts, clampFloat32(top+math.Abs(top)+1e-5))
	bottom := float64(uniq[0])
	keys := make([]uint32, len(cuts))
	for i, c := range cuts {
		keys[i] = floatKey(c)
	}
	return featureBins{cuts: cuts, cutKeys: keys, nbins: len(cuts), below: clampFloat32(bottom - (math.Abs(bottom) + 1e-5))}
}

// pruneCuts picks limit-1 interior cuts from the distinct values (with
// their weights) as XGBoost's WQSummary::SetPrune does on an exact
// summary, followed by AddCutPoint: for each of the evenly spaced ranks
// between the smallest and largest value's, the value whose rank interval
// it falls nearest. Picking as XGBoost does keeps the bins, and so the
// trees, close to XGBoost's on the same data.
func pruneCuts(uniq []float32, w []float64, limit int) []float32 {
	m := len(uniq)
	rmin := make([]float64, m) // weight below each value
	total := 0.0
	for j, wj := range w {
		rmin[j] = total
		total += wj
	}
	rmax := func(j int) float64 { return rmin[j] + w[j] }
	begin := rmax(0)
	span := rmin[m-1] - begin
	n := float64(limit)
	var picked []int
	i, last := 1, 0
	for k := 1; k < limit; k++ {
		dx2 := 2 * (float64(k)*span/n + begin)
		for i < m-1 && dx2 >= rmax(i+1)+rmin[i+1] {
			i++
		}
		if i == m-1 {
			break
		}
		pick := i + 1
		if dx2 < rmin[i]+w[i]+rmax(i+1)-w[i+1] {
			pick = i
		}
		if pick != last {
			picked = append(picked, pick)
			last = pick
		}
	}
	// AddCutPoint keeps at most limit-1 picks, strictly increasing; the
	// largest value is cut after separately.
	cuts := make([]float32, 0, limit)
	for _, j := range picked[:min(len(picked), limit-1)] {
		if j > 0 && (len(cuts) == 0 || uniq[j] > cuts[len(cuts)-1]) {
			cuts = append(cuts, uniq[j])
		}
	}
	return cuts
}

func clampFloat32(v float64) float32 {
	return float32(max(min(v, math.MaxFloat32), -math.MaxFloat32))
}

// sortedValues returns the column's present values in ascending order (with
// their weights, when rows are weighted) and whether any value is missing.
// A radix sort on the values' bits keeps sketching a million-row column to
// milliseconds.
func sortedValues(col, weights []float32) ([]float32, []float32, bool) {
	if weights == nil {
		keys := make([]uint32, 0, len(col))
		for _, v := range col {
			if v == v {
				keys = append(keys, floatKey(v))
			}
		}
		radixSort32(keys)
		out := make([]float32, len(keys))
		for i, k := range keys {
			out[i] = keyFloat(k)
		}
		return out, nil, len(keys) < len(col)
	}
	keys := make([]uint64, 0, len(col))
	for r, v := range col {
		if v == v {
			keys = append(keys, uint64(floatKey(v))<<32|uint64(r))
		}
	}
	radixSort64High(keys)
	out := make([]float32, len(keys))
	ws := make([]float32, len(keys))
	for i, k := range keys {
		out[i] = keyFloat(uint32(k >> 32))
		ws[i] = weights[uint32(k)]
	}
	return out, ws, len(keys) < len(col)
}

// floatKey maps a float's bits to an unsigned key in the same order; -0
// becomes +0 so that equal values have equal keys.
func floatKey(v float32) uint32 {
	if v == 0 {
		v = 0
	}
	b := math.Float32bits(v)
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}

func keyFloat(k uint32) float32 {
	if k&(1<<31) != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

func radixSort32(keys []uint32) {
	tmp := make([]uint32, len(keys))
	src, dst := keys, tmp
	for shift := uint(0); shift < 32; shift += 8 {
		var count [256]int
		for _, k := range src {
			count[(k>>shift)&0xff]++
		}
		if count[(src[0]>>shift)&0xff] == len(src) {
			continue // every key has this byte: the pass would not move anything
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			b := (k >> shift) & 0xff
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// radixSort64High sorts by the upper 32 bits, stably, so rows with equal
// values stay in row order.
func radixSort64High(keys []uint64) {
	if len(keys) == 0 {
		return
	}
	tmp := make([]uint64, len(keys))
	src, dst := keys, tmp
	for shift := uint(32); shift < 64; shift += 8 {
		var count [256]int
		for _, k := range src {
			count[(k>>shift)&0xff]++
		}
		if count[(src[0]>>shift)&0xff] == len(src) {
			continue
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			b := (k >> shift) & 0xff
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// binOf is the bin of a present numeric value: the number of cuts at or
// below it. The search compares the values' order-preserving integer keys
// (see floatKey) arithmetically, without a branch on the data:
// mispredicted branches would otherwise dominate binning a million rows.
func (f *featureBins) binOf(v float32) int {
	keys := f.cutKeys
	k := floatKey(v)
	base, n := 0, len(keys)
	for n > 1 {
		half := n / 2
		// d >= 0 exactly when the cut is at or below v; its sign bit
		// masks the step without a branch.
		d := int64(k) - int64(keys[base+half])
		base += half &^ int(d>>63)
		n -= half
	}
	if keys[base] <= k {
		base++
	}
	return min(base, f.nbins-1)
}

const quantizeBlock = 4096

func quantize[B binType](d *Dataset, feats []featureBins, workers int) *quantized[B] {
	n, nf := d.Rows(), len(d.Columns)
	q := &quantized[B]{rows: n, nf: nf, bins: make([]B, n*nf), feats: feats, offset: make([]int32, nf)}
	for j := range feats {
		q.offset[j] = int32(q.slots)
		q.slots += feats[j].nbins + 1
	}
	forEach(workers, chunks(n, quantizeBlock), func(c int) {
		lo, hi := c*quantizeBlock, min((c+1)*quantizeBlock, n)
		for j, col := range d.Columns {
			f := &feats[j]
			missing := B(f.nbins)
			for r := lo; r < hi; r++ {
				v := col[r]
				var b B
				switch {
				case v != v:
					b = missing
				case f.categorical:
					b = B(v)
				default:
					b = B(f.binOf(v))
				}
				q.bins[r*nf+j] = b
			}
		}
	})
	return q
}
