package ikev1

import (
	"container/heap"
	"time"
)

// timer is one pending event. Cancelled timers are removed from the heap.
type timer struct {
	at    time.Time
	fn    func(now time.Time)
	index int // position in the heap, -1 when not queued
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// at schedules fn at t.
func (e *Engine) at(t time.Time, fn func(now time.Time)) *timer {
	tm := &timer{at: t, fn: fn}
	heap.Push(&e.timers, tm)
	return tm
}

// cancel removes t if it is still pending.
func (e *Engine) cancel(t *timer) {
	if t != nil && t.index >= 0 {
		heap.Remove(&e.timers, t.index)
	}
}

// runTimers fires every timer due at now, including timers scheduled by
// the ones that fire when they are due too.
func (e *Engine) runTimers(now time.Time) {
	for len(e.timers) > 0 && !e.timers[0].at.After(now) {
		t := heap.Pop(&e.timers).(*timer)
		t.fn(now)
	}
}
