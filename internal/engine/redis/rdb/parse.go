// Package rdb reads Redis's RDB format, as a replica receives it from
// PSYNC and as SAVE writes it: RDB versions up to 11 (Redis 7.2; 7.0
// writes 10), every value type and encoding, the opcodes around them
// (SELECTDB, RESIZEDB, AUX, EXPIRETIME(_MS), IDLE, FREQ, MODULE_AUX,
// FUNCTION2, SLOT_INFO) and the trailing CRC64.
//
// Walking a value keeps its bytes exactly as the source wrote them: with
// the RDB version and a CRC64 they are a DUMP payload, which RESTORE
// loads on the target in the server's own encoding, whatever the type
// (streams with their consumer groups, module values). Decode turns those
// bytes into plain values for what RESTORE cannot carry (a key larger than
// one command should be) and for tests.
package rdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"math"
	"strconv"
)

// Value types, as RDB numbers them.
const (
	TypeString           = 0
	TypeList             = 1
	TypeSet              = 2
	TypeZSet             = 3
	TypeHash             = 4
	TypeZSet2            = 5
	TypeModule           = 6
	TypeModule2          = 7
	TypeHashZipmap       = 9
	TypeListZiplist      = 10
	TypeSetIntset        = 11
	TypeZSetZiplist      = 12
	TypeHashZiplist      = 13
	TypeListQuicklist    = 14
	TypeStreamListpacks  = 15
	TypeHashListpack     = 16
	TypeZSetListpack     = 17
	TypeListQuicklist2   = 18
	TypeStreamListpacks2 = 19
	TypeSetListpack      = 20
	TypeStreamListpacks3 = 21
)

// Opcodes between values.
const (
	opSlotInfo     = 244
	opFunction2    = 245
	opFunctionPre  = 246
	opModuleAux    = 247
	opIdle         = 248
	opFreq         = 249
	opAux          = 250
	opResizeDB     = 251
	opExpireTimeMS = 252
	opExpireTime   = 253
	opSelectDB     = 254
	opEOF          = 255
)

// MaxVersion is the newest RDB version the parser reads.
const MaxVersion = 11

// Entry is one thing the RDB carries that a target needs: a key with its
// value, or a function library.
type Entry struct {
	DB  int
	Key []byte
	// Type is the value's RDB type; Payload its bytes after the type byte,
	// as the source wrote them.
	Type    byte
	Payload []byte
	// ExpireMs is the key's absolute expiry in Unix milliseconds; 0 none.
	ExpireMs int64
	// Function, when not empty, is a function library's code (FUNCTION2)
	// and the entry has no key.
	Function []byte
}

// Parser reads entries from an RDB stream.
type Parser struct {
	r       *bufio.Reader
	Version int
	// Aux holds the AUX fields read so far (redis-ver, repl-id, ...).
	Aux map[string]string
	// Modules lists the module names (as their ids decode) of module
	// values and module aux data met so far.
	Modules map[string]bool
	db      int
	crc     hash.Hash64
	rec     []byte
	record  bool
	// pending expiry of the next key
	expire int64
	done   bool
	// Read counts the bytes consumed, for progress.
	Read int64
}

var crcTable = crc64.MakeTable(0x95AC9329AC4BC9B5) // Jones, reflected

// CRC64 is Redis's crc64 (Jones polynomial, reflected, no final xor) of p
// continued from crc.
func CRC64(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, crcTable, p)
}

type redisCRC struct{ sum uint64 }

func (c *redisCRC) Write(p []byte) (int, error) { c.sum = CRC64(c.sum, p); return len(p), nil }
func (c *redisCRC) Sum(b []byte) []byte         { return binary.LittleEndian.AppendUint64(b, c.sum) }
func (c *redisCRC) Reset()                      { c.sum = 0 }
func (c *redisCRC) Size() int                   { return 8 }
func (c *redisCRC) BlockSize() int              { return 1 }
func (c *redisCRC) Sum64() uint64               { return c.sum }

// NewParser reads the RDB header from r.
func NewParser(r io.Reader) (*Parser, error) {
	p := &Parser{r: bufio.NewReaderSize(r, 1<<20), Aux: map[string]string{}, Modules: map[string]bool{}, crc: &redisCRC{}}
	head, err := p.read(9)
	if err != nil {
		return nil, fmt.Errorf("rdb header: %w", err)
	}
	if string(head[:5]) != "REDIS" {
		return nil, errors.New("rdb header: not an RDB (no REDIS magic)")
	}
	v, err := strconv.Atoi(string(head[5:]))
	if err != nil || v < 1 {
		return nil, fmt.Errorf("rdb header: bad version %q", head[5:])
	}
	if v > MaxVersion {
		return nil, fmt.Errorf("rdb version %d is newer than this opendts reads (up to %d)", v, MaxVersion)
	}
	p.Version = v
	return p, nil
}

// Next returns the next entry, or io.EOF after the RDB's end (whose
// checksum it verified).
func (p *Parser) Next() (*Entry, error) {
	for {
		if p.done {
			return nil, io.EOF
		}
		op, err := p.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case opEOF:
			p.done = true
			if p.Version >= 5 {
				want := p.crc.Sum64()
				b, err := p.readRaw(8)
				if err != nil {
					return nil, fmt.Errorf("rdb checksum: %w", err)
				}
				got := binary.LittleEndian.Uint64(b)
				if got != 0 && got != want {
					return nil, fmt.Errorf("rdb checksum mismatch: the RDB is damaged (%x, computed %x)", got, want)
				}
			}
			return nil, io.EOF
		case opSelectDB:
			n, err := p.length()
			if err != nil {
				return nil, err
			}
			p.db = int(n)
		case opResizeDB:
			if _, err := p.length(); err != nil {
				return nil, err
			}
			if _, err := p.length(); err != nil {
				return nil, err
			}
		case opSlotInfo:
			for range 3 {
				if _, err := p.length(); err != nil {
					return nil, err
				}
			}
		case opAux:
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			v, err := p.str()
			if err != nil {
				return nil, err
			}
			p.Aux[string(k)] = string(v)
		case opExpireTimeMS:
			b, err := p.read(8)
			if err != nil {
				return nil, err
			}
			p.expire = int64(binary.LittleEndian.Uint64(b))
		case opExpireTime:
			b, err := p.read(4)
			if err != nil {
				return nil, err
			}
			p.expire = int64(binary.LittleEndian.Uint32(b)) * 1000
		case opIdle:
			if _, err := p.length(); err != nil {
				return nil, err
			}
		case opFreq:
			if _, err := p.byte(); err != nil {
				return nil, err
			}
		case opModuleAux:
			id, err := p.length()
			if err != nil {
				return nil, err
			}
			p.Modules[ModuleName(id)] = true
			if _, err := p.length(); err != nil { // when_opcode
				return nil, err
			}
			if _, err := p.length(); err != nil { // when
				return nil, err
			}
			if err := p.moduleValue(); err != nil {
				return nil, err
			}
		case opFunction2:
			code, err := p.str()
			if err != nil {
				return nil, err
			}
			return &Entry{DB: p.db, Function: code}, nil
		case opFunctionPre:
			return nil, errors.New("the RDB holds functions in the format of a Redis 7.0 release candidate, which opendts does not read")
		default:
			e, err := p.value(op)
			if err != nil {
				return nil, err
			}
			return e, nil
		}
	}
}

// value reads a key and its value of type typ.
func (p *Parser) value(typ byte) (*Entry, error) {
	key, err := p.str()
	if err != nil {
		return nil, fmt.Errorf("rdb key: %w", err)
	}
	e := &Entry{DB: p.db, Key: key, Type: typ, ExpireMs: p.expire}
	p.expire = 0
	p.record, p.rec = true, make([]byte, 0, 64)
	err = p.walk(typ)
	p.record = false
	if err != nil {
		return nil, fmt.Errorf("rdb value of key %q (type %d): %w", key, typ, err)
	}
	e.Payload = p.rec
	p.rec = nil
	return e, nil
}

// walk consumes one value of type typ.
func (p *Parser) walk(typ byte) error {
	switch typ {
	case TypeString, TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist,
		TypeHashZiplist, TypeHashListpack, TypeZSetListpack, TypeSetListpack:
		return p.skipStr()
	case TypeList, TypeSet, TypeListQuicklist:
		return p.skipStrs(1)
	case TypeHash:
		return p.skipStrs(2)
	case TypeZSet:
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if err := p.skipStr(); err != nil {
				return err
			}
			if _, err := p.oldDouble(); err != nil {
				return err
			}
		}
		return nil
	case TypeZSet2:
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if err := p.skipStr(); err != nil {
				return err
			}
			if _, err := p.read(8); err != nil {
				return err
			}
		}
		return nil
	case TypeListQuicklist2:
		n, err := p.length()
		if err != nil {
			return err
		}
		for range n {
			if _, err := p.length(); err != nil { // container: plain or packed
				return err
			}
			if err := p.skipStr(); err != nil {
				return err
			}
		}
		return nil
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		_, err := p.stream(typ, nil)
		return err
	case TypeModule2:
		id, err := p.length()
		if err != nil {
			return err
		}
		p.Modules[ModuleName(id)] = true
		return p.moduleValue()
	case TypeModule:
		return errors.New("module values of RDB type 6 (Redis 4.0 release candidates) cannot be read")
	}
	return fmt.Errorf("unknown RDB value type %d", typ)
}

func (p *Parser) skipStrs(per int) error {
	n, err := p.length()
	if err != nil {
		return err
	}
	for range n * uint64(per) {
		if err := p.skipStr(); err != nil {
			return err
		}
	}
	return nil
}

// moduleValue consumes a module's serialised value: typed fields up to
// its EOF opcode.
func (p *Parser) moduleValue() error {
	for {
		op, err := p.length()
		if err != nil {
			return err
		}
		switch op {
		case 0:
			return nil
		case 1, 2:
			_, err = p.length()
		case 3:
			_, err = p.read(4)
		case 4:
			_, err = p.read(8)
		case 5:
			err = p.skipStr()
		default:
			return fmt.Errorf("unknown module field opcode %d", op)
		}
		if err != nil {
			return err
		}
	}
}

const moduleCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ModuleName is the 9-character type name a module id carries (its low
// 10 bits are the encoding version).
func ModuleName(id uint64) string {
	b := make([]byte, 9)
	for i := 8; i >= 0; i-- {
		b[i] = moduleCharset[(id>>(10+6*uint(8-i)))&63]
	}
	return string(b)
}

// ---- primitives ----

func (p *Parser) readRaw(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	p.Read += int64(n)
	return b, nil
}

func (p *Parser) read(n int) ([]byte, error) {
	b, err := p.readRaw(n)
	if err != nil {
		return nil, err
	}
	p.crc.Write(b)
	if p.record {
		p.rec = append(p.rec, b...)
	}
	return b, nil
}

func (p *Parser) byte() (byte, error) {
	b, err := p.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// lengthOrEnc reads a length, or an encoding marker for a string.
func (p *Parser) lengthOrEnc() (n uint64, encoded bool, err error) {
	b, err := p.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := p.byte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(c), false, nil
	case 2:
		switch b {
		case 0x80:
			x, err := p.read(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(x)), false, nil
		case 0x81:
			x, err := p.read(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(x), false, nil
		}
		return 0, false, fmt.Errorf("bad length byte %#x", b)
	}
	return uint64(b & 0x3f), true, nil
}

func (p *Parser) length() (uint64, error) {
	n, enc, err := p.lengthOrEnc()
	if err == nil && enc {
		err = errors.New("an encoded string where a length belongs")
	}
	return n, err
}

// maxAlloc bounds one string read: a damaged length must not make the
// parser allocate the machine's memory.
const maxAlloc = 1 << 32

func (p *Parser) str() ([]byte, error) {
	n, enc, err := p.lengthOrEnc()
	if err != nil {
		return nil, err
	}
	if !enc {
		if n > maxAlloc {
			return nil, fmt.Errorf("string of %d bytes is beyond reason", n)
		}
		return p.read(int(n))
	}
	switch n {
	case 0:
		b, err := p.read(1)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int8(b[0])), 10), nil
	case 1:
		b, err := p.read(2)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(b))), 10), nil
	case 2:
		b, err := p.read(4)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(b))), 10), nil
	case 3:
		clen, err := p.length()
		if err != nil {
			return nil, err
		}
		ulen, err := p.length()
		if err != nil {
			return nil, err
		}
		if clen > maxAlloc || ulen > maxAlloc {
			return nil, errors.New("LZF string beyond reason")
		}
		c, err := p.read(int(clen))
		if err != nil {
			return nil, err
		}
		return lzfDecompress(c, int(ulen))
	}
	return nil, fmt.Errorf("unknown string encoding %d", n)
}

// skipStr consumes a string without decompressing it.
func (p *Parser) skipStr() error {
	n, enc, err := p.lengthOrEnc()
	if err != nil {
		return err
	}
	if !enc {
		return p.skip(n)
	}
	switch n {
	case 0:
		return p.skip(1)
	case 1:
		return p.skip(2)
	case 2:
		return p.skip(4)
	case 3:
		clen, err := p.length()
		if err != nil {
			return err
		}
		if _, err := p.length(); err != nil {
			return err
		}
		return p.skip(clen)
	}
	return fmt.Errorf("unknown string encoding %d", n)
}

// skip consumes n bytes in bounded pieces.
func (p *Parser) skip(n uint64) error {
	for n > 0 {
		k := min(n, 1<<20)
		if _, err := p.read(int(k)); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (p *Parser) oldDouble() (float64, error) {
	n, err := p.byte()
	if err != nil {
		return 0, err
	}
	switch n {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	b, err := p.read(int(n))
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(string(b), 64)
}

func lzfDecompress(in []byte, ulen int) ([]byte, error) {
	out := make([]byte, 0, ulen)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < 32 {
			n := ctrl + 1
			if i+n > len(in) {
				return nil, errors.New("LZF: literal past the end")
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5
		if n == 7 {
			if i >= len(in) {
				return nil, errors.New("LZF: truncated")
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, errors.New("LZF: truncated")
		}
		ref := len(out) - ((ctrl & 0x1f) << 8) - 1 - int(in[i])
		i++
		if ref < 0 {
			return nil, errors.New("LZF: back reference before the start")
		}
		for k := 0; k < n+2; k++ {
			out = append(out, out[ref+k])
		}
	}
	if len(out) != ulen {
		return nil, fmt.Errorf("LZF: %d bytes decompressed, %d announced", len(out), ulen)
	}
	return out, nil
}

// Payload is the DUMP form of a value: type byte, the value's bytes, the
// RDB version and the CRC64 of all that, as RESTORE takes it.
func Payload(version int, typ byte, value []byte) []byte {
	b := make([]byte, 0, len(value)+11)
	b = append(b, typ)
	b = append(b, value...)
	b = binary.LittleEndian.AppendUint16(b, uint16(version))
	return binary.LittleEndian.AppendUint64(b, CRC64(0, b))
}
