package mysql

import (
	"bufio"
	"bytes"
	"math/rand"
	"testing"
)

// A large value escaped in pieces is the same bytes as escaped whole.
func TestWriteTSVEscapedInPieces(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{tsvPiece + 1, 3*tsvPiece - 7, 5 * tsvPiece} {
		v := make([]byte, n)
		rng.Read(v)
		// Every byte LOAD DATA gives meaning to, at the piece borders too.
		for i := tsvPiece - 2; i < n; i += tsvPiece {
			copy(v[i:], "\\\t\n\x00")
		}
		line := []byte("1\t")
		var out bytes.Buffer
		w := bufio.NewWriterSize(&out, 4096)
		size, err := writeTSVEscaped(w, line, v)
		if err != nil {
			t.Fatal(err)
		}
		w.Flush()
		want := appendTSVEscaped(append([]byte(nil), line...), v)
		if !bytes.Equal(out.Bytes(), want) || size != int64(len(want)) {
			t.Fatalf("%d bytes: pieces differ from the whole (size %d, want %d)", n, size, len(want))
		}
	}
}
