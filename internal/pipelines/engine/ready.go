package engine

import "container/heap"

// readyQueue holds the positions (in file order) of steps whose
// dependencies have all ended; pop returns the lowest.
type readyQueue []int

func (q readyQueue) Len() int           { return len(q) }
func (q readyQueue) Less(i, j int) bool { return q[i] < q[j] }
func (q readyQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *readyQueue) Push(x any)        { *q = append(*q, x.(int)) }
func (q *readyQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func (q *readyQueue) push(i int) { heap.Push(q, i) }
func (q *readyQueue) pop() int   { return heap.Pop(q).(int) }
