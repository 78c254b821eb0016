package postgres

import (
	"math"
	"slices"
	"testing"
)

func TestSplitKeys(t *testing.T) {
	for _, c := range []struct {
		lo, hi, n int64
		want      []int64
	}{
		{1, 100, 4, []int64{26, 51, 76}},
		{1, 1, 4, nil},
		{5, 7, 10, []int64{6, 7}},
		{-5e18, 5e18, 5, []int64{-3e18 + 1, -1e18 + 2, 1e18 + 3, 3e18 + 4}},
		{math.MinInt64, math.MaxInt64, 2, []int64{0}},
	} {
		got := splitKeys(c.lo, c.hi, c.n)
		if !slices.Equal(got, c.want) {
			t.Errorf("splitKeys(%d, %d, %d) = %v, want %v", c.lo, c.hi, c.n, got, c.want)
		}
		if !slices.IsSorted(got) {
			t.Errorf("splitKeys(%d, %d, %d) = %v: not increasing", c.lo, c.hi, c.n, got)
		}
	}
}
