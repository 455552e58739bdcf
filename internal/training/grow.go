package training

import (
	"math"
	"math/rand/v2"
	"slices"
)

// gradStats is a sum of gradients and hessians, in float64 as XGBoost's
// histograms keep them.
type gradStats struct{ g, h float64 }

func (s *gradStats) add(o gradStats) { s.g += o.g; s.h += o.h }

func (s gradStats) sub(o gradStats) gradStats { return gradStats{s.g - o.g, s.h - o.h} }

// treeParams are the parameters one tree is grown with.
type treeParams struct {
	maxDepth                                           int
	eta                                                float32
	minChildWeight, lambda, alpha, gamma, maxDeltaStep float64
	maxCatToOnehot, maxCatThreshold                    int
}

// minGain is XGBoost's kRtEps: a split must reduce the loss by more.
const minGain = 1e-6

func thresholdL1(g, alpha float64) float64 {
	switch {
	case g > alpha:
		return g - alpha
	case g < -alpha:
		return g + alpha
	}
	return 0
}

// weight is XGBoost's CalcWeight: the leaf weight that minimises the
// second-order loss, before the learning rate.
func (p *treeParams) weight(s gradStats) float64 {
	if s.h < p.minChildWeight || s.h <= 0 {
		return 0
	}
	w := -thresholdL1(s.g, p.alpha) / (s.h + p.lambda)
	if p.maxDeltaStep != 0 && math.Abs(w) > p.maxDeltaStep {
		w = math.Copysign(p.maxDeltaStep, w)
	}
	return w
}

// gain is XGBoost's CalcGain: the loss reduction of a leaf with these sums.
func (p *treeParams) gain(s gradStats) float64 {
	if s.h < p.minChildWeight || s.h <= 0 {
		return 0
	}
	if p.maxDeltaStep == 0 {
		g := thresholdL1(s.g, p.alpha)
		return g * g / (s.h + p.lambda)
	}
	w := p.weight(s)
	ret := -(2*s.g*w + (s.h+p.lambda)*w*w)
	if p.alpha != 0 {
		ret += p.alpha * math.Abs(w)
	}
	return ret
}

// split is the best way found to split a node.
type split struct {
	gain    float64
	feature int32 // -1: no split
	// bin: bins up to it go left (numeric), -1 for none (only missing
	// values go left).
	bin         int32
	defaultLeft bool
	cats        []int32 // categorical: the categories that go right
	left, right gradStats
}

// growNode is a node being grown: its rows are pos[begin:end] of the
// current position buffer.
type growNode struct {
	id         int32
	begin, end int
	sum        gradStats
	rootGain   float64
	hist       []gradStats
	feats      []int32
	best       split
	expanded   bool
	goLeft     []bool // per bin, once the node is split
	left       *growNode
	right      *growNode
	small      *growNode // the child whose histogram is built
}

// Chunk sizes fix how parallel sums are cut, by row count alone, so that
// the sums (and the model) do not depend on the number of threads.
const (
	histChunk = 32768
	partChunk = 16384
)

// grower grows trees on quantized data. One grower trains one model; its
// buffers are reused from tree to tree.
type grower[B binType] struct {
	q         *quantized[B]
	tp        treeParams
	workers   int
	rng       *rand.Rand
	colsample [3]float64 // by tree, level, node
	allFeats  []int32

	// Rows of the tree's nodes, each node's rows together, and their
	// gradient pairs in the same order, so that histogram building reads
	// the pairs in sequence; a level's partition writes the next pair.
	posA, posB []uint32
	gpA, gpB   []float32
	dir        []bool
	// chunkRows is how many rows one histogram task sums: histChunk, or
	// more when histograms are so wide (many features, many bins) that a
	// scratch histogram per histChunk rows would take too much memory.
	chunkRows int
	free      [][]gradStats // histograms to reuse
	sampled   []uint32      // rows of the current tree
	skipped   []uint32      // rows left out by subsampling
}

func newGrower[B binType](q *quantized[B], tp treeParams, workers int, seed uint64, colsample [3]float64) *grower[B] {
	g := &grower[B]{
		q: q, tp: tp, workers: workers, colsample: colsample,
		rng:  rand.New(rand.NewPCG(seed, 0x5eed5eed5eed5eed)),
		posA: make([]uint32, q.rows), posB: make([]uint32, q.rows), dir: make([]bool, q.rows),
		gpA: make([]float32, 2*q.rows), gpB: make([]float32, 2*q.rows),
	}
	// Bounds the scratch histograms of a node's chunks to about 64 MiB; it
	// depends on the data's shape only, so the model does not depend on
	// memory or threads.
	const scratchBudget = 64 << 20
	maxChunks := max(1, scratchBudget/(q.slots*16))
	g.chunkRows = max(histChunk, (q.rows+maxChunks-1)/maxChunks)
	g.allFeats = make([]int32, q.nf)
	for j := range g.allFeats {
		g.allFeats[j] = int32(j)
	}
	return g
}

func (g *grower[B]) newHist() []gradStats {
	if n := len(g.free); n > 0 {
		h := g.free[n-1]
		g.free = g.free[:n-1]
		return h
	}
	return make([]gradStats, g.q.slots)
}

func (g *grower[B]) release(h []gradStats) {
	if h != nil {
		g.free = append(g.free, h)
	}
}

// sampleRows draws the rows of the next tree: each row with probability
// subsample, as XGBoost's uniform sampling does.
func (g *grower[B]) sampleRows(subsample float64) {
	n := g.q.rows
	g.sampled, g.skipped = g.posA[:0], g.skipped[:0]
	if subsample >= 1 {
		g.sampled = g.posA[:n]
		for r := range g.sampled {
			g.sampled[r] = uint32(r)
		}
		return
	}
	for r := range n {
		if g.rng.Float64() < subsample {
			g.sampled = append(g.sampled, uint32(r))
		} else {
			g.skipped = append(g.skipped, uint32(r))
		}
	}
}

// sampleFeatures keeps max(1, frac*len(from)) of the features, in order,
// as XGBoost's column sampler does.
func (g *grower[B]) sampleFeatures(from []int32, frac float64) []int32 {
	if frac >= 1 {
		return from
	}
	n := max(1, int(frac*float64(len(from))))
	perm := slices.Clone(from)
	g.rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	perm = perm[:n]
	slices.Sort(perm)
	return perm
}

// grow grows one tree on the gradient pairs gp (2 per row) of the rows
// sampleRows drew, and adds its leaves to margins (stride groups, offset
// group).
func (g *grower[B]) grow(gp []float32, margins []float32, groups, group int) *tree {
	t := &tree{group: group, cats: map[int32][]int32{}}
	cur, next := g.posA, g.posB
	gcur, gnext := g.gpA, g.gpB
	n := len(g.sampled)
	forEach(g.workers, chunks(n, partChunk), func(c int) {
		for i := c * partChunk; i < min((c+1)*partChunk, n); i++ {
			r := cur[i]
			gcur[2*i], gcur[2*i+1] = gp[2*r], gp[2*r+1]
		}
	})
	root := &growNode{begin: 0, end: n}
	root.sum = g.sumPairs(gcur[:2*n])
	root.id = t.addNode(noParent, g.tp.weight(root.sum), root.sum.h)
	root.rootGain = g.tp.gain(root.sum)
	level := []*growNode{root}
	g.buildHists(gcur, cur, level)
	treeFeats := g.sampleFeatures(g.allFeats, g.colsample[0])
	for depth := 0; len(level) > 0; depth++ {
		// Nodes at max_depth never come round the loop: the level above
		// adds them as leaves, without histograms (addChildLeaves).
		var expand []*growNode
		levelFeats := g.sampleFeatures(treeFeats, g.colsample[1])
		for _, nd := range level {
			nd.feats = g.sampleFeatures(levelFeats, g.colsample[2])
		}
		g.findSplits(level)
		for _, nd := range level {
			// XGBoost's ExpandEntry::IsValid: gamma is applied as the
			// tree grows, not by pruning afterwards.
			if nd.best.feature >= 0 && nd.best.gain > minGain && nd.best.gain >= g.tp.gamma {
				nd.expanded = true
				expand = append(expand, nd)
			}
		}
		var leaves []*growNode
		for _, nd := range level {
			if !nd.expanded {
				leaves = append(leaves, nd)
			}
		}
		for _, nd := range leaves {
			g.release(nd.hist)
			nd.hist = nil
			g.setLeaf(t, nd)
		}
		g.addLeaves(cur, leaves, margins, groups, group, t)
		if len(expand) == 0 {
			break
		}
		for _, nd := range expand {
			g.splitNode(t, nd)
		}
		if depth+1 == g.tp.maxDepth {
			// The children are leaves: add their values without
			// partitioning their rows.
			g.addChildLeaves(cur, expand, margins, groups, group, t)
			for _, nd := range expand {
				g.release(nd.hist)
				nd.hist = nil
			}
			break
		}
		g.partition(cur, next, gcur, gnext, expand)
		// The sibling's histogram is the parent's less the small child's,
		// computed in the parent's buffer.
		forEach(g.workers, len(expand), func(i int) {
			nd := expand[i]
			big := nd.left
			if nd.small == nd.left {
				big = nd.right
			}
			ph, sh := nd.hist, nd.small.hist
			for k := range ph {
				ph[k].g -= sh[k].g
				ph[k].h -= sh[k].h
			}
			big.hist = ph
			nd.hist = nil
		})
		level = level[:0:0]
		for _, nd := range expand {
			level = append(level, nd.left, nd.right)
		}
		cur, next = next, cur
		gcur, gnext = gnext, gcur
	}
	if len(g.skipped) > 0 {
		g.addSkipped(t, margins, groups, group)
	}
	return t
}

// sumPairs adds up gradient pairs, in fixed chunks.
func (g *grower[B]) sumPairs(gp []float32) gradStats {
	n := len(gp) / 2
	parts := make([]gradStats, chunks(n, histChunk))
	forEach(g.workers, len(parts), func(c int) {
		var s gradStats
		for i := c * histChunk; i < min((c+1)*histChunk, n); i++ {
			s.g += float64(gp[2*i])
			s.h += float64(gp[2*i+1])
		}
		parts[c] = s
	})
	var s gradStats
	for _, p := range parts {
		s.add(p)
	}
	return s
}

// histTask sums the rows of one chunk of a node into a histogram: chunk 0
// of each node into the histogram itself, the others into scratch
// histograms that reduce adds to it in chunk order.
type histTask struct {
	nd      *growNode // the node whose rows are read
	into    *growNode // the node whose histogram is built
	lo, hi  int
	scratch []gradStats
}

func (g *grower[B]) histTasks(nodes, into []*growNode) []histTask {
	var tasks []histTask
	size := g.chunkRows
	for i, nd := range nodes {
		into[i].hist = g.newHist()
		tasks = append(tasks, histTask{nd: nd, into: into[i], lo: nd.begin, hi: min(nd.begin+size, nd.end)})
		for lo := nd.begin + size; lo < nd.end; lo += size {
			tasks = append(tasks, histTask{nd: nd, into: into[i], lo: lo, hi: min(lo+size, nd.end), scratch: g.newHist()})
		}
	}
	return tasks
}

func (tk *histTask) dst() []gradStats {
	if tk.scratch != nil {
		return tk.scratch
	}
	return tk.into.hist
}

// reduce adds each node's scratch histograms to its histogram, in chunk
// order.
func (g *grower[B]) reduce(tasks []histTask) {
	first := 0
	for first < len(tasks) {
		last := first + 1
		for last < len(tasks) && tasks[last].into == tasks[first].into {
			last++
		}
		if last-first > 1 {
			dst := tasks[first].into.hist
			parts := tasks[first+1 : last]
			// Slots are independent: split them across goroutines, each
			// adding the chunks in order.
			const block = 1024
			forEach(g.workers, chunks(len(dst), block), func(b int) {
				lo, hi := b*block, min((b+1)*block, len(dst))
				d := dst[lo:hi]
				for _, p := range parts {
					s := p.scratch[lo:hi]
					for k := range d {
						d[k].g += s[k].g
						d[k].h += s[k].h
					}
				}
			})
			for _, p := range parts {
				g.release(p.scratch)
			}
		}
		first = last
	}
}

// buildHists builds the histograms of nodes from their rows in pos and
// gradient pairs in gpos.
func (g *grower[B]) buildHists(gpos []float32, pos []uint32, nodes []*growNode) {
	tasks := g.histTasks(nodes, nodes)
	q := g.q
	forEach(g.workers, len(tasks), func(i int) {
		tk := &tasks[i]
		dst := tk.dst()
		clear(dst)
		for k, r := range pos[tk.lo:tk.hi] {
			i := tk.lo + k
			accumulate(dst, q.row(r), q.offset, gpos[2*i], gpos[2*i+1])
		}
	})
	g.reduce(tasks)
}

func (q *quantized[B]) row(r uint32) []B {
	base := int(r) * q.nf
	return q.bins[base : base+q.nf]
}

// accumulate adds one row's gradient pair to the bins its features fall
// in. It is the hot loop of training.
func accumulate[B binType](dst []gradStats, row []B, offset []int32, g32, h32 float32) {
	g, h := float64(g32), float64(h32)
	off := offset[:len(row)]
	for f, b := range row {
		s := &dst[int(off[f])+int(b)]
		s.g += g
		s.h += h
	}
}

// findSplits finds each node's best split over its sampled features, one
// task per node and feature; ties go to the lower feature, as in XGBoost.
func (g *grower[B]) findSplits(level []*growNode) {
	type task struct{ node, k int }
	var tasks []task
	results := make([][]split, len(level))
	for i, nd := range level {
		results[i] = make([]split, len(nd.feats))
		for k := range nd.feats {
			tasks = append(tasks, task{i, k})
		}
	}
	forEach(g.workers, len(tasks), func(i int) {
		tk := tasks[i]
		nd := level[tk.node]
		results[tk.node][tk.k] = g.featureSplit(nd, nd.feats[tk.k])
	})
	for i, nd := range level {
		nd.best = split{feature: -1}
		for _, s := range results[i] {
			if s.feature >= 0 && s.gain > nd.best.gain {
				nd.best = s
			}
		}
	}
}

func (g *grower[B]) featureSplit(nd *growNode, f int32) split {
	fb := &g.q.feats[f]
	off := g.q.offset[f]
	hist := nd.hist[off : off+int32(fb.nbins)+1]
	if fb.categorical {
		return g.categoricalSplit(nd, f, hist)
	}
	return g.numericSplit(nd, f, hist)
}

// numericSplit scans the bins from the left with missing values going
// right, then, if there are missing values, from the right with them going
// left: XGBoost's EnumerateSplit in both directions.
func (g *grower[B]) numericSplit(nd *growNode, f int32, hist []gradStats) split {
	p := &g.tp
	nb := len(hist) - 1
	best := split{feature: -1}
	total := nd.sum
	var e gradStats
	for i := range nb {
		e.add(hist[i])
		if e.h < p.minChildWeight || e.h <= 0 {
			continue
		}
		c := total.sub(e)
		if c.h < p.minChildWeight || c.h <= 0 {
			continue
		}
		if gain := p.gain(e) + p.gain(c) - nd.rootGain; gain > best.gain {
			best = split{gain: gain, feature: f, bin: int32(i), left: e, right: c}
		}
	}
	if m := hist[nb]; m.h == 0 && m.g == 0 {
		return best
	}
	e = gradStats{}
	for i := nb - 1; i >= 0; i-- {
		e.add(hist[i])
		if e.h < p.minChildWeight || e.h <= 0 {
			continue
		}
		c := total.sub(e)
		if c.h < p.minChildWeight || c.h <= 0 {
			continue
		}
		if gain := p.gain(c) + p.gain(e) - nd.rootGain; gain > best.gain {
			best = split{gain: gain, feature: f, bin: int32(i - 1), defaultLeft: true, left: c, right: e}
		}
	}
	return best
}

// categoricalSplit splits a categorical feature one category against the
// rest when it has fewer than max_cat_to_onehot categories, and otherwise
// by sorting its categories by their leaf weights and cutting the sorted
// list, which finds the best partition in two (for these losses) without
// trying every subset. Missing values try both sides.
func (g *grower[B]) categoricalSplit(nd *growNode, f int32, hist []gradStats) split {
	p := &g.tp
	nb := len(hist) - 1
	missing := hist[nb]
	hasMissing := missing.h != 0 || missing.g != 0
	total := nd.sum
	best := split{feature: -1}
	var bestSet []int32
	try := func(right gradStats, defaultLeft bool) bool {
		left := total.sub(right)
		if right.h < p.minChildWeight || right.h <= 0 || left.h < p.minChildWeight || left.h <= 0 {
			return false
		}
		gain := p.gain(left) + p.gain(right) - nd.rootGain
		if gain <= best.gain {
			return false
		}
		best = split{gain: gain, feature: f, bin: -1, defaultLeft: defaultLeft, left: left, right: right}
		return true
	}
	if nb < p.maxCatToOnehot {
		for c := range nb {
			s := hist[c]
			if s.h <= 0 {
				continue
			}
			if try(s, true) {
				bestSet = []int32{int32(c)}
			}
			if hasMissing {
				r := s
				r.add(missing)
				if try(r, false) {
					bestSet = []int32{int32(c)}
				}
			}
		}
		best.cats = bestSet
		return best
	}
	var present []int32
	for c := range nb {
		if hist[c].h > 0 {
			present = append(present, int32(c))
		}
	}
	if len(present) < 2 {
		return best
	}
	w := make([]float64, nb)
	for _, c := range present {
		w[c] = p.weight(hist[c])
	}
	slices.SortStableFunc(present, func(a, b int32) int {
		switch {
		case w[a] < w[b]:
			return -1
		case w[a] > w[b]:
			return 1
		}
		return 0
	})
	// The categories before the cut form one side, those after the
	// other; the side with fewer categories is written as the set that
	// goes right, so that categories the node never saw go left with the
	// larger side.
	nonMissing := total.sub(missing)
	var prefix gradStats
	bestCut, bestRightIsPrefix := -1, false
	for t := 1; t < len(present); t++ {
		prefix.add(hist[present[t-1]])
		suffix := nonMissing.sub(prefix)
		rightIsPrefix := t <= len(present)-t
		size, right := len(present)-t, suffix
		if rightIsPrefix {
			size, right = t, prefix
		}
		if size > p.maxCatThreshold {
			continue
		}
		if try(right, true) {
			bestCut, bestRightIsPrefix = t, rightIsPrefix
		}
		if hasMissing {
			r := right
			r.add(missing)
			if try(r, false) {
				bestCut, bestRightIsPrefix = t, rightIsPrefix
			}
		}
	}
	if bestCut < 0 {
		return best
	}
	if bestRightIsPrefix {
		best.cats = slices.Clone(present[:bestCut])
	} else {
		best.cats = slices.Clone(present[bestCut:])
	}
	slices.Sort(best.cats)
	return best
}

// setLeaf makes a node a leaf: XGBoost's weight times the learning rate,
// multiplied in float32 as XGBoost does.
func (g *grower[B]) setLeaf(t *tree, nd *growNode) {
	t.left[nd.id], t.right[nd.id] = -1, -1
	t.cond[nd.id] = float32(g.tp.weight(nd.sum)) * g.tp.eta
}

// splitNode writes a node's split into the tree and creates its children.
func (g *grower[B]) splitNode(t *tree, nd *growNode) {
	s := &nd.best
	fb := &g.q.feats[s.feature]
	id := nd.id
	t.feature[id] = s.feature
	t.defaultLeft[id] = s.defaultLeft
	t.lossChange[id] = float32(s.gain)
	goLeft := make([]bool, fb.nbins+1)
	if fb.categorical {
		t.categorical[id] = true
		t.cats[id] = s.cats
		for b := range goLeft {
			goLeft[b] = true
		}
		for _, c := range s.cats {
			goLeft[c] = false
		}
		t.cond[id] = 0
	} else {
		for b := 0; b <= int(s.bin); b++ {
			goLeft[b] = true
		}
		if s.bin >= 0 {
			t.cond[id] = fb.cuts[s.bin]
		} else {
			t.cond[id] = fb.below
		}
	}
	goLeft[fb.nbins] = s.defaultLeft
	nd.goLeft = goLeft
	nd.left = &growNode{sum: s.left, rootGain: g.tp.gain(s.left)}
	nd.right = &growNode{sum: s.right, rootGain: g.tp.gain(s.right)}
	nd.left.id = t.addNode(id, g.tp.weight(s.left), s.left.h)
	nd.right.id = t.addNode(id, g.tp.weight(s.right), s.right.h)
	// The child with less hessian (fewer rows, for most losses) gets its
	// histogram built; its sibling's is found by subtraction.
	nd.small = nd.left
	if s.right.h < s.left.h {
		nd.small = nd.right
	}
	t.left[id], t.right[id] = nd.left.id, nd.right.id
	// Until they are split, the children are leaves.
	t.cond[nd.left.id] = float32(g.tp.weight(s.left)) * g.tp.eta
	t.cond[nd.right.id] = float32(g.tp.weight(s.right)) * g.tp.eta
}

type rowTask struct {
	nd     *growNode
	lo, hi int
}

func rowTasks(nodes []*growNode, size int) []rowTask {
	var tasks []rowTask
	for _, nd := range nodes {
		for lo := nd.begin; lo < nd.end; lo += size {
			tasks = append(tasks, rowTask{nd, lo, min(lo+size, nd.end)})
		}
	}
	return tasks
}

// addLeaves adds leaf values to the margins of the leaves' rows.
func (g *grower[B]) addLeaves(pos []uint32, leaves []*growNode, margins []float32, groups, group int, t *tree) {
	tasks := rowTasks(leaves, partChunk)
	forEach(g.workers, len(tasks), func(i int) {
		tk := tasks[i]
		v := t.cond[tk.nd.id]
		for _, r := range pos[tk.lo:tk.hi] {
			margins[int(r)*groups+group] += v
		}
	})
}

// addChildLeaves adds the values of the children of nodes just split, when
// the children are leaves, deciding each row's side on the fly.
func (g *grower[B]) addChildLeaves(pos []uint32, nodes []*growNode, margins []float32, groups, group int, t *tree) {
	tasks := rowTasks(nodes, partChunk)
	q := g.q
	forEach(g.workers, len(tasks), func(i int) {
		tk := tasks[i]
		nd := tk.nd
		f := int(nd.best.feature)
		lv, rv := t.cond[nd.left.id], t.cond[nd.right.id]
		goLeft := nd.goLeft
		for _, r := range pos[tk.lo:tk.hi] {
			v := rv
			if goLeft[q.bins[int(r)*q.nf+f]] {
				v = lv
			}
			margins[int(r)*groups+group] += v
		}
	})
}

// partition moves each split node's rows (and their gradient pairs) from
// cur to next, the left child's rows first, keeping row order, and builds
// the histogram of the child it was told to (small) on the way: that row's
// bins are in cache already, having been read to decide its side. One pass
// records each row's side, counts and builds; a second moves the rows.
func (g *grower[B]) partition(cur, next []uint32, gcur, gnext []float32, nodes []*growNode) {
	small := make([]*growNode, len(nodes))
	for i, nd := range nodes {
		small[i] = nd.small
	}
	tasks := g.histTasks(nodes, small)
	lefts := make([]int, len(tasks))
	q := g.q
	forEach(g.workers, len(tasks), func(i int) {
		tk := &tasks[i]
		nd := tk.nd
		f := int(nd.best.feature)
		goLeft := nd.goLeft
		smallLeft := nd.small == nd.left
		dst := tk.dst()
		clear(dst)
		n := 0
		dir := g.dir[tk.lo:tk.hi]
		for k, r := range cur[tk.lo:tk.hi] {
			row := q.row(r)
			l := goLeft[row[f]]
			dir[k] = l
			if l {
				n++
			}
			if l == smallLeft {
				i := tk.lo + k
				accumulate(dst, row, q.offset, gcur[2*i], gcur[2*i+1])
			}
		}
		lefts[i] = n
	})
	// Where each task's left and right rows go.
	leftAt := make([]int, len(tasks))
	rightAt := make([]int, len(tasks))
	for i := 0; i < len(tasks); {
		nd := tasks[i].nd
		j := i
		total := 0
		for ; j < len(tasks) && tasks[j].nd == nd; j++ {
			total += lefts[j]
		}
		l, r := nd.begin, nd.begin+total
		for k := i; k < j; k++ {
			leftAt[k], rightAt[k] = l, r
			l += lefts[k]
			r += tasks[k].hi - tasks[k].lo - lefts[k]
		}
		nd.left.begin, nd.left.end = nd.begin, nd.begin+total
		nd.right.begin, nd.right.end = nd.begin+total, nd.end
		i = j
	}
	forEach(g.workers, len(tasks), func(i int) {
		tk := tasks[i]
		l, r := leftAt[i], rightAt[i]
		dir := g.dir[tk.lo:tk.hi]
		for k, row := range cur[tk.lo:tk.hi] {
			p := tk.lo + k
			gg, hh := gcur[2*p], gcur[2*p+1]
			if dir[k] {
				next[l], gnext[2*l], gnext[2*l+1] = row, gg, hh
				l++
			} else {
				next[r], gnext[2*r], gnext[2*r+1] = row, gg, hh
				r++
			}
		}
	})
	g.reduce(tasks)
}

// addSkipped adds the tree's leaves to the rows subsampling left out,
// walking the tree on their bins.
func (g *grower[B]) addSkipped(t *tree, margins []float32, groups, group int) {
	// goLeft tables by node id, rebuilt from the tree.
	tables := make([][]bool, len(t.left))
	for id := range t.left {
		if t.left[id] < 0 {
			continue
		}
		fb := &g.q.feats[t.feature[id]]
		tbl := make([]bool, fb.nbins+1)
		if t.categorical[id] {
			for b := range tbl {
				tbl[b] = true
			}
			for _, c := range t.cats[int32(id)] {
				tbl[c] = false
			}
		} else {
			for b := 0; b < fb.nbins; b++ {
				tbl[b] = fb.cuts[b] <= t.cond[id]
			}
		}
		tbl[fb.nbins] = t.defaultLeft[id]
		tables[id] = tbl
	}
	q := g.q
	rows := g.skipped
	forEach(g.workers, chunks(len(rows), partChunk), func(c int) {
		for _, r := range rows[c*partChunk : min((c+1)*partChunk, len(rows))] {
			i := int32(0)
			for t.left[i] >= 0 {
				if tables[i][q.bins[int(r)*q.nf+int(t.feature[i])]] {
					i = t.left[i]
				} else {
					i = t.right[i]
				}
			}
			margins[int(r)*groups+group] += t.cond[i]
		}
	})
}
