package main

import (
	"testing"
	"time"
)

func TestETA(t *testing.T) {
	for _, tt := range []struct {
		elapsed time.Duration
		pct     int
		want    time.Duration
		ok      bool
	}{
		{10 * time.Second, 50, 10 * time.Second, true},
		{30 * time.Second, 10, 4*time.Minute + 30*time.Second, true},
		{61 * time.Second, 50, 60 * time.Second, true},
		{time.Second, 50, 0, false},       // too early to tell
		{10 * time.Second, 1, 0, false},   // too little done
		{10 * time.Second, 100, 0, false}, // done
	} {
		got, ok := eta(tt.elapsed, tt.pct)
		if got != tt.want || ok != tt.ok {
			t.Errorf("eta(%s, %d) = %s, %v; want %s, %v", tt.elapsed, tt.pct, got, ok, tt.want, tt.ok)
		}
	}
}
