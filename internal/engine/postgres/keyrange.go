package postgres

// splitKeys returns the n-1 inner bounds that split the integer keys
// lo..hi (inclusive) into n ranges of about equal width, in increasing
// order. The span is computed in uint64, so keys across the whole int64
// range (random or hashed ids of both signs) split without overflow;
// bounds that would repeat (fewer keys than ranges) are left out.
func splitKeys(lo, hi, n int64) []int64 {
	if n <= 1 || hi <= lo {
		return nil
	}
	span := uint64(hi) - uint64(lo) // exact in two's complement
	step := span/uint64(n) + 1
	var out []int64
	for i := int64(1); i < n; i++ {
		off := uint64(i) * step
		if off/step != uint64(i) || off > span {
			break
		}
		b := int64(uint64(lo) + off)
		if len(out) > 0 && b <= out[len(out)-1] {
			continue
		}
		out = append(out, b)
	}
	return out
}
