package mysql

import (
	"strconv"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// position is a coordinate in the source's binlog: the one type the
// snapshot, the checkpoint and the change stream use. GTID is set only
// where the server reported one with the position (the snapshot); positions
// read from the stream have none, and compare by file and offset.
type position struct {
	File string
	Pos  uint64
	GTID string `json:",omitempty"`
}

// less orders positions of one server: by file, then by offset.
func (p position) less(q position) bool {
	if c := compareFiles(p.File, q.File); c != 0 {
		return c < 0
	}
	return p.Pos < q.Pos
}

// compareFiles orders binlog file names by their numeric extension, so
// that mysql-bin.999999 comes before mysql-bin.1000000 (the server goes on
// counting past six digits; as strings they would sort the other way).
// Names without a numeric extension, or with different bases, compare as
// strings.
func compareFiles(a, b string) int {
	baseA, numA, okA := splitFileName(a)
	baseB, numB, okB := splitFileName(b)
	if okA && okB && baseA == baseB {
		switch {
		case numA < numB:
			return -1
		case numA > numB:
			return 1
		}
		return 0
	}
	return strings.Compare(a, b)
}

func splitFileName(name string) (base string, n uint64, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name, 0, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil {
		return name, 0, false
	}
	return name[:i], n, true
}

// Before is less for the driver, which sees positions as engine.Position.
func (p position) Before(other engine.Position) bool {
	q, ok := other.(position)
	return ok && p.less(q)
}

func (p position) String() string { return p.File + ":" + strconv.FormatUint(p.Pos, 10) }
