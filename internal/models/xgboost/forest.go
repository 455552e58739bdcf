package xgboost

import (
	"errors"
	"fmt"
)

// node is one tree node in 12 bytes, so that a path touches few cache
// lines. feature holds the split feature and two flags; leaves have
// feature == leaf and their value in cond. Trees are laid out so that a
// node's right child follows its left child: the walk then picks a child
// by adding 0 or 1, with no branch for the processor to mispredict.
type node struct {
	cond    float32
	feature uint32
	left    int32
}

// rawNode is a node as the file gives it, in the file's numbering.
type rawNode struct {
	node
	right int32
}

const (
	leaf        = ^uint32(0)
	defaultLeft = 1 << 31
	catSplit    = 1 << 30
	featureMask = catSplit - 1
)

// forest is every tree of a gbtree or dart model, with nodes of all trees
// in one slice.
type forest struct {
	nodes []node
	roots []int32
	// steps is, for each whole group of treeLanes trees, the depth of
	// its deepest tree: the steps that take the group's walks to leaves.
	steps  []int32
	group  []int32   // output group of each tree
	weight []float32 // dart's weight of each tree; nil for gbtree
	// cats holds, for each categorical split node, a bitset of the
	// categories that go right.
	cats map[int32][]uint64
	// gain and splits are each feature's total loss reduction and split
	// count over all trees, for gain importance.
	gain   []float64
	splits []int
}

// maxTreeDepth bounds a tree's depth; XGBoost's own limit on max_depth
// with the hist method is far below it.
const maxTreeDepth = 1024

// maxCategory bounds category codes: XGBoost keeps them exactly in a
// float32, which holds integers up to 2^24 exactly.
const maxCategory = 1 << 24

func buildForest(trees []treeIn, info []int64, weights []float32, numFeature, numGroup int) (forest, error) {
	f := forest{roots: make([]int32, len(trees)), steps: make([]int32, len(trees)/treeLanes),
		group: make([]int32, len(trees)), weight: weights, gain: make([]float64, numFeature), splits: make([]int, numFeature)}
	total := 0
	for i := range trees {
		total += len(trees[i].LeftChildren)
	}
	f.nodes = make([]node, 0, total)
	for t := range trees {
		if info[t] < 0 || info[t] >= int64(numGroup) {
			return forest{}, fmt.Errorf("tree_info[%d] %d: must be an output group from 0 to %d", t, info[t], numGroup-1)
		}
		f.group[t] = int32(info[t])
		f.roots[t] = int32(len(f.nodes))
		depth, err := f.addTree(&trees[t], numFeature)
		if err != nil {
			return forest{}, fmt.Errorf("trees[%d]: %w", t, err)
		}
		if g := t / treeLanes; g < len(f.steps) {
			f.steps[g] = max(f.steps[g], depth)
		}
	}
	return f, nil
}

// addTree appends a tree and returns its depth.
func (f *forest) addTree(t *treeIn, numFeature int) (int32, error) {
	n := len(t.LeftChildren)
	if want, err := intParam("tree_param.num_nodes", t.TreeParam.NumNodes, n); err != nil {
		return 0, err
	} else if want != n || n == 0 {
		return 0, fmt.Errorf("tree_param.num_nodes %d, but left_children has %d entries", want, n)
	}
	if leafSize, err := intParam("tree_param.size_leaf_vector", t.TreeParam.SizeLeafVector, 1); err != nil {
		return 0, err
	} else if leafSize > 1 {
		return 0, fmt.Errorf("tree_param.size_leaf_vector %d: vector leaves (multi-target trees) are not supported", leafSize)
	}
	for name, l := range map[string]int{"right_children": len(t.RightChildren), "split_indices": len(t.SplitIndices),
		"split_conditions": len(t.SplitConditions), "default_left": len(t.DefaultLeft)} {
		if l != n {
			return 0, fmt.Errorf("%s has %d entries for %d nodes", name, l, n)
		}
	}
	if len(t.SplitType) != 0 && len(t.SplitType) != n {
		return 0, fmt.Errorf("split_type has %d entries for %d nodes", len(t.SplitType), n)
	}
	raw := make([]rawNode, n)
	for i := 0; i < n; i++ {
		l, r := t.LeftChildren[i], t.RightChildren[i]
		if l == -1 {
			if r != -1 {
				return 0, fmt.Errorf("node %d: left child -1 (a leaf) but right child %d", i, r)
			}
			raw[i] = rawNode{node: node{cond: t.SplitConditions[i], feature: leaf}}
			continue
		}
		if l < 0 || l >= int64(n) || r < 0 || r >= int64(n) {
			return 0, fmt.Errorf("node %d: children %d and %d must be nodes 0 to %d", i, l, r, n-1)
		}
		idx := t.SplitIndices[i]
		if idx < 0 || idx >= int64(numFeature) {
			return 0, fmt.Errorf("node %d: split feature %d: the model has %d features", i, idx, numFeature)
		}
		feat := uint32(idx)
		if t.DefaultLeft[i] != 0 {
			feat |= defaultLeft
		}
		if len(t.SplitType) > 0 {
			switch t.SplitType[i] {
			case 0:
			case 1:
				feat |= catSplit
			default:
				return 0, fmt.Errorf("node %d: split_type %d: must be 0 (numerical) or 1 (categorical)", i, t.SplitType[i])
			}
		}
		raw[i] = rawNode{node: node{cond: t.SplitConditions[i], feature: feat, left: int32(l)}, right: int32(r)}
	}
	if len(t.LossChanges) == n {
		// Summed as XGBoost's get_score sums them: over every split node.
		for i := range raw {
			if raw[i].feature != leaf {
				feat := raw[i].feature & featureMask
				f.gain[feat] += float64(t.LossChanges[i])
				f.splits[feat]++
			}
		}
	}
	cats, err := categories(t, raw)
	if err != nil {
		return 0, err
	}
	order, depth, err := treeOrder(raw, cats)
	if err != nil {
		return 0, err
	}
	f.emit(raw, cats, order)
	return depth, nil
}

// treeOrder walks the tree breadth-first from its root and returns its
// nodes in the order they are laid out, each node's two children next to
// each other, and its depth. It refuses anything but a tree (a node reached twice, a
// cycle) or one deeper than maxTreeDepth, so that prediction always ends
// at a leaf. Nodes the root does not reach (XGBoost's deleted nodes) are
// left out.
func treeOrder(raw []rawNode, cats map[int32][]uint64) ([]int32, int32, error) {
	seen := make([]bool, len(raw))
	seen[0] = true
	order := []int32{0}
	depth := []int32{0}
	for k := 0; k < len(order); k++ {
		id := order[k]
		nd := &raw[id]
		if nd.feature == leaf {
			continue
		}
		if depth[k] >= maxTreeDepth {
			return nil, 0, fmt.Errorf("deeper than %d levels", maxTreeDepth)
		}
		if nd.feature&catSplit != 0 && cats[id] == nil {
			return nil, 0, fmt.Errorf("node %d: a categorical split with no categories", id)
		}
		for _, c := range []int32{nd.left, nd.right} {
			if seen[c] {
				return nil, 0, fmt.Errorf("node %d is reached twice: the nodes do not form a tree", c)
			}
			seen[c] = true
			order = append(order, c)
			depth = append(depth, depth[k]+1)
		}
	}
	return order, depth[len(depth)-1], nil // breadth first, so the deepest is last
}

// emit appends a validated tree to the forest in the given order.
func (f *forest) emit(raw []rawNode, cats map[int32][]uint64, order []int32) {
	offset := int32(len(f.nodes))
	at := make([]int32, len(raw)) // file index -> forest index
	for k, id := range order {
		at[id] = offset + int32(k)
	}
	for _, id := range order {
		nd := raw[id].node
		if nd.feature != leaf {
			nd.left = at[nd.left] // the right child is at[right] == nd.left+1
		}
		f.nodes = append(f.nodes, nd)
		if bits, ok := cats[id]; ok {
			if f.cats == nil {
				f.cats = map[int32][]uint64{}
			}
			f.cats[at[id]] = bits
		}
	}
}

// categories reads the category sets of a tree's categorical splits, by
// node in the file's numbering.
func categories(t *treeIn, raw []rawNode) (map[int32][]uint64, error) {
	k := len(t.CategoriesNodes)
	if len(t.CategoriesSegments) != k || len(t.CategoriesSizes) != k {
		return nil, errors.New("categories_nodes, categories_segments and categories_sizes must have one entry per categorical split")
	}
	var cats map[int32][]uint64
	for j := 0; j < k; j++ {
		id, start, size := t.CategoriesNodes[j], t.CategoriesSegments[j], t.CategoriesSizes[j]
		if id < 0 || id >= int64(len(raw)) || raw[id].feature == leaf || raw[id].feature&catSplit == 0 {
			return nil, fmt.Errorf("categories_nodes[%d] %d: not a categorical split node", j, id)
		}
		if start < 0 || size < 0 || start+size > int64(len(t.Categories)) {
			return nil, fmt.Errorf("categories_segments[%d] %d and categories_sizes[%d] %d: outside the %d categories", j, start, j, size, len(t.Categories))
		}
		bits := []uint64{0}
		for _, c := range t.Categories[start : start+size] {
			if c < 0 || c >= maxCategory {
				return nil, fmt.Errorf("node %d: category %d: must be from 0 to %d", id, c, maxCategory-1)
			}
			for int64(len(bits)) <= c/64 {
				bits = append(bits, 0)
			}
			bits[c/64] |= 1 << (c % 64)
		}
		if cats == nil {
			cats = map[int32][]uint64{}
		}
		cats[int32(id)] = bits
	}
	return cats, nil
}

// goesRight is XGBoost's categorical decision: a category in the split's
// set goes right; any other value, including a negative or unknown code,
// goes left.
func (f *forest) goesRight(id int32, v float32) bool {
	if v < 0 || v >= maxCategory {
		return false
	}
	c := uint32(v)
	bits := f.cats[id]
	return int(c/64) < len(bits) && bits[c/64]&(1<<(c%64)) != 0
}

// lanes rows walk a tree together: their walks are independent, so the
// processor overlaps their memory loads instead of waiting on one chain.
const lanes = 16

// leafValues walks one tree for lanes rows of x (nf values each) and adds
// each row's leaf, times w, to margins at stride ng.
func (f *forest) leafValues(root int32, x []float32, nf int, margins []float32, ng int, w float32, weighted bool) {
	nodes := f.nodes
	var at [lanes]int32
	for k := range at {
		at[k] = root
	}
	for {
		moved := false
		for k := 0; k < lanes; k++ {
			n := &nodes[at[k]]
			if n.feature == leaf {
				continue
			}
			moved = true
			v := x[k*nf+int(n.feature&featureMask)]
			if n.feature&catSplit != 0 {
				at[k] = n.left + f.branch(at[k], n, v)
				continue
			}
			// Written out here, not through branch, so that it is
			// compiled into the loop without a call or a jump. NaN
			// compares false, so a missing value goes right unless the
			// split's default is left.
			var right int32
			if !(v < n.cond) {
				right = 1
			}
			if v != v && n.feature&defaultLeft != 0 {
				right = 0
			}
			at[k] = n.left + right
		}
		if !moved {
			break
		}
	}
	for k := 0; k < lanes; k++ {
		v := nodes[at[k]].cond
		if weighted {
			v *= w
		}
		margins[k*ng] += v
	}
}

// branch is 0 to go to a split's left child and 1 for its right.
func (f *forest) branch(i int32, n *node, v float32) int32 {
	var right int32
	if n.feature&catSplit == 0 {
		// NaN compares false, so a missing value goes right unless the
		// split's default is left.
		if !(v < n.cond) {
			right = 1
		}
		if v != v && n.feature&defaultLeft != 0 {
			right = 0
		}
	} else if v != v {
		if n.feature&defaultLeft == 0 {
			right = 1
		}
	} else if f.goesRight(i, v) {
		right = 1
	}
	return right
}

// leafValue walks one tree for a row. Rows are checked to hold every
// feature before any walk, and shapes when the model loaded.
func (f *forest) leafValue(root int32, row []float32) float32 {
	nodes := f.nodes
	i := root
	for {
		n := &nodes[i]
		if n.feature == leaf {
			return n.cond
		}
		v := row[n.feature&featureMask]
		if n.feature&catSplit != 0 {
			i = n.left + f.branch(i, n, v)
			continue
		}
		var right int32 // as in leafValues
		if !(v < n.cond) {
			right = 1
		}
		if v != v && n.feature&defaultLeft != 0 {
			right = 0
		}
		i = n.left + right
	}
}

// treeLanes trees are walked together for one row, for the reason lanes
// rows are walked together for one tree.
const treeLanes = 8

// rowMargins adds every tree's leaf for one row to the row's margins.
// Leaves are found a group of trees at a time but added in the trees'
// order, so that the float32 sums round as XGBoost's do.
func (f *forest) rowMargins(row, margins []float32) {
	var leaves [treeLanes]float32
	t := 0
	for ; t+treeLanes <= len(f.roots); t += treeLanes {
		roots, steps := (*[treeLanes]int32)(f.roots[t:]), f.steps[t/treeLanes]
		if f.cats == nil {
			f.numericLeaves(roots, steps, row, &leaves)
		} else {
			f.leaves(roots, steps, row, &leaves)
		}
		for k, v := range leaves {
			f.add(t+k, v, margins)
		}
	}
	for ; t < len(f.roots); t++ {
		f.add(t, f.leafValue(f.roots[t], row), margins)
	}
}

// add adds tree t's leaf value v, weighted for dart, to the margin of its
// output group, in the same operations as leafValues.
func (f *forest) add(t int, v float32, margins []float32) {
	if f.weight != nil {
		v *= f.weight[t]
	}
	margins[f.group[t]] += v
}

// numericLeaves walks treeLanes trees with no categorical splits for one
// row, steps levels deep, and stores the values of the leaves they reach.
// Each walk is in its own variable, not an array, so that it stays in a
// register; with step inlined, this takes about a quarter less time than
// leaves does.
func (f *forest) numericLeaves(roots *[treeLanes]int32, steps int32, row []float32, leaves *[treeLanes]float32) {
	nodes := f.nodes
	a0, a1, a2, a3, a4, a5, a6, a7 := roots[0], roots[1], roots[2], roots[3], roots[4], roots[5], roots[6], roots[7]
	for range steps {
		a0, a1, a2, a3 = step(nodes, a0, row), step(nodes, a1, row), step(nodes, a2, row), step(nodes, a3, row)
		a4, a5, a6, a7 = step(nodes, a4, row), step(nodes, a5, row), step(nodes, a6, row), step(nodes, a7, row)
	}
	leaves[0], leaves[1], leaves[2], leaves[3] = nodes[a0].cond, nodes[a1].cond, nodes[a2].cond, nodes[a3].cond
	leaves[4], leaves[5], leaves[6], leaves[7] = nodes[a4].cond, nodes[a5].cond, nodes[a6].cond, nodes[a7].cond
}

// step is the node after numerical split i for row; a leaf stays where
// it is, so that walks of trees shallower than their group's deepest wait
// at their leaves.
func step(nodes []node, i int32, row []float32) int32 {
	n := &nodes[i]
	if n.feature == leaf {
		return i
	}
	v := row[n.feature&featureMask]
	var right int32 // as in leafValues
	if !(v < n.cond) {
		right = 1
	}
	if v != v && n.feature&defaultLeft != 0 {
		right = 0
	}
	return n.left + right
}

// leaves is numericLeaves for trees that may have categorical splits,
// whose test is too large to inline.
func (f *forest) leaves(roots *[treeLanes]int32, steps int32, row []float32, leaves *[treeLanes]float32) {
	nodes := f.nodes
	at := *roots
	for range steps {
		for k, i := range at {
			if n := &nodes[i]; n.feature != leaf && n.feature&catSplit != 0 {
				at[k] = n.left + f.branch(i, n, row[n.feature&featureMask])
			} else {
				at[k] = step(nodes, i, row)
			}
		}
	}
	for k, i := range at {
		leaves[k] = nodes[i].cond
	}
}
