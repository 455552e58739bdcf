package training

import (
	"runtime"
	"sync"
	"sync/atomic"
)

func threadCount(threads int) int {
	if threads <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return threads
}

// forEach calls fn(i) for every i from 0 to n-1 on up to w goroutines,
// which take tasks in turn. Results must not depend on which goroutine ran
// a task: callers write each task's result to its own place.
func forEach(w, n int, fn func(i int)) {
	if n <= 0 {
		return
	}
	w = min(w, n)
	if w <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// chunks is how many pieces of at most size rows n rows cut into.
func chunks(n, size int) int { return (n + size - 1) / size }
