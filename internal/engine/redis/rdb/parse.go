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
	"io"
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

// Payload is the DUMP form of a value: type byte, the value's bytes, the
// RDB version and the CRC64 of all that, as RESTORE takes it.
func Payload(version int, typ byte, value []byte) []byte {
	b := make([]byte, 0, len(value)+11)
	b = append(b, typ)
	b = append(b, value...)
	b = binary.LittleEndian.AppendUint16(b, uint16(version))
	return binary.LittleEndian.AppendUint64(b, CRC64(0, b))
}
